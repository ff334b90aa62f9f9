"""Mean Dice of the threshold segmentation against expert masks, per method and channel.

Reads ALL-IDB2 (260 cells) and the Zheng WBC sets 1 (300) and 2 (100) from the shared data
folder and prints markdown tables of mean Dice (nucleus and whole cell):

1. nucleus channel x method (cell settings at their defaults);
2. cell channel x method (nucleus settings at their defaults);
3. enhancement, and the red-cell split (``split_solidity``), around the defaults;
4. the naive baselines of ../shared/data/README.md, recomputed, against the defaults and the
   best per-dataset configuration found in tables 1 and 2.

With ``--cutout`` it prints instead the C-NMC-like cut-out table: every crop is cut out along
its expert cell mask dilated by each margin (everything farther set to black,
:func:`~leukoscope.segmentation.cutout.expert_cutout`) and segmented with the defaults and
``background = "black"`` (as leukoscope/configs/cnmc.toml); per set and margin, beside the whole smear
crop: mean nucleus and cell Dice, the images whose nucleus Dice is below 0.5 and how many of
them carry a qc_flag, on how many cut-outs the surround test found smear, and how often each
flag was raised; then on how many of 200 synthetic demo cells (no surround) the test fires.

Usage::

    .venv/bin/python bench/segmentation_dice.py [--data ../shared/data]
    .venv/bin/python bench/segmentation_dice.py --cutout [--margins 0,5,10,20] --jobs 1

Takes a few minutes on two cores (``--jobs 2`` threads); ``--cutout`` about one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.groundtruth import match_masks, read_expert_mask
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.pipeline.synthetic import Stain, synthesize_cell
from leukoscope.segmentation.cell import BLACK_LEVEL, segment_cell
from leukoscope.segmentation.channels import extract_channel
from leukoscope.segmentation.choices import Channel, Enhancement, ThresholdMethod
from leukoscope.segmentation.cleanup import keep_central_component
from leukoscope.segmentation.cutout import expert_cutout
from leukoscope.segmentation.enhance import enhance_channel
from leukoscope.segmentation.metrics import dice
from leukoscope.segmentation.qc import split_flags
from leukoscope.segmentation.surround import surround_test
from leukoscope.segmentation.threshold import compute_threshold

REPO = Path(__file__).resolve().parents[1]
DATASETS = {  # name -> (image folder, glob, masks folder), relative to the data folder
    "ALL-IDB2": ("all-idb2/img", "*.tif", "all-idb2/masks"),
    "Zheng 1": ("zheng-wbc/dataset1", "*.bmp", "zheng-wbc/dataset1"),
    "Zheng 2": ("zheng-wbc/dataset2", "*.bmp", "zheng-wbc/dataset2"),
}
#: the naive baselines of ../shared/data/README.md: (name, target, channel, enhancement, method, value)
README_BASELINES = [
    ("ALL-IDB2", "nucleus", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.OTSU, 0.94),
    ("ALL-IDB2", "nucleus", Channel.GREEN, Enhancement.CLAHE, ThresholdMethod.TRIANGLE, 0.70),
    ("Zheng 1", "nucleus", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.OTSU, 0.74),
    ("Zheng 2", "nucleus", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.OTSU, 0.83),
    ("Zheng 1", "cell", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.TRIANGLE, 0.71),
    ("Zheng 2", "cell", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.TRIANGLE, 0.56),
    ("ALL-IDB2", "cell", Channel.SATURATION, Enhancement.NONE, ThresholdMethod.TRIANGLE, None),
]
METHODS = (ThresholdMethod.OTSU, ThresholdMethod.TRIANGLE)  # zack == triangle: not repeated
DEMO_CELLS = 200  # synthetic cells on which the surround test must not fire


def load_sets(data: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(image, expert labels) pairs of every dataset."""
    sets = {}
    for name, (folder, pattern, masks) in DATASETS.items():
        paths = sorted(str(p) for p in (data / folder).glob(pattern))
        if not paths:
            sys.exit(f"no images {data / folder / pattern}; pass --data with the shared data folder")
        pairs = []
        for path, match in zip(paths, match_masks(paths, data / masks)):
            image = read_image(path)
            pairs.append((image, read_expert_mask(match.path, image_shape=image.shape)))
        sets[name] = pairs
    return sets


def mean_dice(pairs: list[tuple[np.ndarray, np.ndarray]], options: dict) -> tuple[float, float]:
    """Mean (nucleus, cell) Dice of :func:`segment_cell` with ``options``."""
    nucleus, cell = [], []
    for image, truth in pairs:
        labels = segment_cell(image, **options).labels
        nucleus.append(dice(labels == 2, truth == 2))
        cell.append(dice(labels > 0, truth > 0))
    return float(np.nanmean(nucleus)), float(np.nanmean(cell))


def cutout_scores(pairs: list[tuple[np.ndarray, np.ndarray]], options: dict, margin: int | None) -> list:
    """One row of the cut-out table: nucleus and cell Dice, images below 0.5, flagged, flag counts.

    ``margin`` None segments the whole smear crop with ``options``; a number segments the
    cut-out of that margin on black.
    """
    nucleus: list[float] = []
    cell: list[float] = []
    low = flagged = surrounds = 0
    counts: Counter[str] = Counter()
    for image, truth in pairs:
        if margin is None:
            result = segment_cell(image, **options)
        else:
            cutout = expert_cutout(image, truth, margin=margin)
            surrounds += surround_test(cutout, cutout.max(axis=2) > BLACK_LEVEL).present
            result = segment_cell(cutout, **{**options, "background": "black"})
        nucleus.append(dice(result.labels == 2, truth == 2))
        cell.append(dice(result.labels > 0, truth > 0))
        counts.update(flag.value for flag in split_flags(result.qc_flag))
        if nucleus[-1] < 0.5:
            low += 1
            flagged += bool(result.qc_flag)
    flags = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return [float(np.nanmean(nucleus)), float(np.nanmean(cell)), low, flagged,
            "-" if margin is None else surrounds, flags or "-"]


def cutout_table(sets: dict, defaults: dict, margins: list[int], jobs: int) -> None:
    """Print the C-NMC-like cut-out table (module docstring)."""
    tasks = [(name, margin) for name in sets for margin in [None, *margins]]
    rows = joblib.Parallel(n_jobs=jobs, backend="threading")(
        joblib.delayed(cutout_scores)(sets[name], defaults, margin) for name, margin in tasks
    )
    table("Cut-outs on black (expert cell mask dilated by the margin) and the whole smear crop",
          ["set", "input", "nucleus Dice", "cell Dice", "nucleus Dice < 0.5", "of which flagged",
           "surround found", "flags raised"],
          [[name, "smear crop" if margin is None else f"cut-out, margin {margin} px", *row]
           for (name, margin), row in zip(tasks, rows)])
    found = 0
    for seed in range(DEMO_CELLS):  # no surround: the test must not fire
        stain = Stain.random(np.random.default_rng(1000 + seed // 5))
        image, _ = synthesize_cell(np.random.default_rng(seed), blast=seed % 2 == 0, stain=stain)
        found += surround_test(image, image.max(axis=2) > BLACK_LEVEL).present
    print(f"\nsurround found on {found} of {DEMO_CELLS} synthetic demo cells (450x450, no surround)")


def naive_dice(pairs, target: str, channel, enhancement, method) -> float:
    """README baseline: threshold the whole image, keep the component nearest the centre."""
    scores = []
    for image, truth in pairs:
        values = enhance_channel(extract_channel(image, channel), enhancement)
        mask = keep_central_component(values > compute_threshold(values, method))
        scores.append(dice(mask, truth == 2 if target == "nucleus" else truth > 0))
    return float(np.nanmean(scores))


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default), help="shared data folder")
    parser.add_argument("--jobs", type=int, default=2, help="threads (default 2)")
    parser.add_argument("--cutout", action="store_true", help="print the C-NMC-like cut-out table only")
    parser.add_argument("--margins", default="0,5,10,20", help="cut-out margins in pixels (default 0,5,10,20)")
    args = parser.parse_args()
    started = time.perf_counter()
    sets = load_sets(args.data)
    names = list(sets)
    defaults = segmentation_options(SegmentationConfig())
    print(f"{', '.join(f'{n}: {len(p)} cells' for n, p in sets.items())}; defaults: "
          + ", ".join(f"{k}={getattr(v, 'value', v)}" for k, v in defaults.items()))
    if args.cutout:
        cutout_table(sets, defaults, [int(m) for m in args.margins.split(",")], args.jobs)
        print(f"\n({time.perf_counter() - started:.0f} s with --jobs {args.jobs})")
        return

    def sweep(changes: list[dict]) -> list[dict[str, tuple[float, float]]]:
        """Mean (nucleus, cell) Dice per dataset for each set of changes to the defaults."""
        tasks = [(i, name) for i in range(len(changes)) for name in names]
        scores = joblib.Parallel(n_jobs=args.jobs, backend="threading")(
            joblib.delayed(mean_dice)(sets[name], {**defaults, **changes[i]}) for i, name in tasks
        )
        out: list[dict[str, tuple[float, float]]] = [{} for _ in changes]
        for (i, name), score in zip(tasks, scores):
            out[i][name] = score
        return out

    best: dict[str, dict[str, Any]] = {name: {} for name in names}  # dataset -> the best nucleus and cell settings
    for target, index in (("nucleus", 0), ("cell", 1)):
        changes: list[dict[str, Any]] = [{f"{target}_channel": c, f"{target}_method": m}
                                         for c in Channel for m in METHODS]
        results = sweep(changes)
        for name in names:
            winner = max(range(len(changes)), key=lambda i: results[i][name][index])
            best[name].update(changes[winner])
        rows: list[list[Any]] = [[f"{c[f'{target}_channel'].value} / {c[f'{target}_method'].value}"]
                + [r[n][index] for n in names] + [float(np.mean([r[n][index] for n in names]))]
                for c, r in zip(changes, results)]
        rows.sort(key=lambda r: -r[-1])
        table(f"{target.capitalize()} Dice by {target} channel / method (other settings default)",
              ["channel / method", *names, "mean"], rows)

    changes = [{"enhance": e} for e in Enhancement] + [{"split_solidity": v} for v in (0.0, 0.85, 0.9, 0.95)]
    rows = [[", ".join(f"{k} = {getattr(v, 'value', v)}" for k, v in c.items())]
            + [f"{r[n][0]:.3f} / {r[n][1]:.3f}" for n in names] for c, r in zip(changes, sweep(changes))]
    table("Enhancement and red-cell split (nucleus / cell Dice)", ["setting", *names], rows)

    default_scores, *tuned = sweep([{}] + [best[name] for name in names])
    per_set = {name: scores[name] for name, scores in zip(names, tuned)}
    rows = []
    for name, target, channel, enhancement, method, readme in README_BASELINES:
        index = 0 if target == "nucleus" else 1
        naive = naive_dice(sets[name], target, channel, enhancement, method)
        rows.append([name, target, f"{channel.value} + {enhancement.value} + {method.value}",
                     "-" if readme is None else f"{readme:.2f}", naive,
                     default_scores[name][index], per_set[name][index]])
    table("Naive baselines (whole image, component nearest the centre) vs leukoscope",
          ["dataset", "mask", "baseline", "README", "baseline rerun", "leukoscope defaults", "best for the set"],
          rows)
    print("\nBest configuration per dataset (tables 1 and 2 combined):")
    for name in names:
        print(f"- {name}: " + ", ".join(f'{k} = "{v.value}"' for k, v in best[name].items())
              + f"  -> nucleus {per_set[name][0]:.3f}, cell {per_set[name][1]:.3f}")
    print(f"\n({time.perf_counter() - started:.0f} s with --jobs {args.jobs})")


if __name__ == "__main__":
    main()

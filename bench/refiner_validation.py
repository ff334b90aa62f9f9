"""How the refiner's guard limits and its black-surround rule were set: on the validation parts only.

For a refiner (default: the shipped one) it reads the validation part of every expert-labelled
set (``train-refiner``'s split, the part that chose the best epoch; never the test part),
as smear crops and as cut-outs at 0, 5, 10 and 20 pixels, and prints

- per set and view, the mean Dice of the thresholding and of the refiner with the cell outline
  left free on black surrounds and kept (``keep_outline``), the share of the cell changed and
  the confidence;
- for several limits of the share changed and of the confidence, how many images the guard
  would skip and the refiner's summed Dice gain (cell + nucleus) on them (free outline);
- for every combination of training sets and several settings of the nearest-neighbour test
  (:class:`leukoscope.segmentation.domain.TrainingDomain`, fitted on the training parts' images
  and cut-outs as ``train-refiner`` fits it), the share of each set's validation images (smear
  crops and cut-outs) judged unlike the training images: low on the sets trained on, high on
  the others is what the guard should do (``--domain-only``: this table alone, no model).

Usage::

    .venv/bin/python bench/refiner_validation.py [--model leukoscope/data/refiner.keras] [--data ../shared/data]
        [--domain-only]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.refiner_data import TrainingSettings, find_pairs, read_pair, split_pairs
from leukoscope.pipeline.refiner_model import SHIPPED_MODEL, load_refiner
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.metrics import dice
from leukoscope.segmentation.refine import keep_outline, refine_cells

REPO = Path(__file__).resolve().parents[1]
SETS = {"ALL-IDB2": ("all-idb2", "all-idb2/masks"), "Zheng 1": ("zheng-wbc/dataset1", "zheng-wbc/dataset1"),
        "Zheng 2": ("zheng-wbc/dataset2", "zheng-wbc/dataset2")}


def rows_of(model, data: Path, options: dict) -> pd.DataFrame:
    """One row per validation image and view: Dice, share changed, nucleus kept, confidence."""
    rows = []
    for name, (folder, masks) in SETS.items():
        pairs, _ = find_pairs(data / folder, data / masks)
        part = pairs[split_pairs(pairs, settings=TrainingSettings()) == "validation"]
        for margin in (None, 0, 5, 10, 20):
            samples = [read_pair(p, options=options, margin=margin) for p in zip(part["image"], part["mask"])]
            refined = refine_cells(model, [s["image"] for s in samples], [s["threshold"] for s in samples],
                                   min_size=options["min_size"], batch_size=32)
            for s, r in zip(samples, refined):
                t, free, e = s["threshold"], r.labels, s["expert"]
                kept = keep_outline(t, free) if s["background"] == "black" else free
                cell = (t > 0) | (free > 0)
                rows.append({
                    "set": name, "view": "smear crop" if margin is None else f"cut-out {margin} px",
                    "changed": np.count_nonzero((t != free) & cell) / max(1, int(np.count_nonzero(cell))),
                    "confidence": r.confidence,
                    **{f"{region}_{method}": dice(test(labels), test(e)) for method, labels in
                       (("threshold", t), ("free", free), ("kept", kept))
                       for region, test in (("cell", lambda x: x > 0), ("nucleus", lambda x: x == 2))},
                })
    return pd.DataFrame(rows)


def domain_table(data: Path, options: dict) -> pd.DataFrame:
    """Share of each set's validation images and cut-outs judged unlike the training parts of
    each combination of sets, for several (neighbours, quantile, factor) settings."""
    from leukoscope.pipeline.refiner_data import cutout_margin
    from leukoscope.segmentation.domain import TrainingDomain

    settings = TrainingSettings()
    signatures: dict[tuple[str, str], list[np.ndarray]] = {}
    for name, (folder, masks) in SETS.items():
        pairs, _ = find_pairs(data / folder, data / masks)
        parts = split_pairs(pairs, settings=settings)
        for part in ("training", "validation"):
            chosen = pairs[parts == part]
            for image, mask in zip(chosen["image"], chosen["mask"]):
                for margin in (None, cutout_margin(image, seed=settings.seed)):
                    signature = read_pair((image, mask), options=options, margin=margin)["signature"]
                    if signature is not None:
                        signatures.setdefault((name, part), []).append(signature)
    rows = []
    names = list(SETS)
    combos = [(a,) for a in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]] + [tuple(names)]
    for neighbours, quantile, factor in ((5, 0.99, 1.0), (5, 0.95, 1.5), (5, 1.0, 1.0), (1, 0.95, 1.5)):
        for train in combos:
            domain = TrainingDomain.fit(np.concatenate([signatures[n, "training"] for n in train]),
                                        neighbours=neighbours, quantile=quantile, factor=factor)
            row: dict[str, Any] = {"setting": f"k={neighbours} q={quantile} x{factor}", "trained on": " + ".join(train)}
            for name in names:
                row[name] = np.mean([bool(domain.unlike(s)) for s in signatures[name, "validation"]])
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default), help="shared data folder")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="refiner .keras file")
    parser.add_argument("--domain-only", action="store_true", help="only the table of images judged unlike")
    args = parser.parse_args()
    domains = domain_table(args.data, segmentation_options(SegmentationConfig()))
    print("share of each set's validation images and cut-outs judged unlike the training images "
          "(default setting: k=5 q=0.95 x1.5)")
    print(domains.to_string(index=False, float_format=lambda v: f"{v:.2f}") + "\n")
    if args.domain_only:
        return
    table = rows_of(load_refiner(args.model), args.data, segmentation_options(SegmentationConfig()))
    columns = [f"{r}_{m}" for r in ("cell", "nucleus") for m in ("threshold", "free", "kept")]
    print(table.groupby(["set", "view"], sort=False)[[*columns, "changed", "confidence"]].mean().round(3)
          .to_string())
    gain = (table["cell_free"] - table["cell_threshold"]) + (table["nucleus_free"] - table["nucleus_threshold"])
    print(f"\n{len(table)} validation images x views; guard limits -> images skipped, summed gain on them")
    for change, confidence in ((0.35, 0.8), (0.5, 0.8), (0.6, 0.7), (1.0, 0.0)):
        skipped = (table["changed"] > change) | (table["confidence"] < confidence)
        print(f"changed > {change:.0%} or confidence < {confidence}: {int(skipped.sum())} skipped, "
              f"gain on them {gain[skipped].sum():+.2f}")


if __name__ == "__main__":
    main()

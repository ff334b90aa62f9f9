"""The U-Net refiner against the default thresholding, on test parts that training never saw.

Every expert-labelled set (ALL-IDB2, Zheng 1, Zheng 2) is split by ``train-refiner``'s own rule
(:func:`leukoscope.pipeline.refiner_data.split_pairs`: 70 % training, 15 % validation for early
stopping, 15 % test, by image; the same test part whichever sets a model is trained with). Every
number is the mean Dice on a test part, refined vs the default thresholding of the same images:

- ``within``: trained on that set's training part;
- ``cross``: trained on the training parts of the other two sets;
- ``all``: trained on the training parts of all three (the shipped refiner, when its record
  matches);
- cut-outs: the test images cut out on black along the expert cell dilated by 0, 5, 10 and 20
  pixels (:func:`leukoscope.segmentation.cutout.expert_cutout`), thresholded as cut-outs, with the
  ``within`` and ``all`` models;
- the demo (C-NMC layout, 240 synthetic cells on black): the median nucleus/cell area ratio and
  the Dice with and without the ``all`` model, through ``segment``'s own guard.

``refined`` is what ``segment --refiner unet`` keeps (the threshold labels where the guard
doubts the refiner or finds the image unlike the model's training images; ``skipped`` counts
them; a model record without those images' signatures gets them first, from the same
training part), ``unguarded`` the refiner's labels as they are,
``flips`` the refined labels with the eight test-time flips (``refiner_flips = true``).

Models are trained with ``train_refiner`` into ``--models`` (``train-refiner`` defaults unless the
flags change them); a model whose ``MODEL.json`` shows the same training sets and settings is
reused, ``--retrain`` trains anew. Results: ``MODELS/results.csv`` and a printed table.

Usage::

    .venv/bin/python bench/refiner.py [--data ../shared/data] [--models runs/bench-refiner] [--jobs 2]
        [--only within,cross,all] [--epochs N] [--seed N] [--retrain] [--no-flips]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import write_csv, write_json
from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.refiner_data import TrainingSettings, find_pairs, load_training_data, read_pair, split_pairs
from leukoscope.pipeline.refiner_model import SHIPPED_MODEL, load_refiner, refine_segmentation, sidecar, trained_domain
from leukoscope.pipeline.refiner_scores import mean_scores, score_pairs
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.domain import TrainingDomain
from leukoscope.segmentation.metrics import label_scores
from leukoscope.segmentation.unet import MODEL_NAME

REPO = Path(__file__).resolve().parents[1]
#: dataset name -> (image folder, masks folder), relative to the shared data folder
SETS = {
    "ALL-IDB2": ("all-idb2", "all-idb2/masks"),
    "Zheng 1": ("zheng-wbc/dataset1", "zheng-wbc/dataset1"),
    "Zheng 2": ("zheng-wbc/dataset2", "zheng-wbc/dataset2"),
}
MARGINS = (0, 5, 10, 20)
#: the default thresholding (what the refiner refines)
OPTIONS = segmentation_options(SegmentationConfig())
KINDS = ("within", "cross", "all")


def _model_name(path: Path) -> str:
    """The name of the Keras model in a ``.keras`` file (its version, for a refiner)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))["config"]["name"]


def _same_training(record_path: Path, sources: list[tuple[Path, Path]], settings: TrainingSettings) -> bool:
    """Whether a model is of this version and its record says it was trained on ``sources`` with ``settings``."""
    if not record_path.is_file() or _model_name(record_path.with_suffix(".keras")) != MODEL_NAME:
        return False
    record = json.loads(record_path.read_text())
    trained_on = [((REPO / d["data"]).resolve(), (REPO / d["masks"]).resolve()) for d in record["data"]]
    recorded = record["settings"]
    if "min_steps" not in recorded:  # trained before the setting: the same training if it would not bind
        if settings.planned_epochs(sum(d["training"] for d in record["data"])) != recorded["epochs"]:
            return False
        recorded = {**recorded, "min_steps": settings.min_steps}
    return recorded == dataclasses.asdict(settings) and trained_on == [
        (data.resolve(), masks.resolve()) for data, masks in sources]


def trained_model(train: tuple[str, ...], data: Path, models: Path, settings: TrainingSettings, *,
                  retrain: bool, jobs: int, memo: dict) -> Path:
    """A model trained on the training parts of ``train``: the shipped refiner or one in ``models`` if
    trained on the same sets with the same settings (paths in records are relative to the repository
    root), else a new one."""
    from leukoscope.pipeline.train_refiner import train_refiner

    sources = [(data / SETS[name][0], data / SETS[name][1]) for name in train]
    path = models / ("+".join(name.lower().replace(" ", "").replace("-", "") for name in train) + ".keras")
    if not retrain:
        for candidate in (SHIPPED_MODEL, path):
            if candidate.is_file() and _same_training(sidecar(candidate, ".json"), sources, settings):
                print(f"reusing {candidate} (same training sets and settings; --retrain trains anew)", flush=True)
                add_domain(candidate, sources, settings, jobs=jobs, memo=memo)
                return candidate
    print(f"training on {' + '.join(train)} -> {path}", flush=True)
    record = train_refiner(sources, path, settings=settings, command=shlex.join([sys.executable, *sys.argv]),
                           jobs=jobs, quiet=True, memo=memo)
    print(f"  {record['epochs_run']} epochs (best {record['best_epoch']}), {record['wall_seconds']:.0f} s wall, "
          f"{record['cpu_seconds']:.0f} s CPU", flush=True)
    return path


def add_domain(model: Path, sources: list[tuple[Path, Path]], settings: TrainingSettings, *, jobs: int,
               memo: dict) -> None:
    """Add the training images' signatures (``domain``, what the guard compares an image with) to
    the record of a model trained before ``train-refiner`` wrote them, from the same training
    part (they depend on the images and the thresholding, not on the model's weights)."""
    from leukoscope.pipeline.train_refiner import training_domain

    record_path = sidecar(model, ".json")
    record = json.loads(record_path.read_text())
    if "domain" in record:
        return
    parts, _, _ = load_training_data(sources, settings=settings, segmentation=SegmentationConfig(), jobs=jobs,
                                     quiet=True, memo=memo)
    record["domain"] = training_domain(parts["training"]).to_dict()
    record["domain_added"] = ("by bench/refiner.py after training, from the same training part: the signatures "
                              "depend on the images and the thresholding, not on the model's weights")
    write_json(record, record_path)
    print(f"  added the training images' signatures to {record_path}", flush=True)


def test_samples(data: Path, settings: TrainingSettings, margins: tuple[int, ...], jobs: int) -> dict:
    """(set, margin or None) -> [(image path, sample)] of every set's test part."""
    out = {}
    for name, (folder, masks) in SETS.items():
        pairs, _ = find_pairs(data / folder, data / masks)
        test = pairs[split_pairs(pairs, settings=settings) == "test"]
        items = list(zip(test["image"], test["mask"]))
        for margin in (None, *margins):
            reader = functools.partial(read_pair, options=OPTIONS, margin=margin)
            read = parallel_map(reader, items, jobs=jobs, desc=f"reading {name}", quiet=True)
            out[name, margin] = [(path, s) for (path, _), s in zip(items, read) if not s["reason"]]
    return out


def demo_row(model_path: Path, folder: Path) -> dict[str, Any]:
    """Median nucleus/cell ratio and mean Dice of the demo cells, thresholded and through ``segment``'s guard."""
    if not (folder / "masks").is_dir():
        generate_demo(folder, seed=0, jobs=1, quiet=True)
    pairs, _ = find_pairs(folder, folder / "masks")
    ratios: dict[str, list[float]] = {"threshold": [], "refined": []}
    dice: dict[str, list[float]] = {"threshold_n": [], "refined_n": [], "threshold_c": [], "refined_c": []}
    changed = skipped = 0
    for image_path, mask_path in zip(pairs["image"], pairs["mask"]):
        sample = read_pair((image_path, mask_path), options=OPTIONS)
        result = segment_cell(sample["image"], **OPTIONS)
        refined, _, reason = refine_segmentation(str(model_path), sample["image"], result,
                                                 min_size=OPTIONS["min_size"])
        skipped += bool(reason)
        changed += not np.array_equal(refined.labels, result.labels)
        for method, labels in (("threshold", result.labels), ("refined", refined.labels)):
            cell = np.count_nonzero(labels)
            ratios[method].append(np.count_nonzero(labels == 2) / cell if cell else np.nan)
            scores = label_scores(labels, sample["expert"])
            dice[f"{method}_n"].append(scores["dice_nucleus"])
            dice[f"{method}_c"].append(scores["dice_cell"])
    return {"case": "demo", "train": "all three", "test": "demo (C-NMC layout)", "input": "cut-out (demo)",
            "images": len(pairs), "skipped": skipped, "changed": changed,
            "threshold_dice_nucleus": round(float(np.nanmean(dice["threshold_n"])), 4),
            "threshold_dice_cell": round(float(np.nanmean(dice["threshold_c"])), 4),
            "refined_dice_nucleus": round(float(np.nanmean(dice["refined_n"])), 4),
            "refined_dice_cell": round(float(np.nanmean(dice["refined_c"])), 4),
            "threshold_ratio_median": round(float(np.nanmedian(ratios["threshold"])), 4),
            "refined_ratio_median": round(float(np.nanmedian(ratios["refined"])), 4),
            "model": str(model_path)}


def score_row(model: Any, samples: list, *, flips: bool, domain: TrainingDomain | None) -> dict[str, Any]:
    """Mean Dice of one model on one list of test samples (and with test-time flips), with the
    guard of ``segment`` (``domain``: the model's training images)."""
    row = mean_scores(score_pairs(model, samples, min_size=OPTIONS["min_size"], domain=domain))
    if flips:
        flipped = mean_scores(score_pairs(model, samples, min_size=OPTIONS["min_size"], flips=True, domain=domain))
        row.update(flips_dice_nucleus=flipped["refined_dice_nucleus"], flips_dice_cell=flipped["refined_dice_cell"])
    return row


def merged(rows: list[dict[str, Any]], kinds: list[str], path: Path) -> pd.DataFrame:
    """``rows`` after the rows of the other cases in an earlier ``results.csv`` (a run with ``--only``)."""
    earlier = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["case"])
    earlier = earlier[~earlier["case"].isin([*kinds, *(["demo"] if "all" in kinds else [])])]
    order = {kind: i for i, kind in enumerate([*KINDS, "demo"])}
    table = pd.concat([earlier, pd.DataFrame(rows)], ignore_index=True) if len(earlier) else pd.DataFrame(rows)
    return table.sort_values("case", key=lambda c: c.map(order), kind="stable", ignore_index=True)


def print_table(table: pd.DataFrame) -> None:
    """The results as a Markdown table: thresholding, refined and their difference per region."""
    print("\n| case | train -> test | input | images | nucleus: threshold | refined | diff | "
          "cell: threshold | refined | diff | skipped | unguarded n / c | flips n / c |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in table.to_dict("records"):
        cells = []
        for region in ("nucleus", "cell"):
            threshold, refined = row[f"threshold_dice_{region}"], row[f"refined_dice_{region}"]
            cells += [f"{threshold:.3f}", f"{refined:.3f}", f"{refined - threshold:+.3f}"]
        unguarded = (f"{row['unguarded_dice_nucleus']:.3f} / {row['unguarded_dice_cell']:.3f}"
                     if pd.notna(row.get("unguarded_dice_nucleus")) else "-")
        flips = (f"{row['flips_dice_nucleus']:.3f} / {row['flips_dice_cell']:.3f}"
                 if pd.notna(row.get("flips_dice_nucleus")) else "-")
        print(f"| {row['case']} | {row['train']} -> {row['test']} | {row['input']} | {row['images']} | "
              + " | ".join(cells) + f" | {row['skipped']} | {unguarded} | {flips} |")
    for row in table[table["case"] == "demo"].to_dict("records"):
        print(f"\ndemo: median nucleus/cell ratio {row['threshold_ratio_median']:.3f} thresholded, "
              f"{row['refined_ratio_median']:.3f} with the refiner ({int(row['changed'])} of {int(row['images'])} "
              f"cells changed, {row['skipped']} skipped by the guard)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default), help="shared data folder")
    parser.add_argument("--models", type=Path, default=REPO / "runs" / "bench-refiner",
                        help="folder of the trained models")
    parser.add_argument("--only", default=",".join(KINDS), help="cases to run: within, cross, all (comma-separated)")
    parser.add_argument("--retrain", action="store_true", help="train the models even when they exist")
    parser.add_argument("--epochs", type=int, default=TrainingSettings.epochs, help="most training epochs")
    parser.add_argument("--seed", type=int, default=TrainingSettings.seed,
                        help="training seed (another seed: use another --models folder to keep both)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers for reading and thresholding")
    parser.add_argument("--no-flips", dest="flips", action="store_false", help="skip the test-time flips")
    args = parser.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"--only: unknown case(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    started = time.perf_counter()
    settings = TrainingSettings(epochs=args.epochs, seed=args.seed)
    samples = test_samples(args.data, settings, MARGINS, args.jobs)
    memo: dict = {}
    names = list(SETS)
    # (case, training sets, test set, margins)
    cases: list[tuple[str, tuple[str, ...], str, tuple[int | None, ...]]] = []
    for kind in kinds:
        for name in names:
            if kind == "within":
                cases.append((kind, (name,), name, (None, *MARGINS)))
            elif kind == "cross":
                cases.append((kind, tuple(n for n in names if n != name), name, (None,)))
            else:
                cases.append((kind, tuple(names), name, (None, *MARGINS)))
    rows: list[dict[str, Any]] = []
    for case, train, test, margins in cases:
        path = trained_model(train, args.data, args.models, settings, retrain=args.retrain, jobs=args.jobs,
                             memo=memo)
        model = load_refiner(path)
        for margin in margins:
            rows.append({"case": case, "train": " + ".join(train), "test": test,
                         "input": "smear crop" if margin is None else f"cut-out {margin} px",
                         "images": len(samples[test, margin]),
                         **score_row(model, samples[test, margin], flips=args.flips, domain=trained_domain(str(path))),
                         "model": str(path)})
            print(f"{case}: {rows[-1]['train']} -> {test}, {rows[-1]['input']}: done", flush=True)
        write_csv(merged(rows, kinds, args.models / "results.csv"), args.models / "results.csv")
    if "all" in kinds:
        rows.append(demo_row(trained_model(tuple(names), args.data, args.models, settings, retrain=False,
                                           jobs=args.jobs, memo=memo), args.models / "demo"))
    table = merged(rows, kinds, args.models / "results.csv")
    write_csv(table, args.models / "results.csv")
    print_table(table)
    print(f"\nresults in {args.models / 'results.csv'} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

"""Cross-dataset test of the U-Net refiner: train on some expert-labelled sets, test on another.

Three cases, each tested on data the refiner never saw:

- Zheng 1 + Zheng 2 -> ALL-IDB2
- ALL-IDB2 + Zheng 2 -> Zheng 1
- ALL-IDB2 + Zheng 1 -> Zheng 2

For each it prints the mean nucleus and whole-cell Dice of the default thresholding (the
refiner's input), of the best thresholding configuration for the test set (channel x method
searched on the test set itself, as in bench/segmentation_dice.py, so an optimistic
baseline), and of the refined masks, with the gain over both.

Models are trained with ``train_refiner`` (the ``leukoscope train-refiner`` defaults unless
flags change them) into ``--models``. A model whose record (``MODEL.json``) shows the same
training sets and settings is reused instead: the shipped refiner (trained on Zheng 1 + 2) for
the first case, an earlier run's model in ``--models`` for the others; ``--retrain`` trains
all three anew. Training takes 9 to 15 minutes per case on two idle cores; scoring reused
models takes a few minutes.

Usage::

    .venv/bin/python bench/refiner.py [--data ../shared/data] [--models runs/bench-refiner] [--jobs 2]
        [--seed N] [--test "Zheng 2"] [--retrain]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation_dice import METHODS, load_sets, mean_dice  # noqa: E402

from leukoscope.pipeline.atomic import write_csv  # noqa: E402
from leukoscope.pipeline.config import SegmentationConfig  # noqa: E402
from leukoscope.pipeline.refiner_data import TrainingSettings, mean_scores, score_refiner  # noqa: E402
from leukoscope.pipeline.refiner_model import SHIPPED_MODEL, load_refiner, sidecar  # noqa: E402
from leukoscope.pipeline.segmentation_settings import segmentation_options  # noqa: E402
from leukoscope.pipeline.train_refiner import train_refiner  # noqa: E402
from leukoscope.segmentation.choices import Channel  # noqa: E402
from leukoscope.segmentation.unet import MODEL_NAME  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: dataset name -> (image folder, masks folder), relative to the shared data folder
SETS = {
    "ALL-IDB2": ("all-idb2", "all-idb2/masks"),
    "Zheng 1": ("zheng-wbc/dataset1", "zheng-wbc/dataset1"),
    "Zheng 2": ("zheng-wbc/dataset2", "zheng-wbc/dataset2"),
}
CASES = [(("Zheng 1", "Zheng 2"), "ALL-IDB2"), (("ALL-IDB2", "Zheng 2"), "Zheng 1"),
         (("ALL-IDB2", "Zheng 1"), "Zheng 2")]


def best_thresholding(pairs: list, defaults: dict) -> dict[str, float]:
    """Best mean nucleus and cell Dice over every channel x method (one target changed at a time)."""
    best = {}
    for target, index in (("nucleus", 0), ("cell", 1)):
        best[target] = max(
            mean_dice(pairs, {**defaults, f"{target}_channel": channel, f"{target}_method": method})[index]
            for channel in Channel for method in METHODS
        )
    return best


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
    return record["settings"] == dataclasses.asdict(settings) and trained_on == [
        (data.resolve(), masks.resolve()) for data, masks in sources]


def trained_model(case: tuple[tuple[str, ...], str], data: Path, models: Path, settings: TrainingSettings,
                  *, retrain: bool, jobs: int) -> Path:
    """The case's model: the shipped refiner or one in ``models`` if trained on the same sets with
    the same settings (paths in records are relative to the repository root), else a new one."""
    train, _ = case
    sources = [(data / SETS[name][0], data / SETS[name][1]) for name in train]
    path = models / ("+".join(name.lower().replace(" ", "") for name in train) + ".keras")
    if not retrain:
        for candidate in (SHIPPED_MODEL, path):
            if candidate.is_file() and _same_training(sidecar(candidate, ".json"), sources, settings):
                print(f"reusing {candidate} (same training sets and settings; --retrain trains anew)", flush=True)
                return candidate
    print(f"training on {' + '.join(train)} -> {path}", flush=True)
    train_refiner(sources, path, settings=settings, command=shlex.join([sys.executable, *sys.argv]),
                  jobs=jobs, quiet=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default), help="shared data folder")
    parser.add_argument("--models", type=Path, default=REPO / "runs" / "bench-refiner",
                        help="folder of the trained models")
    parser.add_argument("--retrain", action="store_true", help="train the models even when they exist")
    parser.add_argument("--epochs", type=int, default=TrainingSettings.epochs, help="most training epochs")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many pairs of each training set")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers for reading and thresholding")
    parser.add_argument("--seed", type=int, default=TrainingSettings.seed,
                        help="training seed (another seed: use another --models folder to keep both)")
    parser.add_argument("--test", choices=list(SETS), action="append",
                        help="run only the case tested on this set (repeatable; default: all three)")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = TrainingSettings(epochs=args.epochs, limit=args.limit, seed=args.seed)
    defaults = segmentation_options(SegmentationConfig())
    sets = load_sets(args.data)
    rows: list[dict[str, Any]] = []
    for case in [c for c in CASES if not args.test or c[1] in args.test]:
        model_path = trained_model(case, args.data, args.models, settings, retrain=args.retrain, jobs=args.jobs)
        train, test = case
        scores = score_refiner(load_refiner(model_path), args.data / SETS[test][0], args.data / SETS[test][1],
                               jobs=args.jobs)
        means = mean_scores(scores)
        best = best_thresholding(sets[test], defaults)
        rows.append({
            "train": " + ".join(train), "test": test, "images": int(len(scores) // 2),
            **{f"{key}": value for key, value in means.items()},
            "best_threshold_dice_nucleus": round(best["nucleus"], 4),
            "best_threshold_dice_cell": round(best["cell"], 4),
            "model": str(model_path),
        })
    table = pd.DataFrame(rows)
    write_csv(table, args.models / "results.csv")
    print("\n| train -> test | nucleus: threshold | best threshold | refined | gain | "
          "cell: threshold | best threshold | refined | gain |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = []
        for region in ("nucleus", "cell"):
            threshold, best, refined = (row[f"threshold_dice_{region}"], row[f"best_threshold_dice_{region}"],
                                        row[f"refined_dice_{region}"])
            cells += [f"{threshold:.3f}", f"{best:.3f}", f"{refined:.3f}",
                      f"{refined - threshold:+.3f} / {refined - best:+.3f}"]
        print(f"| {row['train']} -> {row['test']} ({row['images']}) | " + " | ".join(cells) + " |")
    print("\ngain = refined minus default thresholding / minus the best thresholding for the test set")
    print(f"results in {args.models / 'results.csv'} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

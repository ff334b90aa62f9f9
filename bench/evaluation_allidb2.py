"""Issue #16's checks on ALL-IDB2: protocols, nested headline, paired tests, repeats, confound.

    .venv/bin/python bench/evaluation_allidb2.py --run runs/allidb2-eval --part protocols [--jobs 1]
    .venv/bin/python bench/evaluation_allidb2.py --run runs/allidb2-eval --part nested --protocol blocked-cv
    .venv/bin/python bench/evaluation_allidb2.py --run runs/allidb2-eval --part repeats --models knn,svm

``--run`` is a run directory holding ``manifest.csv`` and ``features/handcrafted.csv``, made by
``leukoscope features --config allidb2 --backbones none --out RUN``. Each part
writes CSVs under ``RUN/evaluation/`` and prints a summary:

- ``protocols``: every model on the handcrafted features under ``stratified-cv`` and
  ``blocked-cv`` (blocks of 5, 10, 20 consecutive image numbers), 5 folds, seed 0, with the
  majority baseline, guarded 95 % intervals and paired comparisons against the best row.
- ``nested``: the selection-corrected headline (model chosen on inner folds) under
  ``--protocol`` (blocks of ``--block``), and every row of ``protocols`` compared with it
  (run ``protocols`` first).
- ``repeats``: outer cross-validation of ``--models`` under ``--protocol``, seeds 0-4.
- ``confound``: ``--models`` on the 15 surround features (pixels outside the expert mask,
  and outside a ring of ``--ring`` pixels around it) under ``--protocol``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import tifffile

from leukoscope.classifiers.baselines import confound_verdict, majority_predictions
from leukoscope.classifiers.calibration import calibration_table
from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.comparison import paired_comparisons
from leukoscope.classifiers.intervals import guarded_bootstrap_ci
from leukoscope.classifiers.metrics import binary_metrics, predict_labels
from leukoscope.classifiers.models import fit_predict
from leukoscope.classifiers.repeats import summarise_repeats
from leukoscope.classifiers.selection import NESTED_FEATURE_SET, NESTED_MODEL, candidates_for, nested_select
from leukoscope.classifiers.splits import encode_labels, iter_splits, split_groups
from leukoscope.features.surround import surround_features
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.segmentation.expert_masks import decode_allidb2_mask

PROTOCOLS = (("stratified-cv", 10), ("blocked-cv", 5), ("blocked-cv", 10), ("blocked-cv", 20))
MODELS = tuple(m.value for m in ClassifierName)
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True, eq=False)
class _Task:
    model: str
    fold: str
    x_train: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray
    x_test: np.ndarray
    test: np.ndarray
    seed: int


def _fit(task: _Task) -> pd.DataFrame:
    score, _ = fit_predict(task.model, task.x_train, task.y_train, task.x_test, groups=task.groups, seed=task.seed)
    return pd.DataFrame({"row": task.test, "fold": task.fold, "model": task.model, "y_score": score,
                         "y_pred": predict_labels(score)})


def load(run: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Manifest rows with handcrafted features, and the feature matrix."""
    samples = pd.read_csv(run / "manifest.csv", dtype=str).fillna("")
    features = pd.read_csv(run / "features" / "handcrafted.csv", dtype={"sample_id": str})
    table = samples[["sample_id", "path", "label", "subject", "split"]].merge(
        features.drop(columns=["subject", "label", "split", "qc_flag"], errors="ignore"), on="sample_id")
    columns = [c for c in table.columns if c not in ("sample_id", "path", "label", "subject", "split")]
    return table[["sample_id", "path", "label", "subject", "split"]].copy(), table[columns].to_numpy(float)


def cross_validate(table: pd.DataFrame, x: np.ndarray, feature_set: str, protocol: str, block: int, *,
                   seed: int, jobs: int, models=MODELS) -> pd.DataFrame:
    """Out-of-fold predictions of every model and of the majority baseline."""
    y = encode_labels(table["label"])
    groups = split_groups(table, protocol, block_size=block)
    splits = list(iter_splits(table, protocol=protocol, folds=5, seed=seed, block_size=block))
    tasks = [_Task(m, s.fold, x[s.train], y[s.train], groups[s.train], x[s.test], s.test, seed)
             for s in splits for m in models]
    frames = list(parallel_map(_fit, tasks, jobs=jobs, quiet=True))
    pred = pd.concat(frames, ignore_index=True).assign(feature_set=feature_set)
    base = majority_predictions(table, splits)
    base["row"] = table.reset_index().set_index("sample_id").loc[base["sample_id"], "index"].to_numpy()
    pred = pd.concat([pred, base.drop(columns=["sample_id", "subject", "y_true"])], ignore_index=True)
    pred["sample_id"] = table["sample_id"].to_numpy()[pred["row"]]
    pred["y_true"] = y[pred["row"]]
    pred["subject"] = groups[pred["row"]]  # the resampling unit: blocks, or "" (cells)
    return pred.assign(protocol=f"{protocol}/{block}" if protocol == "blocked-cv" else protocol)


def summary(pred: pd.DataFrame, unit_name: str) -> pd.DataFrame:
    rows = []
    for (model, feature_set), g in pred.groupby(["model", "feature_set"], sort=False):
        m = binary_metrics(g["y_true"], g["y_score"], g["y_pred"])
        ci = guarded_bootstrap_ci(g["y_true"], g["y_score"], g["y_pred"], groups=g["subject"], unit_name=unit_name,
                                  n_boot=1000, seed=0)["balanced_accuracy"]
        rows.append({"protocol": g["protocol"].iloc[0], "model": model, "feature_set": feature_set,
                     "balanced_accuracy": m["balanced_accuracy"], "ci_low": ci.low, "ci_high": ci.high,
                     "ci_note": ci.reason, "roc_auc": m["roc_auc"], "right": int((g["y_true"] == g["y_pred"]).sum())})
    return pd.DataFrame(rows).sort_values("balanced_accuracy", ascending=False, kind="stable")


def part_protocols(table, x, out, jobs):
    results, paired = [], []
    for protocol, block in PROTOCOLS:
        pred = cross_validate(table, x, "handcrafted", protocol, block, seed=0, jobs=jobs)
        unit = "blocks" if protocol == "blocked-cv" else "cells"
        table_ = summary(pred, unit)
        results.append(table_)
        best = table_.iloc[0]
        paired.append(paired_comparisons(pred, (best["model"], "handcrafted"), unit_name=unit, n_boot=1000)
                      .assign(protocol=pred["protocol"].iloc[0], reference=best["model"]))
        pred.to_csv(out / f"predictions_{_name(protocol, block)}.csv", index=False)
        calibration_table(pred, n_boot=0).assign(protocol=pred["protocol"].iloc[0]).to_csv(
            out / f"calibration_{_name(protocol, block)}.csv", index=False)
    results, paired = pd.concat(results), pd.concat(paired)
    results.to_csv(out / "protocols.csv", index=False)
    paired.to_csv(out / "paired_vs_best.csv", index=False)
    print(results.to_string(index=False, float_format="%.3f"))
    print(paired[["protocol", "reference", "model", "difference", "difference_ci_low", "difference_ci_high",
                  "only_row_right", "only_reference_right", "mcnemar_p", "holm_p", "indistinguishable"]]
          .to_string(index=False, float_format="%.3f"))


def _name(protocol: str, block: int) -> str:
    return f"{protocol}_{block}" if protocol == "blocked-cv" else protocol


def part_nested(table, x, out, jobs, protocol, block):
    y = encode_labels(table["label"])
    groups = split_groups(table, protocol, block_size=block)
    splits = list(iter_splits(table, protocol=protocol, folds=5, seed=0, block_size=block))

    def mapper(function, tasks):
        return parallel_map(function, list(tasks), jobs=jobs, quiet=True)

    result = nested_select(candidates_for(MODELS, ["handcrafted"]), {"handcrafted": x}, y, groups, splits,
                           inner_folds=3, tuning_folds=3, seed=0, sample_ids=table["sample_id"], mapper=mapper)
    name = f"{protocol}/{block}" if protocol == "blocked-cv" else protocol
    nested = result.predictions.assign(subject=groups[result.predictions["row"]], protocol=name)
    nested.to_csv(out / f"nested_{_name(protocol, block)}.csv", index=False)
    result.inner_scores.assign(protocol=name).to_csv(out / f"nested_inner_{_name(protocol, block)}.csv", index=False)
    unit = "blocks" if protocol == "blocked-cv" else "cells"
    headline = summary(nested, unit).assign(chosen=", ".join(result.chosen["model"]))
    headline.to_csv(out / f"nested_headline_{_name(protocol, block)}.csv", index=False)
    rows = pd.read_csv(out / f"predictions_{_name(protocol, block)}.csv", dtype={"subject": str})
    rows["subject"] = rows["subject"].fillna("")
    both = pd.concat([rows, nested.drop(columns=["chosen_model", "chosen_feature_set"])], ignore_index=True)
    paired = paired_comparisons(both, (NESTED_MODEL, NESTED_FEATURE_SET), unit_name=unit, n_boot=1000)
    paired.assign(protocol=name).to_csv(out / f"paired_vs_nested_{_name(protocol, block)}.csv", index=False)
    print(headline.to_string(index=False, float_format="%.3f"))
    print(paired[["model", "difference", "difference_ci_low", "difference_ci_high", "only_row_right",
                  "only_reference_right", "mcnemar_p", "holm_p", "indistinguishable"]]
          .to_string(index=False, float_format="%.3f"))


def part_repeats(table, x, out, jobs, protocol, block, models):
    frames = []
    for seed in range(5):
        pred = cross_validate(table, x, "handcrafted", protocol, block, seed=seed, jobs=jobs, models=models)
        frames.append(pred.assign(repeat=seed))
    result = summarise_repeats(pd.concat(frames, ignore_index=True)).assign(protocol=_name(protocol, block))
    result.to_csv(out / f"repeats_{_name(protocol, block)}.csv", index=False)
    print(result.to_string(index=False, float_format="%.3f"))


def _surround(item: tuple[str, int]) -> dict[str, float]:
    """Surround features of one crop; ``ring`` pixels around the expert mask count as cell too."""
    path, ring = item
    image = read_image(Path(path))
    labels = decode_allidb2_mask(tifffile.imread(Path(path).parent.parent / "masks" / Path(path).name))
    if ring > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
        grown = cv2.dilate((labels > 0).astype(np.uint8), disk) > 0
        labels = np.where(grown & (labels == 0), 1, labels).astype(np.uint8)
    return surround_features(image, labels)


def part_confound(table, out, jobs, protocol, block, models, ring):
    items = [(path, ring) for path in table["path"]]
    values = pd.DataFrame(list(parallel_map(_surround, items, jobs=jobs, quiet=True)))
    values.insert(0, "sample_id", table["sample_id"].to_numpy())
    values.to_csv(out / f"surround_features_ring{ring}.csv", index=False)
    pred = cross_validate(table, values.drop(columns="sample_id").to_numpy(float), "surround", protocol, block,
                          seed=0, jobs=jobs, models=models)
    result = summary(pred, "blocks" if protocol == "blocked-cv" else "cells")
    result["verdict"] = [confound_verdict(r.balanced_accuracy, r.ci_low, r.ci_high) for r in result.itertuples()]
    result.to_csv(out / f"confound_{_name(protocol, block)}_ring{ring}.csv", index=False)
    print(result.drop(columns="verdict").to_string(index=False, float_format="%.3f"))
    print(result.iloc[0]["verdict"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run directory with features/handcrafted.csv")
    parser.add_argument("--part", choices=("protocols", "nested", "repeats", "confound"), required=True)
    parser.add_argument("--protocol", choices=("stratified-cv", "blocked-cv"), default="blocked-cv")
    parser.add_argument("--block", type=int, default=10, help="consecutive image numbers per block (blocked-cv)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models (repeats, confound)")
    parser.add_argument("--ring", type=int, default=0,
                        help="confound: also leave out this many pixels around the expert mask")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    models = tuple(args.models.split(","))
    out = args.run / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    table, x = load(args.run)
    if args.part == "protocols":
        part_protocols(table, x, out, args.jobs)
    elif args.part == "nested":
        part_nested(table, x, out, args.jobs, args.protocol, args.block)
    elif args.part == "repeats":
        part_repeats(table, x, out, args.jobs, args.protocol, args.block, models)
    else:
        part_confound(table, out, args.jobs, args.protocol, args.block, models, args.ring)


if __name__ == "__main__":
    main()

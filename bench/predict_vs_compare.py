"""Does ``predict`` with a trained model reproduce ``compare``'s predictions of the same pipeline?

    .venv/bin/python bench/predict_vs_compare.py --run runs/demo \
        [--models logreg_handcrafted,xgboost_handcrafted,head_resnet50] [--jobs 1]

``RUN`` is a run directory where ``leukoscope train`` ran under the official protocol (e.g.
``make compare`` then ``leukoscope train --config demo --out runs/demo``). For each
model folder ``RUN/models/<name>``, ``leukoscope predict`` runs on the preliminary test set alone
(the folder ``C-NMC_test_prelim_phase_data`` of the run's dataset, read as a plain folder of
unlabelled images) into a fresh run directory, and its P(ALL) of every cell is compared with
``RUN/compare/predictions.csv`` (matched by image path). Prints per model the cells compared and
the largest absolute difference (target <= 1e-6; compare's file keeps 10 significant digits).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from leukoscope.pipeline import cli
from leukoscope.pipeline.layout import ModelLayout, RunLayout


def prelim_folder(run: RunLayout) -> Path:
    """The preliminary-test image folder of the run's dataset."""
    dataset = Path(json.loads(run.info_path.read_text())["dataset"]["path"])
    found = sorted(p for p in dataset.rglob("C-NMC_test_prelim_phase_data") if p.is_dir())
    if not found:
        raise SystemExit(f"no C-NMC_test_prelim_phase_data folder under {dataset}")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run directory with compare/ and models/")
    parser.add_argument("--models", default="logreg_handcrafted,xgboost_handcrafted,head_resnet50")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    run = RunLayout(args.run)
    compare = pd.read_csv(run.compare_file("predictions.csv"), dtype={"sample_id": str})
    paths = pd.read_csv(run.manifest_path, dtype=str).set_index("sample_id")["path"]
    folder = prelim_folder(run)
    print(f"{'model':<28} {'cells':>5} {'max |P(ALL) predict - compare|':>31}")
    for name in args.models.split(","):
        card = json.loads(ModelLayout(run.model_dir(name)).card_path.read_text())
        rows = compare[(compare["model"] == card["model"]) & (compare["feature_set"] == card["feature_set"])]
        expected = rows.set_index(rows["sample_id"].map(paths))["y_score"]
        with tempfile.TemporaryDirectory(prefix="leukoscope-pvc-") as out:
            code = cli.main(["predict", "--model", str(run.model_dir(name)), "--data", str(folder), "--dataset",
                             "folder", "--out", out, "--jobs", str(args.jobs), "--quiet"])
            if code:
                raise SystemExit(f"predict with {name} failed (exit code {code})")
            got = pd.read_csv(RunLayout(out).predictions_table).set_index("path")["p_all"]
        both = expected.index.intersection(got.index)
        if len(both) != len(expected):
            raise SystemExit(f"{name}: {len(expected) - len(both)} compare cells have no prediction")
        print(f"{name:<28} {len(both):>5} {(got[both] - expected[both]).abs().max():>31.3g}", flush=True)


if __name__ == "__main__":
    main()

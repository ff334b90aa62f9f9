"""A trained model on hand-built run directories (synthetic feature tables, no images), for the
train and predict stage tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import META_COLUMNS, QC_COLUMN, Stage
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.compare import run_compare
from leukoscope.pipeline.stages.train import run_train

from .test_compare import config, make_samples, write_features

#: C-NMC's official split over 12 subjects (8 training, 4 preliminary-test)
SPLITS = ["fold_0", "fold_1", "fold_2", "fold_0", "prelim_test", "prelim_test"] * 2
MODELS = "knn,logreg"


def official_samples() -> pd.DataFrame:
    """12 subjects x 10 cells; the preliminary-test cells are numbered ``1.bmp`` ... as in C-NMC."""
    samples = make_samples(splits=SPLITS)
    test = samples["split"] == "prelim_test"
    samples.loc[test, "path"] = [f"/data/prelim/{k}.bmp" for k in range(1, int(test.sum()) + 1)]
    return samples


def write_segmentation(run: RunDir, samples: pd.DataFrame) -> None:
    """The segmentation table the predict stage reads its QC flags from."""
    run.stage_dir(Stage.SEGMENTATION)
    samples[META_COLUMNS].assign(**{QC_COLUMN: ""}).to_csv(run.segmentation_table, index=False)


def trained(tmp_path: Path, **overrides: str) -> tuple[RunDir, pd.DataFrame, Config]:
    """compare, then train, on the handcrafted features of :func:`official_samples`."""
    run = RunDir(tmp_path / "train")
    samples = official_samples()
    write_features(run, samples)
    cfg = config(run, **{"compare.protocol": "auto", "compare.models": MODELS, "compare.feature_sets": "handcrafted",
                         **overrides})
    run_compare(cfg, run, samples)
    run_train(cfg, run, samples)
    return run, samples, cfg

"""The run directory's layout: every path, shared column list, stage name and cache key.

Nothing else in leukoscope builds a path inside a run directory by hand; stages ask a
:class:`RunLayout` (a :class:`~leukoscope.pipeline.rundir.RunDir` is one)::

    RUN_DIR/
        .leukoscope-run   marks the folder as a leukoscope run directory (datasets scans skip it)
        .leukoscope.lock  held by the one command working in the folder (pid, command, start)
        run.json          resolved config, package versions, start/end time, status, weights used
        manifest.csv      sample_id, path, label, subject, split, sha256
        rejected.csv      path, stage, reason
        fields/           (a dataset of whole smear fields) cells/<field_id>__<k>.bmp, overlays/<field_id>.png,
                          montage.png, cells.csv, fields.csv, detection_scores.json,
                          cache/fields-<settings>/<key>.npz
        segmentation/     masks/<id>.png, overlays/<id>.png, montage.png, segmentation.csv,
                          summary.csv, cache/segment-<settings>/<image sha256>.npz
        features/         handcrafted.csv, columns.csv, surround.csv, cnn_<backbone>.csv (+ .parquet copies),
                          subjects.csv, univariate.csv (+ .columns.csv, .parquet), statistics.json,
                          effect_sizes.png, volcano.png, subject_boxplots.png,
                          cache/{handcrafted,cnn_<backbone>[_mirror]}-<settings>/<key>.npz
        heads/            <backbone>/model.keras, head.json, history.csv, learning_curve.png;
                          predictions.csv
        compare/          results.csv, predictions.csv, feature_sets.csv, class_counts.csv, paired.csv,
                          nested_chosen.csv, nested_inner_scores.csv, calibration.csv, repeats.csv,
                          confound.csv, report.md, report.html, *.png
        models/           <model>_<feature set>/ and head_<backbone>/: one model folder each
                          (see :class:`ModelLayout`), written by ``leukoscope train``
        predict/          predictions.csv, subjects.csv, shift.csv, results.csv (labelled cells),
                          cnmc_<split>_submission.zip (C-NMC test sets)
        <stage folder>/.<stage>.stage.json   what the stage's outputs were computed from

A model folder (:class:`ModelLayout`) can be copied anywhere::

    MODEL_DIR/
        model.json        the model card: inputs, training data, evaluation, versions
        MODEL.md          the same card for people: intended use and limits
        model.skops       a scikit-learn pipeline (skops), or
        model.keras       a sigmoid head with its backbone (Keras, loaded with safe_mode)
        SHA256SUMS        the SHA-256 of every other file (``sha256sum -c SHA256SUMS`` checks it)
"""

from __future__ import annotations

import hashlib
from enum import Enum
from pathlib import Path

from leukoscope.classifiers.featuresets import cnn_name, head_name


class Stage(str, Enum):
    """The stages: nodes of the stage graph, and the name they carry in ``rejected.csv``
    (``load`` is the dataset scan before any stage, ``fields`` the cutting of white cells out of
    whole fields that makes the samples of a field dataset)."""

    LOAD = "load"
    FIELDS = "fields"
    SEGMENTATION = "segmentation"
    HANDCRAFTED = "handcrafted"
    STATISTICS = "statistics"
    EMBEDDINGS = "embeddings"
    HEADS = "heads"
    COMPARE = "compare"
    TRAIN = "train"
    PREDICT = "predict"


MANIFEST_COLUMNS = ["sample_id", "path", "label", "subject", "split", "sha256"]
REJECTED_COLUMNS = ["path", "stage", "reason"]
#: the sample columns every per-sample table starts with
META_COLUMNS = ["sample_id", "subject", "label", "split"]
QC_COLUMN = "qc_flag"
WEIGHTS_COLUMN = "weights"
#: out-of-fold predictions, written by the heads and compare stages
PREDICTION_COLUMNS = ["sample_id", "subject", "protocol", "fold", "model", "feature_set", "y_true", "y_score", "y_pred"]
#: the heads' two sigmoid outputs (HEM, ALL), kept beside P(ALL) in heads/predictions.csv
HEAD_OUTPUT_COLUMNS = ["out_hem", "out_all"]
#: the resampling unit of a compare prediction (subject, block, or "" for each cell its own)
UNIT_COLUMN = "unit"

#: folder of each stage's outputs (the embeddings are features too)
_FOLDERS = {
    Stage.FIELDS: "fields", Stage.SEGMENTATION: "segmentation", Stage.HANDCRAFTED: "features",
    Stage.STATISTICS: "features", Stage.EMBEDDINGS: "features", Stage.HEADS: "heads", Stage.COMPARE: "compare",
    Stage.TRAIN: "models", Stage.PREDICT: "predict",
}
#: the file that marks a folder as a leukoscope run directory
RUN_MARKER = ".leukoscope-run"
#: the name of the result caches' folder inside a stage folder
CACHE_FOLDER = "cache"


def is_run_dir(folder: str | Path) -> bool:
    """Whether ``folder`` is a leukoscope run directory (holds :data:`RUN_MARKER`)."""
    return (Path(folder) / RUN_MARKER).is_file()


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_key(image_sha256: str, mask_path: str | Path | None = None, *, mask_sha256: str = "") -> str:
    """The cache key of a sample: its image's SHA-256, combined with its mask's when one is used
    (read from ``mask_path``, or given as ``mask_sha256`` when the mask was just written)."""
    if mask_path is None and not mask_sha256:
        return image_sha256
    mask_sha256 = mask_sha256 or sha256_file(mask_path)
    return hashlib.sha256(f"{image_sha256}:{mask_sha256}".encode()).hexdigest()


def cutout_id(field_id: str, number: int) -> str:
    """The sample id of the ``number``-th cell (1, 2, ...) cut out of field ``field_id``."""
    return f"{field_id}__{number}"


def missing_mask_reason(mask_path: Path) -> str:
    """The ``rejected.csv`` reason of a sample whose segmentation mask is absent."""
    return f"no segmentation mask '{mask_path.name}' in {mask_path.parent}; rerun 'leukoscope segment'"


class RunLayout:
    """Where everything of one run lives; creates nothing but the folders it is asked for.

    Parameters
    ----------
    path : str or Path
        The run directory.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- top level ----------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.csv"

    @property
    def rejected_path(self) -> Path:
        return self.path / "rejected.csv"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def marker_path(self) -> Path:
        return self.path / RUN_MARKER

    @property
    def lock_path(self) -> Path:
        return self.path / ".leukoscope.lock"

    @property
    def records(self) -> list[Path]:
        """The top-level files leukoscope writes (besides the stage folders)."""
        return [self.info_path, self.manifest_path, self.rejected_path]

    @property
    def stage_folders(self) -> list[Path]:
        """Every stage folder, once each, in graph order."""
        return list(dict.fromkeys(self.folder(stage) for stage in _FOLDERS))

    def stage_record(self, stage: Stage) -> Path:
        """What a stage's outputs were computed from (:mod:`leukoscope.pipeline.freshness`)."""
        stage = Stage(stage)
        return self.folder(stage) / f".{stage.value}.stage.json"

    def folder(self, stage: Stage) -> Path:
        """The folder of a stage's outputs (not created)."""
        return self.path / _FOLDERS[Stage(stage)]

    def stage_dir(self, stage: Stage) -> Path:
        """The folder of a stage's outputs, created when missing."""
        folder = self.folder(stage)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def cache_root(self, stage: Stage) -> Path:
        """Parent folder of a stage's result caches."""
        return self.folder(stage) / CACHE_FOLDER

    # -- fields (before the manifest: its samples are the cut-outs) ---------------------
    @property
    def cutouts_dir(self) -> Path:
        return self.folder(Stage.FIELDS) / "cells"

    def cutout_path(self, sample_id: str) -> Path:
        """A cell cut out of a field, on black (C-NMC's style); ``sample_id`` from :func:`cutout_id`."""
        return self.cutouts_dir / f"{sample_id}.bmp"

    @property
    def field_overlays_dir(self) -> Path:
        return self.folder(Stage.FIELDS) / "overlays"

    def field_overlay_path(self, field_id: str) -> Path:
        return self.field_overlays_dir / f"{field_id}.png"

    @property
    def cells_table(self) -> Path:
        return self.folder(Stage.FIELDS) / "cells.csv"

    @property
    def fields_table(self) -> Path:
        return self.folder(Stage.FIELDS) / "fields.csv"

    @property
    def fields_montage(self) -> Path:
        return self.folder(Stage.FIELDS) / "montage.png"

    @property
    def detection_scores(self) -> Path:
        return self.folder(Stage.FIELDS) / "detection_scores.json"

    # -- segmentation -------------------------------------------------------------------
    @property
    def sample_folders(self) -> list[Path]:
        """The folders of one ``<sample_id>.png`` per sample: masks, overlays."""
        return [self.folder(Stage.SEGMENTATION) / "masks", self.folder(Stage.SEGMENTATION) / "overlays"]

    def mask_path(self, sample_id: str) -> Path:
        """The label mask PNG of a sample (0 background, 1 cytoplasm, 2 nucleus)."""
        return self.sample_folders[0] / f"{sample_id}.png"

    def overlay_path(self, sample_id: str) -> Path:
        return self.sample_folders[1] / f"{sample_id}.png"

    @property
    def segmentation_table(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "segmentation.csv"

    @property
    def segmentation_summary(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "summary.csv"

    @property
    def montage_path(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "montage.png"

    @property
    def montage_qc_path(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "montage_qc.png"

    @property
    def gallery_path(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "gallery.html"

    @property
    def qc_summary_path(self) -> Path:
        return self.folder(Stage.SEGMENTATION) / "qc_summary.csv"

    # -- features -----------------------------------------------------------------------
    @property
    def handcrafted_table(self) -> Path:
        return self.folder(Stage.HANDCRAFTED) / "handcrafted.csv"

    @property
    def columns_table(self) -> Path:
        return self.folder(Stage.HANDCRAFTED) / "columns.csv"

    @property
    def surround_table(self) -> Path:
        """Colour of the pixels outside each cell (the confound check; not a feature set)."""
        return self.folder(Stage.HANDCRAFTED) / "surround.csv"

    def embeddings_table(self, backbone: str) -> Path:
        return self.folder(Stage.EMBEDDINGS) / f"{cnn_name(backbone)}.csv"

    # -- statistics ---------------------------------------------------------------------
    @property
    def subjects_table(self) -> Path:
        """One row per subject: label, cell counts, median and IQR of every feature."""
        return self.folder(Stage.STATISTICS) / "subjects.csv"

    @property
    def univariate_table(self) -> Path:
        """One row per feature: ALL against HEM with the subject as the unit."""
        return self.folder(Stage.STATISTICS) / "univariate.csv"

    @property
    def statistics_record(self) -> Path:
        """What the statistics stage was run with and wrote (settings, counts, figure captions)."""
        return self.folder(Stage.STATISTICS) / "statistics.json"

    def statistics_figure(self, name: str) -> Path:
        """A figure of the univariate table: ``effect_sizes``, ``volcano`` or ``subject_boxplots``."""
        return self.folder(Stage.STATISTICS) / f"{name}.png"

    # -- heads --------------------------------------------------------------------------
    def head_dir(self, backbone: str) -> Path:
        return self.folder(Stage.HEADS) / backbone

    @property
    def head_predictions(self) -> Path:
        return self.folder(Stage.HEADS) / "predictions.csv"

    # -- compare ------------------------------------------------------------------------
    def compare_file(self, name: str) -> Path:
        return self.folder(Stage.COMPARE) / name

    # -- train --------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        """The model folder ``name`` (e.g. ``xgboost_handcrafted``, ``head_resnet50``)."""
        return self.folder(Stage.TRAIN) / name

    # -- predict ------------------------------------------------------------------------
    def predict_file(self, name: str) -> Path:
        return self.folder(Stage.PREDICT) / name

    @property
    def predictions_table(self) -> Path:
        return self.predict_file("predictions.csv")

    @property
    def predict_subjects_table(self) -> Path:
        return self.predict_file("subjects.csv")


class ModelLayout:
    """The files of one model folder (see the module docstring); creates nothing.

    Parameters
    ----------
    path : str or Path
        The model folder.
    """

    CARD = "model.json"
    CARD_TEXT = "MODEL.md"
    ESTIMATOR = "model.skops"
    HEAD = "model.keras"
    DIGESTS = "SHA256SUMS"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def card_path(self) -> Path:
        return self.path / self.CARD

    @property
    def digests_path(self) -> Path:
        return self.path / self.DIGESTS


__all__ = [
    "CACHE_FOLDER", "HEAD_OUTPUT_COLUMNS", "META_COLUMNS", "MANIFEST_COLUMNS", "PREDICTION_COLUMNS", "QC_COLUMN",
    "REJECTED_COLUMNS", "RUN_MARKER", "UNIT_COLUMN", "WEIGHTS_COLUMN", "ModelLayout", "RunLayout", "Stage",
    "cache_key", "cnn_name", "cutout_id", "head_name", "is_run_dir", "missing_mask_reason", "sha256_file",
]

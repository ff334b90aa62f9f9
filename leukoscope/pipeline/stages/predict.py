"""The ``predict`` stage: apply a trained model folder (``leukoscope train``) to new cells.

``leukoscope predict --model MODEL_DIR --data NEW --out RUN`` runs, with the model's own
segmentation and feature settings, only the stages the model needs (segmentation always; the
handcrafted features and a backbone's embeddings when its inputs use them), then this stage,
which streams the cells through the model chunk by chunk and writes::

    RUN/predict/predictions.csv   sample_id, path, subject, label ("" when unknown), p_all,
                                  call (ALL/HEM; "" when the cell has no usable feature),
                                  qc_flag, outside_range (key features outside the training range)
    RUN/predict/subjects.csv      per subject: cells, called_all, fraction_all, mean_p_all, call
                                  (the rule in the model card), label, labelled_cells
    RUN/predict/shift.csv         per key feature: training range, share of the cells outside
    RUN/predict/warnings.txt      when the cells are far from the training data (also logged)
    RUN/predict/results.csv       with labelled cells: the metrics as ``compare`` writes them
    RUN/predict/cnmc_<split>_submission.zip   C-NMC's preliminary / final test set, in the
                                  challenge's submission form (:mod:`..cnmc_submission`)

The model folder is verified first (digests, leukoscope major version, safe loading), and a
feature table whose columns differ from the model's saved column list is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.classifiers.featuresets import NO_WEIGHTS
from leukoscope.classifiers.metrics import predict_labels
from leukoscope.classifiers.shift import InputReference, ShiftTally, background_shift
from leukoscope.classifiers.splits import encode_labels, with_subject_strings
from leukoscope.classifiers.subjects import SubjectTally
from leukoscope.features.backbones import get_backbone
from leukoscope.pipeline.atomic import atomic_path, write_csv, write_text
from leukoscope.pipeline.backgrounds import background_of_files
from leukoscope.pipeline.cnmc_submission import TEST_SPLITS, image_number, missing_numbers, write_submission
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.console import import_keras
from leukoscope.pipeline.embedding_stream import (
    EmbeddingJob,
    NetworkCache,
    build_network,
    embedding_job,
    iter_pooled,
    network_sha256,
)
from leukoscope.pipeline.evaluation import COMPARE_PREDICTION_COLUMNS, summarise
from leukoscope.pipeline.feature_tables import iter_joined, table_columns
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import QC_COLUMN, UNIT_COLUMN, ModelLayout, RunLayout, Stage
from leukoscope.pipeline.model_card import refiner_sha256
from leukoscope.pipeline.model_folder import ModelFolder, ModelFolderError, load_estimator, load_head, open_model_folder
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec
from leukoscope.pipeline.weights import ResolvedWeights, WeightsUnavailableError

log = logging.getLogger(__name__)

PREDICT_COLUMNS = ["sample_id", "path", "subject", "label", "p_all", "call", QC_COLUMN, "outside_range"]
PROTOCOL = "predict"


class _Output:
    """Writes the prediction rows as they come and keeps the per-subject, shift and metric sums."""

    def __init__(self, folder: ModelFolder, samples: pd.DataFrame, handle: Any) -> None:
        self.card, self.samples, self.handle = folder.card, samples, handle
        self.subjects = SubjectTally()
        self.shift = ShiftTally(InputReference.from_dict(folder.card["reference"]["inputs"]))
        self.labelled: list[pd.DataFrame] = []
        self.numbered: dict[str, dict[int, int]] = {split: {} for split in TEST_SPLITS}
        self.rows = self.scored = 0

    def add(self, positions: np.ndarray, x: np.ndarray, score: np.ndarray, qc: list[str]) -> None:
        """One chunk: sample positions, the model inputs (for the shift check), P(ALL) (NaN: no
        prediction), the QC flags."""
        meta = self.samples.iloc[positions]
        scored = ~np.isnan(score)
        pred = np.where(scored, predict_labels(np.nan_to_num(score)), -1)
        outside = self.shift.add(x)
        frame = pd.DataFrame({
            "sample_id": meta["sample_id"].to_numpy(), "path": meta["path"].to_numpy(),
            "subject": meta["subject"].to_numpy(), "label": meta["label"].to_numpy(), "p_all": score,
            "call": np.select([pred == 1, pred == 0], ["ALL", "HEM"], ""), QC_COLUMN: qc, "outside_range": outside,
        }, columns=PREDICT_COLUMNS)
        frame.to_csv(self.handle, header=self.rows == 0, index=False, lineterminator="\n")
        self.rows += len(frame)
        self.scored += int(scored.sum())
        self.subjects.add(frame["subject"], score, np.clip(pred, 0, 1), frame["label"])
        y_true = encode_labels(frame["label"])
        known = scored & (y_true >= 0)
        if known.any():
            self.labelled.append(pd.DataFrame({
                "sample_id": frame["sample_id"][known], "subject": frame["subject"][known], "y_true": y_true[known],
                "y_score": score[known], "y_pred": pred[known]}))
        for split, number, call in zip(meta["split"], [image_number(p) for p in meta["path"]], pred):
            if split in self.numbered and number is not None and call >= 0:
                self.numbered[split][number] = int(call)


def _qc_flags(run: RunLayout) -> dict[str, str]:
    table = pd.read_csv(run.segmentation_table, dtype=str, keep_default_na=False, usecols=["sample_id", QC_COLUMN])
    return dict(zip(table["sample_id"], table[QC_COLUMN]))


def _joined_flags(*flags: str) -> str:
    return ";".join(f for f in dict.fromkeys(flags) if f)


def _check_columns(folder: ModelFolder, run: RunLayout) -> list[Path]:
    """The feature tables of the model's inputs, refused when their columns differ from the saved list."""
    inputs = folder.card["inputs"]
    paths = []
    for entry in inputs["tables"]:
        path = (run.handcrafted_table if entry["table"] == "handcrafted"
                else run.embeddings_table(inputs["backbone"]["name"]))
        found, saved = table_columns(path), entry["columns"]
        if found != saved:
            first = next((i for i, (a, b) in enumerate(zip(found, saved)) if a != b), min(len(found), len(saved)))
            raise ModelFolderError(
                f"the features computed now no longer match the model's saved column list: '{path}' has "
                f"{len(found)} feature columns, the model {len(saved)}; first difference at column {first + 1} "
                f"({found[first] if first < len(found) else 'none'!r} here, "
                f"{saved[first] if first < len(saved) else 'none'!r} in the model). Predict with leukoscope "
                f"{folder.card['versions'].get('leukoscope')} (which trained it), or retrain the model")
        paths.append(path)
    return paths


def _classifier_chunks(folder: ModelFolder, run: RunDir, samples: pd.DataFrame, order: dict[str, int],
                       qc: dict[str, str]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    estimator = load_estimator(folder)
    tables = folder.card["inputs"]["tables"]
    paths = _check_columns(folder, run)
    columns = [c for entry in tables for c in entry["columns"]]
    for chunk in iter_joined(paths, [entry["columns"] for entry in tables], order):
        x = chunk[columns].to_numpy(dtype=float)
        x[~np.isfinite(x)] = np.nan
        usable = ~np.isnan(x).all(axis=1)
        score = np.full(len(x), np.nan)
        if usable.any():
            score[usable] = estimator.predict_proba(x[usable])[:, 1]
        flags = chunk[QC_COLUMN] if QC_COLUMN in chunk.columns else [""] * len(chunk)
        qc_rows = [_joined_flags(qc.get(s, ""), f) for s, f in zip(chunk["sample_id"], flags)]
        yield chunk["sample_id"].map(order).to_numpy(), x, score, qc_rows


def _head_job(folder: ModelFolder, config: Config) -> EmbeddingJob:
    backbone = folder.card["inputs"]["backbone"]
    weights = ResolvedWeights(label=backbone["weights"]["label"], path=None, source="model",
                              sha256=folder.digests[ModelLayout.HEAD])
    return EmbeddingJob(spec=get_backbone(backbone["name"]), weights=weights, size=backbone["input_size"],
                        mask_background=backbone["mask_background"], mirror=False,
                        batch_size=backbone["batch_size"], seed=config.run.seed)


def _head_chunks(folder: ModelFolder, config: Config, run: RunDir, samples: pd.DataFrame,
                 qc: dict[str, str]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    from leukoscope.classifiers.heads import build_pooled_head, copy_head, mirror_pairs, predict_scores

    keras = import_keras()
    model = load_head(folder)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    recipe = folder.card["inputs"]["recipe"]
    job = _head_job(folder, config)
    head = build_pooled_head(job.spec.embedding_size, dropout=recipe["dropout"])
    copy_head(model, head)
    networks = NetworkCache()
    networks.provide(job, backbone)
    for positions, pooled in iter_pooled(job, run, samples, quiet=config.run.quiet, networks=networks):
        score = predict_scores(head, mirror_pairs(pooled["max"]), batch_size=recipe["batch_size"])
        ids = samples["sample_id"].to_numpy()[positions]
        yield positions, pooled["max"], score, [qc.get(s, "") for s in ids]


def _warnings(output: _Output, backgrounds: dict[str, float]) -> list[str]:
    found = []
    if output.shift.far():
        table = output.shift.table()
        shifted = table[table["shifted"]]
        found.append(f"the new cells are far from the training data: more than {output.shift.reference.cell_share:.0%} "
                     f"of them lie outside the training range of {len(shifted)} of the {len(table)} key features "
                     f"({', '.join(shifted['feature'])}); the model's numbers may not hold here")
    reason = background_shift(output.card["reference"]["background"], backgrounds)
    if reason:
        found.append(f"the background differs from the training data: {reason}")
    return found


def _write_metrics(output: _Output, run: RunDir, config: Config) -> int:
    if not output.labelled:
        return 0
    card = output.card
    frame = pd.concat(output.labelled, ignore_index=True)
    frame = frame.assign(protocol=PROTOCOL, fold="", model=card["model"], feature_set=card["feature_set"],
                         **{UNIT_COLUMN: frame["subject"]})[COMPARE_PREDICTION_COLUMNS]  # "": each cell its own
    weights = (card["inputs"].get("backbone") or {}).get("weights", {}).get("label", NO_WEIGHTS)
    results = summarise(frame, {card["feature_set"]: card["training"]["cells"]}, {card["feature_set"]: weights},
                        unit_name="subjects", n_boot=config.compare.bootstrap, seed=config.run.seed)
    write_csv(results, run.predict_file("results.csv"))
    return len(frame)


def _submission_path(run: RunLayout, split: str) -> Path:
    return run.predict_file(f"cnmc_{split}_submission.zip")


def _write_submissions(output: _Output, run: RunDir) -> list[str]:
    written = []
    for split, calls in output.numbered.items():
        if not calls:
            continue
        missing = missing_numbers(calls)
        if missing:
            log.warning("predict: no C-NMC submission for %s: %d image number(s) have no call (first %d)",
                        split, len(missing), missing[0])
            continue
        target = _submission_path(run, split)
        write_submission(calls, target)
        written.append(str(target))
    return written


def run_predict(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """The ``predict`` stage (see the module docstring).

    Raises
    ------
    ModelFolderError
        The model folder is missing, edited, of another major version or unsafe, or the
        features computed now do not match its saved column list.
    """
    folder = open_model_folder(config.predict.model)
    samples = run.kept(with_subject_strings(samples))
    order = {sample_id: i for i, sample_id in enumerate(samples["sample_id"])}
    qc = _qc_flags(run)
    run.stage_dir(Stage.PREDICT)
    for stale in (run.predict_file("results.csv"), run.predict_file("warnings.txt"),
                  *(_submission_path(run, split) for split in TEST_SPLITS)):
        stale.unlink(missing_ok=True)  # of an earlier predict in this run directory
    with atomic_path(run.predictions_table) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        output = _Output(folder, samples, handle)
        chunks = (_head_chunks(folder, config, run, samples, qc) if folder.card["kind"] == "head"
                  else _classifier_chunks(folder, run, samples, order, qc))
        for positions, x, score, flags in chunks:
            output.add(positions, x, score, flags)
        if output.rows == 0:
            pd.DataFrame(columns=PREDICT_COLUMNS).to_csv(handle, index=False, lineterminator="\n")
    write_csv(output.subjects.table(), run.predict_subjects_table)
    write_csv(output.shift.table(), run.predict_file("shift.csv"))
    backgrounds = background_of_files(list(samples["path"]))
    warnings = _warnings(output, backgrounds)
    if warnings:
        write_text("".join(f"WARNING: {w}\n" for w in warnings), run.predict_file("warnings.txt"))
    for warning in warnings:
        log.warning("predict: %s", warning)
    labelled = _write_metrics(output, run, config)
    submissions = _write_submissions(output, run)
    run.update_info(predict={"model": str(folder.path), "model_sha256": folder.digest, "name": folder.card["name"],
                             "cells": output.rows, "scored": output.scored, "labelled": labelled,
                             "backgrounds": backgrounds, "warnings": warnings, "submissions": submissions})
    log.info("predict: %d cells (%d scored, %d labelled) in %s", output.rows, output.scored, labelled,
             run.predictions_table)


def _check(config: Config, samples: pd.DataFrame) -> None:
    """Refuse before any stage runs: an edited or foreign model folder, an untrusted payload,
    or a backbone that would not compute the features the model was trained on."""
    folder = open_model_folder(config.predict.model)
    if folder.card["kind"] != "head":
        load_estimator(folder)
    if refiner_sha256(config.segmentation) != folder.card["refiner_sha256"]:
        raise ModelFolderError(
            f"the segmentation refiner file here ('{config.segmentation.refiner_model or 'the shipped one'}') is "
            "missing or differs from the one the model was trained with (SHA-256 in model.json: "
            "refiner_sha256); pass that file with --refiner-model")
    backbone = folder.card["inputs"].get("backbone")
    if folder.card["inputs"].get("uses_embeddings"):
        job = embedding_job(config, backbone["name"], size=backbone["input_size"],
                            mask_background=backbone["mask_background"])
        if network_sha256(build_network(job)) != backbone["network_sha256"]:
            raise WeightsUnavailableError(
                f"the {backbone['name']} network built here (weights {job.weights.label}) differs from the one the "
                f"model was trained with (weights {backbone['weights']['label']}, seed {backbone['seed']}, "
                f"{folder.card['versions'].get('keras', '?')} Keras): its embeddings would not be the model's inputs; "
                "predict with the weights file and Keras version recorded in model.json")


def _needs(config: Config) -> tuple[Stage, ...]:
    return (Stage.SEGMENTATION, *((Stage.HANDCRAFTED,) if config.features.families else ()),
            *((Stage.EMBEDDINGS,) if config.features.backbones else ()))


STAGE = StageSpec(
    name=Stage.PREDICT,
    run=run_predict,
    needs=_needs,
    active=lambda config: bool(config.predict.model),
    done=lambda config, layout: layout.predictions_table.exists(),
    settings=settings_of("predict", "segmentation", "features", "compare.bootstrap", "run.seed"),
    check=_check,
)

__all__ = ["PREDICT_COLUMNS", "PROTOCOL", "STAGE", "run_predict"]

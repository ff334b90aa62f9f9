"""The ``train`` stage: fit the chosen pipelines on the labelled training data, one model folder each.

``run_train(config, run, samples)`` fits every model in ``compare.models`` on every feature set
in ``compare.feature_sets`` (handcrafted, ``cnn_<backbone>``, ``hybrid_<backbone>``) and packages
every fine-tuned head (``head_<backbone>``), writing::

    RUN/models/<model>_<feature set>/   model.skops, model.json, MODEL.md, SHA256SUMS
    RUN/models/head_<backbone>/          model.keras, model.json, MODEL.md, SHA256SUMS

The training data are the rows ``compare`` trains on: under the ``official`` protocol (C-NMC)
the training folds, so that the preliminary test set stays unseen and ``predict`` on it
reproduces ``compare``'s predictions; under cross-validation every labelled cell. A classical
model is tuned and fitted exactly as in one ``compare`` fold
(:func:`~leukoscope.classifiers.models.fit_best`, same rows in the same order, same seed); a head
is the model the heads stage saved. The card's metrics are the ``compare`` results of that
pipeline, which this stage runs first when they are missing.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import ClassifierName, FeatureSetKind, Protocol
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.featuresets import FeatureSet, head_name, hybrid_name
from leukoscope.classifiers.models import fit_best
from leukoscope.classifiers.shift import fit_reference
from leukoscope.classifiers.splits import (
    encode_labels,
    iter_splits,
    resolve_protocol,
    split_groups,
    with_subject_strings,
)
from leukoscope.features.registry import resolve_families
from leukoscope.pipeline.backgrounds import background_of_files
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.embedding_stream import (
    EmbeddingJob,
    build_network,
    embedding_job,
    iter_pooled,
    network_sha256,
)
from leukoscope.pipeline.feature_tables import build_feature_sets, wanted_backbones, wanted_heads
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import ModelLayout, RunLayout, Stage, cnn_name
from leukoscope.pipeline.model_card import build_card, evaluation_of, render_card, training_counts
from leukoscope.pipeline.model_folder import dump_estimator, remove_staging, write_model_folder
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec

log = logging.getLogger(__name__)

CLASSIFIER = "classifier"
HEAD = "head"


@dataclass(frozen=True, eq=False)
class _Fit:
    """One model to fit on the training rows of one feature set (picklable for the workers)."""

    model: ClassifierName
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    inner_folds: int
    seed: int
    pca_columns: np.ndarray
    pca_components: int


def _fit(task: _Fit) -> tuple[Any, dict[str, Any]]:
    return fit_best(task.model, task.x, task.y, groups=task.groups, inner_folds=task.inner_folds, seed=task.seed,
                    pca_columns=task.pca_columns, pca_components=task.pca_components)


def model_name(model: str, feature_set: str) -> str:
    """The folder name of a classical model on a feature set (``xgboost_handcrafted``)."""
    return f"{model}_{feature_set}"


def model_names(config: Config) -> list[str]:
    """The model folders ``train`` writes under ``config``."""
    kinds = set(config.compare.feature_sets)
    sets = ["handcrafted"] if FeatureSetKind.HANDCRAFTED in kinds else []
    for backbone in wanted_backbones(config):
        sets += [name for kind, name in ((FeatureSetKind.CNN, cnn_name(backbone)),
                                         (FeatureSetKind.HYBRID, hybrid_name(backbone))) if kind in kinds]
    return [model_name(m.value, s) for s in sets for m in config.compare.models] + \
        [head_name(b) for b in wanted_heads(config)]


def training_rows(samples: pd.DataFrame, protocol: Protocol, config: Config) -> np.ndarray:
    """Row positions of the training data: the official split's training part, else every labelled row."""
    if protocol is Protocol.OFFICIAL:
        return next(iter_splits(samples, protocol=protocol, folds=config.compare.folds, seed=config.run.seed,
                                block_size=config.compare.block_size)).train
    return np.flatnonzero(encode_labels(samples["label"]) >= 0)


def _files(card: dict[str, Any], payload: str, content: Any) -> dict[str, Any]:
    return {ModelLayout.CARD: (json.dumps(card, indent=2, default=str) + "\n").encode(),
            ModelLayout.CARD_TEXT: render_card(card).encode(), payload: content}


def _training_section(run: RunDir, rows: pd.DataFrame, protocol: Protocol, best: dict[str, Any]) -> dict[str, Any]:
    dataset = run.read_info().get("dataset", {})
    part = ("the official training folds (split fold_* or train)" if protocol is Protocol.OFFICIAL
            else "every labelled cell")
    return {**training_counts(rows), "dataset": dataset.get("path", ""), "kind": dataset.get("kind", ""),
            "protocol": protocol.value, "part": part, "best_params": best}


def _network_info(config: Config, job: EmbeddingJob, digest: str) -> dict[str, Any]:
    return {"name": job.spec.name.value, "input_size": job.size, "mask_background": job.mask_background,
            "batch_size": job.batch_size, "seed": config.run.seed, "weights": job.weights.info(),
            "network_sha256": digest, "preprocess": f"keras.applications.{job.spec.module}.preprocess_input"}


def _tables(fs: FeatureSet, backbone: str | None) -> list[dict[str, Any]]:
    """The features tables a feature set is read from, each with its columns in order."""
    if backbone is None:
        return [{"table": "handcrafted", "columns": list(fs.columns)}]
    split = len(fs.columns) - len(fs.pca_columns) if fs.name == hybrid_name(backbone) else 0
    hand = [{"table": "handcrafted", "columns": list(fs.columns[:split])}] if split else []
    return hand + [{"table": cnn_name(backbone), "columns": list(fs.columns[split:])}]


def _classifier_inputs(config: Config, fs: FeatureSet, network: dict[str, Any] | None) -> dict[str, Any]:
    tables = _tables(fs, network["name"] if network else None)
    families = ([f.value for f in resolve_families(config.features.families)]
                if tables[0]["table"] == "handcrafted" else [])
    described = " + ".join(f"{len(t['columns'])} `{t['table']}` columns" for t in tables)
    return {"description": described + (f" (families {', '.join(families)})" if families else ""),
            "tables": tables, "families": families, "uses_embeddings": network is not None,
            "backbone": network, "pca_components": min(config.compare.hybrid_pca, len(fs.pca_columns))}


def _train_classifiers(config: Config, run: RunDir, samples: pd.DataFrame, rows: np.ndarray, protocol: Protocol,
                       results: pd.DataFrame) -> list[dict[str, Any]]:
    """Fit and write every classical model; return their cards."""
    labelled = samples[encode_labels(samples["label"]) >= 0]
    sets, _counts = build_feature_sets(config, run, set(labelled["sample_id"]))
    train_ids = samples["sample_id"].to_numpy()[rows]
    by_id = samples.assign(unit=split_groups(samples, protocol, block_size=config.compare.block_size))
    by_id = by_id.set_index("sample_id")
    networks = {}
    for backbone in wanted_backbones(config):
        job = embedding_job(config, backbone, size=config.features.input_size,
                            mask_background=config.features.mask_background)
        networks[backbone] = _network_info(config, job, network_sha256(build_network(job)))
    cards = []
    for fs in sets:
        chosen = np.isin(fs.sample_ids, train_ids)
        ids = fs.sample_ids[chosen]
        x, y = fs.x[chosen], encode_labels(by_id["label"].reindex(ids))
        used = by_id.loc[ids].reset_index()
        network = next((networks[b] for b in networks if fs.name in (cnn_name(b), hybrid_name(b))), None)
        inputs = _classifier_inputs(config, fs, network)
        reference = {"inputs": fit_reference(x, y, fs.columns).to_dict(),
                     "background": background_of_files(list(used["path"]))}
        tasks = [_Fit(model, x, y, used["unit"].to_numpy(dtype=object), config.compare.inner_folds,
                      config.run.seed, fs.pca_columns, config.compare.hybrid_pca) for model in config.compare.models]
        fitted = parallel_map(_fit, tasks, jobs=config.run.jobs, backend=config.run.backend,
                              scheduler=config.run.scheduler, desc=f"train {fs.name}", quiet=config.run.quiet,
                              unit="fit")
        for model, (estimator, best) in zip(config.compare.models, fitted):
            name = model_name(model.value, fs.name)
            card = build_card(
                name=name, kind=CLASSIFIER, model=model.value, feature_set=fs.name, payload=ModelLayout.ESTIMATOR,
                config=config, inputs=inputs, training=_training_section(run, used, protocol, best),
                evaluation=evaluation_of(results, model.value, fs.name), reference=reference, weights=fs.weights)
            write_model_folder(run.model_dir(name), _files(card, ModelLayout.ESTIMATOR, dump_estimator(estimator)))
            cards.append(card)
    return cards


def _train_head(config: Config, run: RunDir, samples: pd.DataFrame, rows: np.ndarray, protocol: Protocol,
                backbone: str, results: pd.DataFrame) -> dict[str, Any]:
    """Package the heads stage's model of ``backbone``; return its card."""
    folder = run.head_dir(backbone)
    saved, recipe = folder / ModelLayout.HEAD, folder / "head.json"
    if not saved.exists() or not recipe.exists():
        raise EvaluationError(f"'{saved}' or '{recipe}' is missing after the heads stage ran; run 'leukoscope compare' "
                              "with the same --config and --out, then train again")
    head = json.loads(recipe.read_text(encoding="utf-8"))
    job = embedding_job(config, backbone, size=config.heads.input_size, mask_background=config.heads.mask_background)
    part = samples.iloc[rows].reset_index(drop=True)
    positions, pooled = [], []
    for batch_positions, batch in iter_pooled(job, run, part, quiet=config.run.quiet):
        positions.append(batch_positions)
        pooled.append(batch["max"])
    used = part.iloc[np.concatenate(positions)].reset_index(drop=True)
    x = np.concatenate(pooled)
    reference = fit_reference(x, encode_labels(used["label"]), [f"pooled_max_{i:04d}" for i in range(x.shape[1])])
    name = head_name(backbone)
    network = {**_network_info(config, job, ""), "weights": head["weights"], "preprocess": head["preprocess"],
               "network_sha256": None}  # the network is in model.keras
    inputs = {"description": f"the image through {backbone} at {job.size} px (weights {head['weights']['label']}), "
                             "max-pooled, then the trained sigmoid head", "tables": [], "families": [],
              "uses_embeddings": False, "backbone": network, "classes": head["classes"], "score": head["score"],
              "recipe": head["recipe"]}
    card = build_card(
        name=name, kind=HEAD, model="sigmoid_head", feature_set=name, payload=ModelLayout.HEAD, config=config,
        inputs=inputs, training=_training_section(run, used, protocol, {}),
        evaluation=evaluation_of(results, None, name),
        reference={"inputs": reference.to_dict(), "background": background_of_files(list(used["path"]))},
        weights=head["weights"]["label"])
    write_model_folder(run.model_dir(name),
                       _files(card, ModelLayout.HEAD, lambda target: shutil.copyfile(saved, target)))
    return card


def run_train(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """The ``train`` stage (see the module docstring).

    Raises
    ------
    EvaluationError
        The data cannot be split as asked, or an input is missing after the earlier stages ran.
    """
    samples = run.kept(with_subject_strings(samples))
    protocol = resolve_protocol(samples, config.compare.protocol)
    rows = training_rows(samples, protocol, config)
    results = pd.read_csv(run.compare_file("results.csv"), dtype={"model": str, "feature_set": str})
    remove_staging(run.stage_dir(Stage.TRAIN))
    cards = _train_classifiers(config, run, samples, rows, protocol, results)
    cards += [_train_head(config, run, samples, rows, protocol, b, results) for b in wanted_heads(config)]
    written = [card["name"] for card in cards]
    missing = [card["name"] for card in cards if card["evaluation"] is None]
    if missing:
        log.warning("train: %s have no row in %s; their cards carry no metrics (rerun 'leukoscope compare' with the "
                    "same models and feature sets)", ", ".join(missing), run.compare_file("results.csv"))
    run.update_info(train={"protocol": protocol.value, "cells": len(rows), "models": written})
    for name in written:
        log.info("train: wrote %s", run.model_dir(name))


def _needs(config: Config) -> tuple[Stage, ...]:
    return (Stage.COMPARE,)


def _done(config: Config, layout: RunLayout) -> bool:
    return all(ModelLayout(layout.model_dir(name)).digests_path.exists() for name in model_names(config))


STAGE = StageSpec(
    name=Stage.TRAIN,
    run=run_train,
    needs=_needs,
    active=lambda config: bool(model_names(config)),
    done=_done,
    settings=settings_of("compare", "features", "heads", "segmentation", "run.seed"),
    check=lambda config, samples: resolve_protocol(with_subject_strings(samples),
                                                   config.compare.protocol),
)

__all__ = ["STAGE", "model_name", "model_names", "run_train", "training_rows"]

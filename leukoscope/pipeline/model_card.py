"""The model card of a trained model (``model.json`` and ``MODEL.md``) and the config it implies.

``model.json`` records everything needed to rebuild a model's inputs (segmentation settings,
feature families and the exact column list in order, backbone, weights with their digest,
input size, preprocessing), what it was trained on (data digest, cells, subjects and classes),
how it was evaluated (protocol, metrics with 95 % intervals, threshold), the package versions,
the date and the command, and its intended use and limits. :func:`prediction_config` turns a
card back into the configuration ``leukoscope predict`` runs the stages with.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import shlex
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from leukoscope.classifiers.metrics import METRICS, THRESHOLD
from leukoscope.classifiers.subjects import TIE_SCORE
from leukoscope.pipeline.config import Config, SegmentationConfig
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.model_folder import FORMAT
from leukoscope.pipeline.refiner_model import SHIPPED_MODEL
from leukoscope.pipeline.rundir import package_versions
from leukoscope.pipeline.weights import IMAGENET, RANDOM
from leukoscope.segmentation.choices import Refiner

INTENDED_USE = (
    "Research use only: telling ALL blasts from normal white blood cells (HEM) in single-cell images "
    "like the training cells, to compare methods and screen data in studies. It is not a medical device "
    "and must not be used to diagnose, stage or treat anyone."
)
CALL_RULE = f"a cell is called ALL when its P(ALL) >= {THRESHOLD}, else HEM"
SUBJECT_RULE = (f"a subject is called ALL when more than half of its cells are called ALL; on a tie, when the "
                f"mean P(ALL) of its cells is >= {TIE_SCORE}")


def training_digest(samples: pd.DataFrame) -> str:
    """SHA-256 of the training cells: their image SHA-256, label and subject, sorted.

    Parameters
    ----------
    samples : DataFrame
        Rows of the training cells (``sha256``, ``label``, ``subject``).
    """
    lines = sorted(f"{digest},{label},{subject}"
                   for digest, label, subject in zip(samples["sha256"], samples["label"], samples["subject"]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def training_counts(samples: pd.DataFrame) -> dict[str, Any]:
    """Cells, subjects, and both per class, of the training cells."""
    known = samples[samples["subject"] != ""]
    return {
        "cells": len(samples),
        "subjects": int(known["subject"].nunique()),
        "cells_per_class": {k: int(v) for k, v in samples["label"].value_counts().sort_index().items()},
        "subjects_per_class": {k: int(v) for k, v in known.groupby("label")["subject"].nunique().items()},
        "digest": training_digest(samples),
    }


def refiner_sha256(segmentation: SegmentationConfig) -> str:
    """SHA-256 of the segmentation's refiner file ("" without a refiner, or when the file is missing)."""
    if segmentation.refiner is Refiner.NONE:
        return ""
    path = Path(segmentation.refiner_model) if segmentation.refiner_model else SHIPPED_MODEL
    return sha256_file(path) if path.is_file() else ""


def evaluation_of(results: pd.DataFrame, model: str | None, feature_set: str) -> dict[str, Any] | None:
    """The ``compare`` results row of a model on a feature set, as a card section (None if absent;
    ``model`` None takes the feature set's only model, e.g. a head)."""
    rows = results[results["feature_set"] == feature_set]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        return None
    row = rows.iloc[0]

    def number(value: Any) -> float | None:  # NaN (not estimable) is no JSON number
        return None if pd.isna(value) else float(value)

    def note(value: Any) -> str:
        return "" if pd.isna(value) else str(value)

    return {
        "protocol": row["protocol"], "n_train": int(row["n_train"]), "n_test": int(row["n_test"]),
        "metrics": {m: {"value": number(row[m]), "ci_low": number(row[f"{m}_ci_low"]),
                        "ci_high": number(row[f"{m}_ci_high"]), "ci_note": note(row.get(f"{m}_ci_note"))}
                    for m in METRICS},
        "subject_accuracy": number(row["subject_accuracy"]), "n_test_subjects": int(row["n_test_subjects"]),
    }


def limits(config: Config, weights: str) -> list[str]:
    """The known limits of a model trained under ``config`` with CNN weights ``weights``."""
    notes = [
        "Its numbers hold for cells like the training cells (stain, microscope, camera, cell cropping); on "
        "other data they are unknown until measured on labelled cells of that data.",
        "A single cell's call is not a diagnosis; subject calls summarise cells and inherit their errors.",
        "predict warns when new cells lie mostly outside the training range of the key features or sit on "
        "another background kind; a dataset without that warning can still differ in ways it does not see.",
    ]
    if weights == RANDOM:
        notes.append("Its CNN weights are random (no ImageNet weights were available): its numbers say nothing "
                     "about ImageNet transfer.")
    if config.data.demo:
        notes.append("It was trained on the synthetic demo data: its numbers say nothing about real cells.")
    return notes


def build_card(*, name: str, kind: str, model: str, feature_set: str, payload: str, config: Config,
               inputs: dict[str, Any], training: dict[str, Any], evaluation: dict[str, Any] | None,
               reference: dict[str, Any], weights: str) -> dict[str, Any]:
    """The ``model.json`` of one trained model (see the module docstring for the sections)."""
    return {
        "format": FORMAT, "name": name, "kind": kind, "model": model, "feature_set": feature_set,
        "payload": payload, "threshold": THRESHOLD, "call_rule": CALL_RULE, "subject_rule": SUBJECT_RULE,
        "inputs": inputs, "segmentation": config.to_dict()["segmentation"],
        "refiner_sha256": refiner_sha256(config.segmentation), "training": training,
        "evaluation": evaluation, "reference": reference, "config": config.to_dict(),
        "versions": package_versions(), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["leukoscope", *sys.argv[1:]]), "intended_use": INTENDED_USE,
        "limits": limits(config, weights),
    }


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _metrics_table(evaluation: dict[str, Any]) -> list[str]:
    lines = ["| metric | value | 95 % interval |", "|---|---|---|"]
    for name, m in evaluation["metrics"].items():
        interval = (f"[{_value(m['ci_low'])}, {_value(m['ci_high'])}]" if m["ci_low"] is not None
                    else f"not estimable: {m['ci_note']}")
        lines.append(f"| {name} | {_value(m['value'])} | {interval} |")
    lines.append(f"| subject accuracy ({evaluation['n_test_subjects']} subjects) | "
                 f"{_value(evaluation['subject_accuracy'])} | |")
    return lines


def _backbone_lines(backbone: dict[str, Any] | None) -> list[str]:
    if not backbone:
        return []
    weights = backbone["weights"]
    digest = f", network SHA-256 `{backbone['network_sha256']}`" if backbone.get("network_sha256") else ""
    return [f"- backbone: {backbone['name']} at {backbone['input_size']} px, preprocessing "
            f"`{backbone['preprocess']}`, background masked: {backbone['mask_background']}",
            f"- weights: {weights['label']} (file SHA-256 `{weights['sha256'] or 'none'}`{digest})"]


def render_card(card: dict[str, Any]) -> str:
    """``MODEL.md``: the card for people."""
    training, inputs, evaluation = card["training"], card["inputs"], card["evaluation"]
    per_class = ", ".join(f"{k} {v}" for k, v in training["cells_per_class"].items())
    lines = [
        f"# Model card: {card['name']}", "",
        f"{card['model']} on the `{card['feature_set']}` features, trained by leukoscope "
        f"{card['versions'].get('leukoscope', '?')} on {card['created']} with `{card['command']}`.", "",
        "## Intended use", "", card["intended_use"], "",
        "## Limits", "", *[f"- {note}" for note in card["limits"]], "",
        "## Training data", "",
        f"- {training['cells']} cells ({per_class}) of {training['subjects']} subjects, "
        f"{training['part']}; dataset `{training['dataset']}` ({training['kind']})",
        f"- SHA-256 of the training cells (image digest, label, subject): `{training['digest']}`", "",
        "## Inputs", "",
        f"- segmentation: {', '.join(f'{k} = {v}' for k, v in card['segmentation'].items())}",
        f"- features: {inputs['description']}",
        *_backbone_lines(inputs.get("backbone")), "",
        "## Evaluation", "",
    ]
    if evaluation:
        lines += [f"Protocol `{evaluation['protocol']}`: trained on {evaluation['n_train']} cells, tested on "
                  f"{evaluation['n_test']} cells of subjects it never saw (`leukoscope compare`).", "",
                  *_metrics_table(evaluation), ""]
    else:
        lines += ["Not evaluated: `leukoscope compare` has no row for this model.", ""]
    lines += [
        "## Calls", "", f"- cell: {card['call_rule']}", f"- subject: {card['subject_rule']}", "",
        "## Use", "", "```bash", f"leukoscope predict --model path/to/{card['name']} --data NEW_CELLS --out RUN_DIR",
        "```", "",
        "`predict` refuses this folder when a file in it changed (`sha256sum -c SHA256SUMS` shows which), when it "
        "was written by another major version of leukoscope, or when the features computed now do not match the "
        "saved column list.", "",
        "## Versions", "", *[f"- {k} {v}" for k, v in card["versions"].items()], "",
    ]
    return "\n".join(lines)


def _weights_setting(weights: dict[str, Any]) -> str:
    """The ``features.weights`` value that resolves to the recorded weights."""
    if weights["label"] == RANDOM:
        return RANDOM
    if weights.get("source") == "folder" or weights["label"] != IMAGENET:
        return str(Path(weights["path"]).parent)
    return IMAGENET


def prediction_config(card: dict[str, Any], model_dir: str | Path, overrides: dict[str, Any]) -> Config:
    """The configuration ``leukoscope predict`` runs with: the trained segmentation and feature
    settings, only the stages the model needs, and ``overrides`` (data and run keys) on top."""
    trained = card["config"]
    inputs = card["inputs"]
    backbone = inputs.get("backbone") or {}
    keys: dict[str, Any] = {f"segmentation.{k}": v for k, v in trained["segmentation"].items()}
    keys.update({f"features.{k}": trained["features"][k] for k in ("haralick_distance", "haralick_levels", "threads")})
    keys.update({
        "features.families": inputs.get("families") or "none",
        "features.backbones": [backbone["name"]] if inputs.get("uses_embeddings") else "none",
        "heads.backbones": "none", "run.seed": trained["run"]["seed"],
        "compare.bootstrap": trained["compare"]["bootstrap"], "predict.model": str(model_dir),
    })
    if backbone:
        keys.update({"features.weights": _weights_setting(backbone["weights"]), "features.input_size":
                     backbone["input_size"], "features.batch_size": backbone["batch_size"],
                     "features.mask_background": backbone["mask_background"]})
    keys.update({f"fields.{k}": v for k, v in trained.get("fields", {}).items()})
    given = {key: value for key, value in overrides.items() if value is not None}
    return Config().with_overrides({**keys, **given}, source=f"model card '{model_dir}' and the command line")


__all__ = ["CALL_RULE", "INTENDED_USE", "SUBJECT_RULE", "build_card", "evaluation_of", "limits",
           "prediction_config", "refiner_sha256", "render_card", "training_counts", "training_digest"]

"""The ``compare`` stage: every classifier on every feature set, evaluated without subject leakage.

``run_compare(config, run, samples)`` runs the stages the run directory lacks (features, which
runs segmentation itself, and the fine-tuned heads when ``config.heads.backbones`` is set),
builds the feature sets, splits the labelled samples that no stage rejected once under the
configured protocol (the same folds for every feature set, and the same folds whatever bad files
sat beside the good ones), tunes and tests each model on each split in parallel, adds
the heads' predictions, and writes::

    RUN/compare/results.csv        one row per model x feature set x protocol, with 95 % CIs
    RUN/compare/predictions.csv    sample_id, subject, protocol, fold, model, feature_set,
                                   y_true, y_score, y_pred
    RUN/compare/feature_sets.csv   per feature set: weights, columns, rows missing/dropped/imputed
    RUN/compare/confusion_matrices.png, roc_curves.png, report.md, report.html

When handcrafted features are compared, the report ends with the statistics stage's section on
them (univariate table and figures, :mod:`leukoscope.pipeline.report_statistics`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import ClassifierName, FeatureSetKind
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.featuresets import FeatureSet, hybrid_set, single_set, weights_of
from leukoscope.classifiers.metrics import METRICS, binary_metrics, bootstrap_ci, subject_vote_accuracy
from leukoscope.classifiers.models import fit_predict, predict_labels
from leukoscope.classifiers.splits import Split, encode_labels, iter_splits, resolve_protocol
from leukoscope.pipeline.atomic import write_csv
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import PREDICTION_COLUMNS, RunLayout, Stage, cnn_name, head_name
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.report import write_report
from leukoscope.pipeline.report_statistics import statistics_section
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec
from leukoscope.pipeline.tables import read_features

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "model", "feature_set", "protocol", "weights", "n_train", "n_test", *METRICS,
    *[f"{m}_{end}" for m in METRICS for end in ("ci_low", "ci_high")],
    "subject_accuracy", "n_test_subjects",
]
FEATURE_SET_COLUMNS = ["feature_set", "weights", "n_features", "n_labelled", "n_missing", "n_dropped", "n_imputed", "pca_components"]
UNRECORDED = "unrecorded"


@dataclass(frozen=True, eq=False)
class _Task:
    """One model fitted on one training part of one feature set (picklable for the workers)."""

    model: ClassifierName
    feature_set: str
    fold: str
    x_train: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray
    x_test: np.ndarray
    test_ids: np.ndarray
    inner_folds: int
    seed: int
    pca_columns: np.ndarray
    pca_components: int


def _fit_task(task: _Task) -> pd.DataFrame:
    """Tune and fit one model on one training part; its predictions on the test part."""
    y_score, _best = fit_predict(
        task.model, task.x_train, task.y_train, task.x_test, groups=task.groups,
        inner_folds=task.inner_folds, seed=task.seed,
        pca_columns=task.pca_columns, pca_components=task.pca_components,
    )
    return pd.DataFrame({
        "sample_id": task.test_ids, "fold": task.fold, "model": task.model.value,
        "feature_set": task.feature_set, "y_score": y_score, "y_pred": predict_labels(y_score),
    })


# -- inputs ---------------------------------------------------------------------------------
def _wanted_backbones(config: Config) -> list[str]:
    kinds = set(config.compare.feature_sets)
    if kinds & {FeatureSetKind.CNN, FeatureSetKind.HYBRID}:
        return [b.value for b in config.features.backbones]
    return []


def _needs_handcrafted(config: Config) -> bool:
    return bool(set(config.compare.feature_sets) & {FeatureSetKind.HANDCRAFTED, FeatureSetKind.HYBRID})


def _wanted_heads(config: Config) -> list[str]:
    if FeatureSetKind.HEAD not in config.compare.feature_sets:
        return []
    return [b.value for b in config.heads.backbones]


def _feature_files(config: Config, layout: RunLayout) -> list[Path]:
    files = [layout.handcrafted_table] if _needs_handcrafted(config) else []
    return files + [layout.embeddings_table(b) for b in _wanted_backbones(config)]


def _missing_heads(config: Config, layout: RunLayout) -> list[str]:
    wanted = [head_name(b) for b in _wanted_heads(config)]
    path = layout.head_predictions
    table = pd.read_csv(path, dtype=str) if wanted and path.exists() else pd.DataFrame()
    have = set(table["feature_set"]) if "feature_set" in table.columns else set()
    return [name for name in wanted if name not in have]


def check_inputs(config: Config, layout: RunLayout) -> None:
    """Refuse to compare when an input the config needs is missing after the earlier stages ran.

    Raises
    ------
    EvaluationError
        A features file or head predictions are missing.
    """
    missing = [f for f in _feature_files(config, layout) if not f.exists()]
    if missing:
        raise EvaluationError(
            f"features file '{missing[0]}' is missing after the features stage ran; check "
            f"'{layout.rejected_path}' for rejected samples, or run 'leukoscope features' with the same "
            "--config and --out"
        )
    absent = _missing_heads(config, layout)
    if absent:
        raise EvaluationError(
            f"'{layout.head_predictions}' has no predictions for {absent[0]} after the heads stage ran; "
            "run the heads stage again or remove the backbone from heads.backbones"
        )


def build_feature_sets(config: Config, run: RunDir, labelled_ids: set[str]) -> tuple[list[FeatureSet], pd.DataFrame]:
    """The configured feature sets, restricted to the labelled samples, and their row counts."""
    kinds = set(config.compare.feature_sets)

    def restricted(path: Path) -> pd.DataFrame:
        table = read_features(path)
        return table[table["sample_id"].isin(labelled_ids)].reset_index(drop=True)

    hand = restricted(run.handcrafted_table) if _needs_handcrafted(config) else None
    sets = []
    if FeatureSetKind.HANDCRAFTED in kinds:
        sets.append(single_set("handcrafted", hand, source=str(run.handcrafted_table)))
    for backbone in _wanted_backbones(config):
        path = run.embeddings_table(backbone)
        emb = restricted(path)
        if FeatureSetKind.CNN in kinds:
            sets.append(single_set(cnn_name(backbone), emb, source=str(path)))
        if FeatureSetKind.HYBRID in kinds:
            sets.append(hybrid_set(backbone, hand, emb, sources=(str(run.handcrafted_table), str(path))))
    counts = pd.DataFrame(
        [
            {
                "feature_set": fs.name,
                "weights": fs.weights,
                "n_features": len(fs.columns),
                "n_labelled": len(labelled_ids),
                "n_missing": len(labelled_ids) - len(fs.sample_ids) - fs.n_dropped,
                "n_dropped": fs.n_dropped,
                "n_imputed": fs.n_imputed,
                "pca_components": min(config.compare.hybrid_pca, len(fs.pca_columns)),
            }
            for fs in sets
        ],
        columns=FEATURE_SET_COLUMNS,
    )
    return sets, counts


# -- evaluation -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Part:
    """The rows of one feature set that one split trains and tests on (boolean masks)."""

    feature_set: FeatureSet
    fold: str
    train: np.ndarray
    test: np.ndarray


def plan_parts(sets: list[FeatureSet], splits: list[Split], samples: pd.DataFrame) -> list[_Part]:
    """Map every split (row positions in ``samples``) onto the rows of every feature set.

    Raises
    ------
    EvaluationError
        Dropping rows without features left a training part with one class.
    """
    ids = samples["sample_id"].to_numpy()
    y_of = dict(zip(ids, encode_labels(samples["label"])))
    parts = []
    for fs in sets:
        for split in splits:
            part = _Part(fs, split.fold, np.isin(fs.sample_ids, ids[split.train]), np.isin(fs.sample_ids, ids[split.test]))
            if {y_of[i] for i in fs.sample_ids[part.train]} != {0, 1}:
                raise EvaluationError(
                    f"after dropping rows without features, the training part of fold '{split.fold}' of "
                    f"{fs.name} holds one class only; check rejected.csv and the features file"
                )
            if part.test.any():
                parts.append(part)
    return parts


def _tasks(config: Config, parts: list[_Part], samples: pd.DataFrame) -> Iterator[_Task]:
    """The tasks of every part and model, made lazily (one part's arrays alive at a time)."""
    y_of = dict(zip(samples["sample_id"], encode_labels(samples["label"])))
    subject_of = dict(zip(samples["sample_id"], samples["subject"]))
    for part in parts:
        fs = part.feature_set
        train_ids = fs.sample_ids[part.train]
        shared = {
            "feature_set": fs.name, "fold": part.fold, "x_train": fs.x[part.train],
            "y_train": np.array([y_of[i] for i in train_ids], dtype=int),
            "groups": np.array([subject_of[i] for i in train_ids], dtype=object),
            "x_test": fs.x[part.test], "test_ids": fs.sample_ids[part.test],
            "inner_folds": config.compare.inner_folds, "seed": config.run.seed,
            "pca_columns": fs.pca_columns, "pca_components": config.compare.hybrid_pca,
        }
        for model in config.compare.models:
            yield _Task(model=model, **shared)


def read_head_predictions(config: Config, run: RunDir) -> pd.DataFrame:
    """The configured heads' rows of ``RUN/heads/predictions.csv`` (empty without heads)."""
    wanted = {head_name(b) for b in _wanted_heads(config)}
    if not wanted:
        return pd.DataFrame(columns=[*PREDICTION_COLUMNS, "weights"])
    path = run.head_predictions
    table = pd.read_csv(path, dtype={"sample_id": str, "subject": str, "protocol": str, "fold": str,
                                     "model": str, "feature_set": str, "weights": str})
    absent = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if absent:
        raise EvaluationError(f"'{path}' lacks the column(s) {absent}; it must hold {', '.join(PREDICTION_COLUMNS)}")
    table = table[table["feature_set"].isin(wanted)].copy()
    table["weights"] = table["weights"].fillna(UNRECORDED) if "weights" in table.columns else UNRECORDED
    return table


def summarise(predictions: pd.DataFrame, n_train: dict[str, int], weights: dict[str, str], *, n_boot: int, seed: int) -> pd.DataFrame:
    """One results row per model x feature set x protocol from pooled out-of-fold predictions.

    Parameters
    ----------
    predictions : DataFrame
        Rows in the predictions format (subject "" when unknown).
    n_train : dict
        Feature set -> mean size of its training parts.
    weights : dict
        Feature set -> CNN weights behind it.
    n_boot, seed
        Bootstrap replicates and seed (:func:`~leukoscope.classifiers.metrics.bootstrap_ci`).
    """
    rows = []
    for (model, feature_set, protocol), group in predictions.groupby(["model", "feature_set", "protocol"], sort=False):
        y_true, y_score, y_pred = (group[c].to_numpy() for c in ("y_true", "y_score", "y_pred"))
        subjects = group["subject"].to_numpy()
        point = binary_metrics(y_true, y_score, y_pred)
        ci = bootstrap_ci(y_true, y_score, y_pred, groups=subjects, n_boot=n_boot, seed=seed)
        vote, n_subjects = subject_vote_accuracy(y_true, y_score, y_pred, subjects)
        row = {"model": model, "feature_set": feature_set, "protocol": protocol,
               "weights": weights.get(feature_set, UNRECORDED), "n_train": n_train.get(feature_set, np.nan),
               "n_test": len(group), **point}
        for name in METRICS:
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci[name]
        rows.append({**row, "subject_accuracy": vote, "n_test_subjects": n_subjects})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def run_compare(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """The ``compare`` stage (see the module docstring).

    Parameters
    ----------
    config : Config
        ``compare`` section: protocol, folds, inner_folds, models, feature_sets, hybrid_pca,
        bootstrap; ``run.seed``, ``run.jobs``, ``run.backend`` and ``run.quiet`` too.
    run : RunDir
    samples : DataFrame
        The samples table (``sample_id, path, label, subject, split, sha256``).

    Raises
    ------
    EvaluationError
        One class only, too few subjects, a leaking split, or a missing features file; the
        message names the cause and the fix.
    """
    samples = samples.assign(subject=samples["subject"].fillna("").astype(str)).reset_index(drop=True)
    check_inputs(config, run)
    samples = run.kept(samples)  # folds over what the stages kept, so that bad files cannot shift them
    protocol = resolve_protocol(samples, config.compare.protocol)
    splits = list(iter_splits(samples, protocol=protocol, folds=config.compare.folds, seed=config.run.seed))
    labelled = samples[encode_labels(samples["label"]) >= 0]
    sets, counts = build_feature_sets(config, run, set(labelled["sample_id"]))
    parts = plan_parts(sets, splits, samples)
    frames = list(parallel_map(
        _fit_task, _tasks(config, parts, samples), total=len(parts) * len(config.compare.models),
        jobs=config.run.jobs, backend=config.run.backend, scheduler=config.run.scheduler,
        desc="compare", quiet=config.run.quiet, unit="fit",
    ))
    heads = read_head_predictions(config, run)
    unknown = sorted(set(heads["sample_id"]) - set(labelled["sample_id"]))
    if unknown:
        raise EvaluationError(
            f"'{run.head_predictions}' holds {len(unknown)} sample(s) without a label in this run's manifest "
            f"(e.g. {unknown[0]!r}); rerun the heads stage in this run directory"
        )
    if not frames and heads.empty:
        raise EvaluationError(
            "nothing to compare: compare.feature_sets selects no feature set that this config provides "
            "(cnn and hybrid need features.backbones, head needs heads.backbones)"
        )
    truth = labelled.set_index("sample_id")
    predictions = pd.concat([*frames, heads.drop(columns=["subject", "y_true", "weights"])], ignore_index=True)
    predictions["protocol"] = predictions["protocol"].fillna(protocol.value)
    predictions["subject"] = truth["subject"].reindex(predictions["sample_id"]).to_numpy()
    predictions["y_true"] = encode_labels(truth["label"].reindex(predictions["sample_id"])).clip(min=0)
    predictions = predictions[PREDICTION_COLUMNS]
    n_train = {fs.name: [] for fs in sets}
    for part in parts:
        n_train[part.feature_set.name].append(int(part.train.sum()))
    n_train = {name: int(round(np.mean(sizes))) for name, sizes in n_train.items() if sizes}
    n_train.update({head_name(b): int(round(np.mean([len(s.train) for s in splits]))) for b in _wanted_heads(config)})
    weights = {fs.name: fs.weights for fs in sets}
    weights.update({name: weights_of(group) for name, group in heads.groupby("feature_set")})
    results = summarise(predictions, n_train, weights, n_boot=config.compare.bootstrap, seed=config.run.seed)
    out = run.stage_dir(Stage.COMPARE)
    write_csv(results, out / "results.csv")
    write_csv(predictions, out / "predictions.csv")
    write_csv(counts, out / "feature_sets.csv")
    files = write_report(out, results=results, predictions=predictions, feature_sets=counts,
                         protocol=protocol, config=config, n_folds=len(splits),
                         sections=statistics_section(run, out) if _needs_handcrafted(config) else [])
    run.update_info(compare={"protocol": protocol.value, "folds": len(splits), "results": len(results),
                             "weights": weights})
    for path in files:
        log.info("compare: wrote %s", path)


def _needs(config: Config) -> tuple[Stage, ...]:
    return tuple(stage for stage, wanted in ((Stage.HANDCRAFTED, _needs_handcrafted(config)),
                                             (Stage.STATISTICS, _needs_handcrafted(config)),
                                             (Stage.EMBEDDINGS, bool(_wanted_backbones(config))),
                                             (Stage.HEADS, bool(_wanted_heads(config)))) if wanted)


def _check(config: Config, samples: pd.DataFrame) -> None:
    """Fail before the costly stages when the data cannot be split as asked."""
    resolve_protocol(samples.assign(subject=samples["subject"].fillna("").astype(str)), config.compare.protocol)


STAGE = StageSpec(
    name=Stage.COMPARE,
    run=run_compare,
    needs=_needs,
    active=lambda config: True,
    done=lambda config, layout: layout.compare_file("results.csv").exists(),
    settings=settings_of("compare", "features", "heads", "run.seed"),
    check=_check,
)

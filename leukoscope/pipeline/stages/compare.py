"""The ``compare`` stage: every classifier on every feature set, evaluated as a reviewer would ask.

``run_compare(config, run, samples)`` runs the stages the run directory lacks (features, which
runs segmentation itself, and the sigmoid heads on frozen backbones when
``config.heads.backbones`` is set), builds the feature sets, splits the labelled samples that no
stage rejected once under the configured protocol (the same folds for every feature set, and the
same folds whatever bad files sat beside the good ones), tunes and tests each model on each split
in parallel, adds the heads' predictions, the majority-class baseline and the
selection-corrected (nested) headline, and writes::

    RUN/compare/results.csv              one row per model x feature set, with guarded 95 % intervals
    RUN/compare/predictions.csv          sample_id, subject, protocol, fold, model, feature_set,
                                         y_true, y_score, y_pred, unit (the resampling unit)
    RUN/compare/feature_sets.csv         per feature set: weights, columns, rows missing/dropped/imputed
    RUN/compare/class_counts.csv         cells and subjects (or blocks) per class, split and part
    RUN/compare/nested_chosen.csv        the model x feature set chosen in each outer fold
    RUN/compare/nested_inner_scores.csv  every candidate's inner score in each outer fold
    RUN/compare/paired.csv               every row against the headline
    RUN/compare/calibration.csv          Brier score, subject-level AUC
    RUN/compare/repeats.csv              mean and spread across compare.repeats (when > 1)
    RUN/compare/confound.csv             models on the colour outside the cell (smear crops)
    RUN/compare/*.png, report.md, report.html (when handcrafted features are compared, ending with
                                         the statistics stage's section on them: report_statistics)

The evaluation library behind it: :mod:`leukoscope.classifiers` (baselines, intervals,
selection, comparison, repeats, calibration, keras_metrics), wired by
:mod:`leukoscope.pipeline.compare_fits` and :mod:`leukoscope.pipeline.evaluation`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.classifiers.baselines import class_counts, majority_predictions
from leukoscope.classifiers.calibration import calibration_table
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.featuresets import NO_WEIGHTS, FeatureSet, single_set
from leukoscope.classifiers.intervals import small_sample_warning
from leukoscope.classifiers.repeats import iter_repeats, summarise_repeats
from leukoscope.classifiers.splits import (
    Split,
    encode_labels,
    iter_splits,
    resolve_protocol,
    split_groups,
    with_subject_strings,
)
from leukoscope.pipeline.atomic import write_csv
from leukoscope.pipeline.compare_fits import Part, cross_validate, nested_headline
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.evaluation import (
    BASELINE,
    HEADLINE,
    UNRECORDED,
    Evaluation,
    confound_table,
    keras_table,
    paired_table,
    summarise,
    unit_name,
    with_truth,
)
from leukoscope.pipeline.feature_tables import (
    build_feature_sets,
    needs_handcrafted,
    wanted_backbones,
    wanted_heads,
)
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import HEAD_OUTPUT_COLUMNS, PREDICTION_COLUMNS, RunLayout, Stage, head_name
from leukoscope.pipeline.report import write_report
from leukoscope.pipeline.report_qc import apply_qc
from leukoscope.pipeline.report_statistics import statistics_section
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec
from leukoscope.pipeline.tables import read_features
from leukoscope.segmentation.choices import Background

log = logging.getLogger(__name__)

SURROUND_SET = "surround"


# -- inputs ---------------------------------------------------------------------------------
def _feature_files(config: Config, layout: RunLayout) -> list[Path]:
    files = [layout.handcrafted_table] if needs_handcrafted(config) else []
    return files + [layout.embeddings_table(b) for b in wanted_backbones(config)]


def _missing_heads(config: Config, layout: RunLayout) -> list[str]:
    wanted = [head_name(b) for b in wanted_heads(config)]
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


def read_head_predictions(config: Config, run: RunDir) -> pd.DataFrame:
    """The configured heads' rows of ``RUN/heads/predictions.csv`` (empty without heads)."""
    wanted = {head_name(b) for b in wanted_heads(config)}
    if not wanted:
        return pd.DataFrame(columns=[*PREDICTION_COLUMNS, "weights", *HEAD_OUTPUT_COLUMNS])
    path = run.head_predictions
    table = pd.read_csv(path, dtype={"sample_id": str, "subject": str, "protocol": str, "fold": str,
                                     "model": str, "feature_set": str, "weights": str})
    absent = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if absent:
        raise EvaluationError(f"'{path}' lacks the column(s) {absent}; it must hold {', '.join(PREDICTION_COLUMNS)}")
    table = table[table["feature_set"].isin(wanted)].copy()
    table["weights"] = table["weights"].fillna(UNRECORDED) if "weights" in table.columns else UNRECORDED
    return table.reindex(columns=[*PREDICTION_COLUMNS, "weights", *HEAD_OUTPUT_COLUMNS])


# -- the parts of the evaluation ----------------------------------------------------------------
def _headline(config: Config, sets: list[FeatureSet], splits: list[Split], samples: pd.DataFrame,
              units: np.ndarray, notes: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The nested headline's predictions, chosen candidates and inner scores (empty, with a note, when not run)."""
    empty = pd.DataFrame()
    if not config.compare.nested:
        notes["nested"] = "not run: compare.nested = false"
        return empty, empty, empty
    try:
        result, (selection, tuning) = nested_headline(config, sets, splits, samples, units)
    except EvaluationError as exc:
        notes["nested"] = f"not run: {exc}"
        log.warning("compare: nested headline %s", notes["nested"])
        return empty, empty, empty
    notes["folds"] = f"{selection} selection folds, {tuning} tuning folds"
    predictions = result.predictions.drop(columns=["row", "chosen_model", "chosen_feature_set", "y_true"])
    return predictions, result.chosen, result.inner_scores


def _repeats(config: Config, sets: list[FeatureSet], samples: pd.DataFrame, units: np.ndarray,
             protocol: Protocol, first: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of every repeated row across ``compare.repeats`` outer cross-validations."""
    settings = config.compare
    if settings.repeats <= 1:
        return pd.DataFrame()
    frames = [first.assign(repeat=config.run.seed)]
    for seed, splits in iter_repeats(samples, protocol=protocol, folds=settings.folds, seed=config.run.seed,
                                     repeats=settings.repeats, block_size=settings.block_size):
        if seed == config.run.seed:
            continue  # the run's own folds: ``first``
        rows, _ = cross_validate(config, sets, splits, samples, units, desc=f"repeat {seed}")
        nested = _headline(config, sets, splits, samples, units, {})[0] if (first["model"] == HEADLINE[0]).any() else None
        found = [nested, majority_predictions(samples, splits).drop(columns=["subject", "y_true"]), rows]
        frames.append(with_truth(pd.concat(found, ignore_index=True), samples, units, protocol).assign(repeat=seed))
    return summarise_repeats(pd.concat(frames, ignore_index=True))


def _smear_crops(config: Config, run: RunDir, ids: set[str]) -> bool:
    """Whether most cells were segmented on a smear (not black) background: where the check means something."""
    if run.segmentation_table.exists():
        table = pd.read_csv(run.segmentation_table, dtype=str, keep_default_na=False)
        if "background" in table.columns:
            backgrounds = table.loc[table["sample_id"].isin(ids), "background"]
            return bool(len(backgrounds)) and (backgrounds == Background.SMEAR.value).mean() >= 0.5
    return config.segmentation.background is not Background.BLACK


def _confound(config: Config, run: RunDir, samples: pd.DataFrame, splits: list[Split], units: np.ndarray,
              protocol: Protocol, ids: set[str], notes: dict[str, str]) -> pd.DataFrame:
    """Every model on the surround features alone, with its verdict (empty, with a note, when not run)."""
    if not run.surround_table.exists():
        notes["confound"] = "not run: no surround features (the handcrafted stage makes them; compare.feature_sets " \
                            "has no handcrafted or hybrid set, or features.families is empty)"
        return pd.DataFrame()
    if not _smear_crops(config, run, ids):
        notes["confound"] = "not run: the cells sit on black (the pixels outside them hold no background)"
        return pd.DataFrame()
    table = read_features(run.surround_table)
    surround = single_set(SURROUND_SET, table[table["sample_id"].isin(ids)].reset_index(drop=True),
                          source=str(run.surround_table))
    try:
        rows, _ = cross_validate(config, [surround], splits, samples, units, desc="confound check")
    except EvaluationError as exc:  # e.g. cells without surround pixels left a training part with one class
        notes["confound"] = f"not run: {exc}"
        return pd.DataFrame()
    results = summarise(with_truth(rows, samples, units, protocol), {}, {}, unit_name=unit_name(protocol),
                        n_boot=config.compare.bootstrap, seed=config.run.seed)
    return confound_table(results)


def _mean_train(sizes: list[int]) -> int:
    return int(round(np.mean(sizes))) if sizes else 0


def _train_sizes_and_weights(sets: list[FeatureSet], parts: list[Part], splits: list[Split], samples: pd.DataFrame,
                             heads: pd.DataFrame, chosen: pd.DataFrame) -> tuple[dict[str, int], dict[str, str]]:
    """Feature set -> mean training-part size, and -> CNN weights behind it (headline and baseline included)."""
    ids = samples["sample_id"].to_numpy()
    n_train = {fs.name: _mean_train([int(p.train.sum()) for p in parts if p.feature_set is fs]) for fs in sets}
    n_train |= {name: _mean_train([len(s.train) for s in splits]) for name in (BASELINE[1], *set(heads["feature_set"]))}
    weights = {fs.name: fs.weights for fs in sets} | {BASELINE[1]: NO_WEIGHTS}
    weights |= {name: "+".join(sorted(set(group["weights"]))) for name, group in heads.groupby("feature_set")}
    if not chosen.empty:
        common = set.intersection(*(set(fs.sample_ids) for fs in sets))
        n_train[HEADLINE[1]] = _mean_train([int(np.isin(ids[s.train], list(common)).sum()) for s in splits])
        weights[HEADLINE[1]] = "+".join(sorted({weights[name] for name in chosen["feature_set"]}))
    return n_train, weights


def run_compare(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """The ``compare`` stage (see the module docstring).

    Parameters
    ----------
    config : Config
        ``compare`` section: protocol, folds, inner_folds, models, feature_sets, hybrid_pca,
        bootstrap, block_size, repeats, nested; ``run.seed``, ``run.jobs``, ``run.backend`` and
        ``run.quiet`` too.
    run : RunDir
    samples : DataFrame
        The samples table (``sample_id, path, label, subject, split, sha256``).

    Raises
    ------
    EvaluationError
        One class only, too few subjects, a leaking split, or a missing features file; the
        message names the cause and the fix.
    """
    settings, seed = config.compare, config.run.seed
    samples = with_subject_strings(samples).reset_index(drop=True)
    check_inputs(config, run)
    samples = run.kept(samples)  # folds over what the stages kept, so that bad files cannot shift them
    samples, qc_blocks, qc_info = apply_qc(config, run, samples)
    protocol = resolve_protocol(samples, settings.protocol)
    splits = list(iter_splits(samples, protocol=protocol, folds=settings.folds, seed=seed,
                              block_size=settings.block_size))
    units = split_groups(samples, protocol, block_size=settings.block_size)
    ids = set(samples.loc[encode_labels(samples["label"]) >= 0, "sample_id"])
    sets, counts = build_feature_sets(config, run, ids)
    rows, parts = cross_validate(config, sets, splits, samples, units)
    heads = read_head_predictions(config, run)
    unknown = sorted(set(heads["sample_id"]) - ids)
    if unknown:
        raise EvaluationError(
            f"'{run.head_predictions}' holds {len(unknown)} sample(s) without a label in this run's manifest "
            f"(e.g. {unknown[0]!r}); rerun the heads stage in this run directory"
        )
    if rows.empty and heads.empty:
        raise EvaluationError(
            "nothing to compare: compare.feature_sets selects no feature set that this config provides "
            "(cnn and hybrid need features.backbones, head needs heads.backbones)"
        )
    notes: dict[str, str] = {}
    nested, chosen, inner_scores = _headline(config, sets, splits, samples, units, notes)
    baseline = majority_predictions(samples, splits).drop(columns=["subject", "y_true"])
    own = with_truth(pd.concat([nested, baseline, rows], ignore_index=True), samples, units, protocol)
    head_rows = with_truth(heads, samples, units, protocol)
    predictions = pd.concat([own, head_rows], ignore_index=True)
    n_train, weights = _train_sizes_and_weights(sets, parts, splits, samples, heads, chosen)
    tested = own[own["feature_set"] == BASELINE[1]]  # every test cell once
    unit = unit_name(protocol)
    evaluation = Evaluation(
        protocol=protocol, n_folds=len(splits), unit_name=unit,
        results=summarise(predictions, n_train, weights, unit_name=unit, n_boot=settings.bootstrap, seed=seed),
        predictions=predictions, feature_sets=counts,
        class_counts=class_counts(samples, splits, groups=units, unit_name=unit),
        warning=small_sample_warning(tested["y_true"], tested["unit"], unit_name=unit),
        paired=paired_table(predictions, unit_name=unit, n_boot=settings.bootstrap, seed=seed),
        chosen=chosen,
        calibration=calibration_table(predictions, n_boot=settings.bootstrap, seed=seed),
        repeats=_repeats(config, sets, samples, units, protocol, own),
        confound=_confound(config, run, samples, splits, units, protocol, ids, notes),
        keras=keras_table(head_rows.assign(**{c: heads[c] for c in HEAD_OUTPUT_COLUMNS})),
        notes=notes,
    )
    _write(run, evaluation, inner_scores)
    out = run.stage_dir(Stage.COMPARE)
    files = write_report(out, evaluation=evaluation, config=config, info=run.read_info(),
                         sections=qc_blocks + (statistics_section(run, out) if needs_handcrafted(config) else []))
    run.update_info(compare={"protocol": protocol.value, "folds": len(splits), "results": len(evaluation.results),
                             "weights": weights, "nested": notes.get("folds", notes.get("nested", "")),
                             "segmentation_qc": qc_info})
    for path in files:
        log.info("compare: wrote %s", path)


def _write(run: RunDir, evaluation: Evaluation, inner_scores: pd.DataFrame) -> None:
    """The CSVs of the evaluation (those of parts that did not run are left out)."""
    tables = {
        "results.csv": evaluation.results, "predictions.csv": evaluation.predictions,
        "feature_sets.csv": evaluation.feature_sets, "class_counts.csv": evaluation.class_counts,
        "nested_chosen.csv": evaluation.chosen, "nested_inner_scores.csv": inner_scores,
        "paired.csv": evaluation.paired, "calibration.csv": evaluation.calibration,
        "repeats.csv": evaluation.repeats, "confound.csv": evaluation.confound,
    }
    run.stage_dir(Stage.COMPARE)
    for name, table in tables.items():
        path = run.compare_file(name)
        if table.empty and len(table.columns) == 0:
            path.unlink(missing_ok=True)  # of an earlier run with other settings
        else:
            write_csv(table, path)


def _needs(config: Config) -> tuple[Stage, ...]:
    return tuple(stage for stage, wanted in ((Stage.HANDCRAFTED, needs_handcrafted(config)),
                                             (Stage.STATISTICS, needs_handcrafted(config)),
                                             (Stage.EMBEDDINGS, bool(wanted_backbones(config))),
                                             (Stage.HEADS, bool(wanted_heads(config)))) if wanted)


def _check(config: Config, samples: pd.DataFrame) -> None:
    """Fail before the costly stages when the data cannot be split as asked."""
    protocol = resolve_protocol(with_subject_strings(samples),
                                config.compare.protocol)
    if config.compare.repeats > 1 and protocol is Protocol.OFFICIAL:
        raise EvaluationError(f"compare.repeats = {config.compare.repeats} repeats a cross-validation with other "
                              "fold seeds, but this data resolves protocol 'auto' to 'official', one fixed split; "
                              "set repeats = 1 or protocol = 'group-cv'")


STAGE = StageSpec(
    name=Stage.COMPARE,
    run=run_compare,
    needs=_needs,
    active=lambda config: True,
    done=lambda config, layout: layout.compare_file("results.csv").exists(),
    settings=settings_of("compare", "features", "heads", "run.seed"),
    check=_check,
)

"""The comparison report's tables as displayed, and the glossary of every column they show.

Each function turns an evaluation table (:mod:`leukoscope.pipeline.evaluation`) into text
cells for :class:`~leukoscope.pipeline.report_html.Block`: three decimals, ``n/a`` for an
undefined value, and an interval on the cell's second line, or the reason it is not estimable
(``not estimable (2 HEM subjects)``) instead of a pair of numbers that look exact.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from leukoscope.pipeline.evaluation import Evaluation, Role
from leukoscope.pipeline.report_qc import GLOSSARY as QC_GLOSSARY
from leukoscope.pipeline.report_statistics import GLOSSARY as STATISTICS_GLOSSARY

NO_SPREAD = "no spread in the bootstrap"
"""Shown instead of ``[x, x]``: every replicate gave the same value (a constant predictor, or a score
at its bound), which says nothing about the uncertainty."""


METRIC_LABELS = {
    "balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "specificity": "specificity", "f1": "F1", "weighted_f1": "weighted F1", "roc_auc": "ROC AUC",
}
ROLE_LABELS = {
    Role.HEADLINE.value: "headline (selection-corrected)", Role.BASELINE.value: "baseline (ignores the image)",
    Role.CANDIDATE.value: "not selection-corrected", Role.HEAD.value: "head, not selection-corrected",
}
GLOSSARY = {
    "role": "headline: the nested selection's outer score; baseline: every test cell called the training part's "
            "commoner class; not selection-corrected: one fixed model on one feature set (the highest of these, picked "
            "after the fact, overstates what choosing it gives)",
    "model": "classifier: svm, logreg, rf, knn, xgboost, sigmoid_head (the paper's head), majority (the baseline), "
             "nested (the headline: the model chosen per fold)",
    "feature set": "handcrafted, cnn_<backbone> (embeddings), hybrid_<backbone> (both), head_<backbone> (a sigmoid "
                   "head trained on the frozen backbone: the paper's fine-tuning), selected (the headline's choice), "
                   "none (the baseline)",
    "weights": "CNN weights behind the features: imagenet, random (untrained: not an ImageNet result) or a folder; "
               "none without a CNN",
    "cells": "test cells evaluated (pooled over the folds)",
    "balanced accuracy": "mean of recall and specificity; 0.5 is chance whatever the class balance",
    "accuracy": "share of test cells called right",
    "precision": "share of cells called ALL that are ALL",
    "recall": "share of ALL cells called ALL (sensitivity)",
    "specificity": "share of HEM cells called HEM",
    "F1": "harmonic mean of precision and recall (of ALL)",
    "weighted F1": "F1 of both classes weighted by their cells (the C-NMC 2019 ranking metric)",
    "ROC AUC": "probability that a random ALL cell scores above a random HEM cell",
    "Brier": "mean squared error of P(ALL) against the truth (0 perfect; always saying the ALL share p scores p(1-p))",
    "subject accuracy": "accuracy of a per-subject majority vote (number of test subjects)",
    "subject AUC": "ROC AUC of each subject's mean P(ALL), interval over subjects",
    "across repeats": "balanced accuracy over compare.repeats outer cross-validations with other fold seeds: mean "
                      "± sample standard deviation, then [min, max]; the spread of the fold assignment's luck, not a "
                      "confidence interval",
    "second line": "95 % percentile bootstrap interval resampling the protocol's unit within each class; or why it "
                   "is not estimable (a class with fewer than 5 subjects or blocks, or fewer than 3 resampled units); "
                   f"or '{NO_SPREAD}' when every replicate gave the same value (no interval to show)",
    "fold": "outer split: prelim_test (official) or cv_<k>",
    "part": "train or test part of the split",
    "ALL cells": "cells labelled ALL", "HEM cells": "cells labelled HEM",
    "ALL units": "distinct subjects (blocks under blocked-cv) with ALL cells; unknown without subject ids",
    "HEM units": "distinct subjects (blocks under blocked-cv) with HEM cells; unknown without subject ids",
    "paired cells": "test cells the row shares with the headline",
    "headline": "the headline's balanced accuracy on those cells",
    "difference": "row minus headline, balanced accuracy; second line: paired bootstrap interval",
    "only row right": "cells the row gets right and the headline wrong",
    "only headline right": "cells the headline gets right and the row wrong",
    "McNemar p": "exact two-sided McNemar test on those discordant cells (treats cells as independent)",
    "Holm p": "McNemar p adjusted by Holm's step-down method across the rows",
    "verdict": "indistinguishable unless Holm p < 0.05 and the difference's interval is estimable and excludes 0",
    "chosen model": "the candidate the inner folds chose in this outer fold", "inner score":
        "its balanced accuracy pooled over the inner folds",
    "clears 0.6": "whether the interval's lower bound is above 0.6: the background alone tells the classes apart",
    "paper model": "backbone as named in the reference study's Table 1",
    "paper acc / prec / rec": "the study's validation accuracy / precision / recall, as printed",
    "ours, Keras element-wise": "our head's accuracy / precision / recall counted as the paper's Keras metrics "
                                "appear to be: over both one-hot sigmoid outputs",
    "ours, ALL class": "our head's accuracy / precision / recall with ALL as the positive class",
    "differs in": "what differs between the study's setting and ours",
    "n_features": "feature columns", "n_labelled": "labelled samples kept by every stage",
    "n_missing": "labelled samples with no row in the features file", "n_dropped": "rows dropped: every feature NaN",
    "n_imputed": "rows kept with some NaN, imputed by the training-part median",
    "pca_components": "principal components of the embedding part (hybrid sets)",
    **STATISTICS_GLOSSARY,
    **QC_GLOSSARY,
}


def fmt(value: float | None) -> str:
    """Three decimals; ``n/a`` for NaN or None."""
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.3f}"


_BOTH = re.compile(r"not estimable \((\d+) ALL (\w+)\); not estimable \((\d+) HEM \2\)")


def short_note(note: str) -> str:
    """``not estimable (2 ALL subjects); not estimable (2 HEM subjects)`` as ``not estimable (2 ALL, 2 HEM
    subjects)``; other notes as they are."""
    return _BOTH.sub(r"not estimable (\1 ALL, \3 HEM \2)", note)


def with_interval(value: float, low: float, high: float, note: str = "") -> str:
    """``value`` with its interval, or the reason it has none, on a second line.

    A zero-width interval is shown as :data:`NO_SPREAD`, never as a pair of equal numbers.
    """
    if isinstance(note, str) and note:
        return f"{fmt(value)}\n{short_note(note)}"
    if pd.isna(low) or pd.isna(high):
        return fmt(value)
    if fmt(low) == fmt(high):
        return f"{fmt(value)}\n{NO_SPREAD}"
    return f"{fmt(value)}\n[{fmt(low)}, {fmt(high)}]"


def results_table(evaluation: Evaluation) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """Every results row with its intervals, Brier score, subject-level figures and repeats.

    Returns
    -------
    table : DataFrame
        Text cells, rows in the results' order (headline, baseline, candidates, heads).
    highlight : tuple of int
        The headline's row.
    """
    results = evaluation.results.reset_index(drop=True)
    calibration = evaluation.calibration.set_index(["model", "feature_set"]) if len(evaluation.calibration) else None
    repeats = evaluation.repeats.set_index(["model", "feature_set"]) if len(evaluation.repeats) else None
    rows = []
    for r in results.itertuples(index=False):
        row = {"role": ROLE_LABELS[r.role], "model": r.model, "feature set": r.feature_set, "weights": r.weights,
               "cells": str(r.n_test)}
        for metric, label in METRIC_LABELS.items():
            row[label] = with_interval(getattr(r, metric), getattr(r, f"{metric}_ci_low"),
                                       getattr(r, f"{metric}_ci_high"), getattr(r, f"{metric}_ci_note"))
        cal = calibration.loc[(r.model, r.feature_set)] if calibration is not None else None
        row["Brier"] = fmt(cal["brier"]) if cal is not None else "n/a"
        row["subject accuracy"] = ("n/a" if r.n_test_subjects == 0 else
                                   f"{fmt(r.subject_accuracy)} ({r.n_test_subjects})")
        row["subject AUC"] = ("n/a" if cal is None or pd.isna(cal["subject_auc"]) else with_interval(
            cal["subject_auc"], cal["subject_auc_ci_low"], cal["subject_auc_ci_high"], cal["subject_auc_ci_note"]))
        if repeats is not None:
            row["across repeats"] = _repeat_cell(repeats, r.model, r.feature_set)
        rows.append(row)
    highlight = tuple(int(k) for k in np.flatnonzero(results["role"] == Role.HEADLINE.value))
    return pd.DataFrame(rows), highlight


def _repeat_cell(repeats: pd.DataFrame, model: str, feature_set: str) -> str:
    if (model, feature_set) not in repeats.index:
        return "not repeated"
    r = repeats.loc[(model, feature_set)]
    return (f"{fmt(r['balanced_accuracy_mean'])} ± {fmt(r['balanced_accuracy_std'])}\n"
            f"[{fmt(r['balanced_accuracy_min'])}, {fmt(r['balanced_accuracy_max'])}], {int(r['repeats'])} repeats")


def verdict(row: pd.Series) -> str:
    """``indistinguishable``, or ``better`` / ``worse`` than the headline."""
    if row["indistinguishable"]:
        return "indistinguishable"
    return "better" if row["difference"] > 0 else "worse"


def paired_display(paired: pd.DataFrame) -> pd.DataFrame:
    """:func:`~leukoscope.classifiers.comparison.paired_comparisons` rows as displayed."""
    return pd.DataFrame([{
        "model": r["model"], "feature set": r["feature_set"], "paired cells": str(r["n_paired"]),
        "balanced accuracy": fmt(r["balanced_accuracy"]), "headline": fmt(r["reference_balanced_accuracy"]),
        "difference": with_interval(r["difference"], r["difference_ci_low"], r["difference_ci_high"],
                                    r["difference_ci_note"]),
        "only row right": str(r["only_row_right"]), "only headline right": str(r["only_reference_right"]),
        "McNemar p": fmt(r["mcnemar_p"]), "Holm p": fmt(r["holm_p"]), "verdict": verdict(r),
    } for _, r in paired.iterrows()])


def counts_display(counts: pd.DataFrame, unit_name: str, *, subjects_known: bool) -> pd.DataFrame:
    """:func:`~leukoscope.classifiers.baselines.class_counts` as displayed (units ``unknown`` without ids)."""
    shown = counts.astype(str).rename(columns={f"ALL_{unit_name}": "ALL units", f"HEM_{unit_name}": "HEM units",
                                               "ALL_cells": "ALL cells", "HEM_cells": "HEM cells"})
    if not subjects_known:
        shown[["ALL units", "HEM units"]] = "unknown"
    return shown


def chosen_display(chosen: pd.DataFrame) -> pd.DataFrame:
    """The nested selection's choice per outer fold."""
    return pd.DataFrame({"fold": chosen["fold"], "chosen model": chosen["model"] + " / " + chosen["feature_set"],
                         "inner score": [fmt(v) for v in chosen["inner_score"]]})


def confound_display(confound: pd.DataFrame) -> pd.DataFrame:
    """The confound check's rows as displayed."""
    return pd.DataFrame([{
        "model": r["model"], "feature set": "surround", "cells": str(r["n_test"]),
        "balanced accuracy": with_interval(r["balanced_accuracy"], r["balanced_accuracy_ci_low"],
                                           r["balanced_accuracy_ci_high"], r["balanced_accuracy_ci_note"]),
        "clears 0.6": "yes" if r["confound"] else "no",
    } for _, r in confound.iterrows()])


def glossary(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The glossary entries of every column the given tables show, in first-seen order (``""`` if none)."""
    names = list(dict.fromkeys(["second line", *(c for t in tables for c in t.columns)]))
    return pd.DataFrame({"column": names, "meaning": [GLOSSARY.get(n, "") for n in names]})


__all__ = ["GLOSSARY", "NO_SPREAD", "chosen_display", "confound_display", "counts_display", "fmt", "glossary",
           "paired_display", "results_table", "short_note", "verdict", "with_interval"]

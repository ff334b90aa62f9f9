"""Classifiers and their evaluation: pure functions on feature matrices and tables.

Classical models in leakage-safe pipelines, the reference paper's sigmoid heads on frozen
backbones (Keras, imported inside the functions that train or run them), the metrics with
subject-level bootstrap intervals, and subject-disjoint splits. Examples of every name:
docs/api.md.
"""

from __future__ import annotations

from leukoscope.classifiers.choices import ClassifierName, Protocol
from leukoscope.classifiers.errors import EvaluationError, LeakageError
from leukoscope.classifiers.featuresets import FeatureSet, hybrid_set, single_set
from leukoscope.classifiers.heads import (
    CLASSES,
    balanced_sample_weights,
    build_head,
    build_pooled_head,
    compile_head,
    copy_head,
    fit_head,
    fit_pooled_head,
    head_scores,
    mirror_pairs,
    one_hot,
    predict_scores,
    unfreeze_top,
)
from leukoscope.classifiers.metrics import (
    METRICS,
    binary_metrics,
    bootstrap_ci,
    confusion_matrix,
    subject_vote_accuracy,
)
from leukoscope.classifiers.models import (
    PARAM_GRIDS,
    THRESHOLD,
    build_pipeline,
    fit_predict,
    make_estimator,
    predict_labels,
)
from leukoscope.classifiers.splits import Split, check_no_leakage, encode_labels, iter_splits, resolve_protocol

__all__ = [
    "CLASSES",
    "METRICS",
    "PARAM_GRIDS",
    "THRESHOLD",
    "ClassifierName",
    "EvaluationError",
    "FeatureSet",
    "LeakageError",
    "Protocol",
    "Split",
    "balanced_sample_weights",
    "binary_metrics",
    "bootstrap_ci",
    "build_head",
    "build_pipeline",
    "build_pooled_head",
    "check_no_leakage",
    "compile_head",
    "confusion_matrix",
    "copy_head",
    "encode_labels",
    "fit_head",
    "fit_pooled_head",
    "fit_predict",
    "head_scores",
    "hybrid_set",
    "iter_splits",
    "make_estimator",
    "mirror_pairs",
    "one_hot",
    "predict_labels",
    "predict_scores",
    "resolve_protocol",
    "single_set",
    "subject_vote_accuracy",
    "unfreeze_top",
]

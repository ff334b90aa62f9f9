"""String enums for the classifier and evaluation choices exposed in the config."""

from __future__ import annotations

from enum import Enum


class Protocol(str, Enum):
    """How samples are split into training and test parts.

    ``OFFICIAL``: C-NMC's own split (training folds -> preliminary test set).
    ``GROUP_CV``: stratified k-fold grouped by subject (no subject on both sides).
    ``STRATIFIED_CV``: stratified k-fold over images, for datasets without subjects;
    image-level splits can leak when several images come from one patient.
    ``BLOCKED_CV``: stratified k-fold over blocks of consecutive sample numbers (``Im042_1`` is
    number 42), for datasets without subjects whose crops were cut from a few source fields
    numbered in order (ALL-IDB2): a block is a proxy for a field, never a proven patient.
    ``AUTO``: ``OFFICIAL`` when the data has C-NMC splits, else ``GROUP_CV`` when it has
    subjects, else ``STRATIFIED_CV``.
    """

    AUTO = "auto"
    OFFICIAL = "official"
    GROUP_CV = "group-cv"
    STRATIFIED_CV = "stratified-cv"
    BLOCKED_CV = "blocked-cv"


class ClassifierName(str, Enum):
    """Classical classifiers compared by ``leukoscope compare``."""

    SVM = "svm"
    LOGREG = "logreg"
    RF = "rf"
    KNN = "knn"
    XGBOOST = "xgboost"


class FeatureSetKind(str, Enum):
    """Families of feature sets entering the comparison."""

    HANDCRAFTED = "handcrafted"
    CNN = "cnn"
    HYBRID = "hybrid"
    HEAD = "head"

"""Classical classifiers: scikit-learn pipelines (impute -> [PCA] -> scale -> model) tuned by inner CV.

Every model is a :class:`~sklearn.pipeline.Pipeline` whose preprocessing is fitted on the
training part only, inside each fold: median imputation of missing features, an optional PCA
on the CNN-embedding columns (hybrid feature sets), standardisation, then the model. The
hyper-parameters in :data:`PARAM_GRIDS` are chosen by an inner cross-validation on the training
part (grouped by subject when subjects are known, so tuning never sees a test subject either),
maximising balanced accuracy, then the best setting is refitted on the whole training part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from xgboost import XGBClassifier

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.metrics import THRESHOLD, predict_labels  # re-exported: the one threshold rule

PARAM_GRIDS: dict[ClassifierName, dict[str, list[Any]]] = {
    ClassifierName.SVM: {"C": [1.0, 10.0, 100.0], "gamma": ["scale", 0.001]},
    ClassifierName.LOGREG: {"C": [0.01, 0.1, 1.0, 10.0]},
    ClassifierName.RF: {"min_samples_leaf": [1, 4]},
    ClassifierName.KNN: {"n_neighbors": [3, 7, 15], "weights": ["uniform", "distance"]},
    ClassifierName.XGBOOST: {"max_depth": [2, 4]},
}
"""The small grid each model is tuned over (keys are the model's own parameter names).

- ``svm``: RBF kernel, probabilities by Platt scaling on 3-fold cross-validated decision
  values (https://doi.org/10.7551/mitpress/1113.003.0008), the folds grouped by subject when
  subjects are known (:class:`PlattSVC`); C in {1, 10, 100}, gamma in {'scale' (1/n_features on
  standardised data), 0.001}.
- ``logreg``: L2 logistic regression; C in {0.01, 0.1, 1, 10}.
- ``rf``: 100 trees, sqrt(n_features) features per split; min_samples_leaf in {1, 4}.
- ``knn``: k in {3, 7, 15}, uniform or distance weights.
- ``xgboost``: 100 boosted trees (histograms of 64 bins), learning rate 0.1, row sample 0.8, column sample
  0.5 per tree, one thread (the folds run in parallel instead); max_depth in {2, 4}.

The grids are small on purpose: the whole demo comparison must run in minutes on two cores.
"""

SCORING = "balanced_accuracy"
CALIBRATION_FOLDS = 3


def _grouped(groups: np.ndarray | None) -> bool:
    """Whether the folds can be grouped by subject: every row names one."""
    return groups is not None and len(groups) > 0 and bool((groups != "").all())


class PlattSVC(ClassifierMixin, BaseEstimator):
    """RBF support vector machine with P(ALL) by Platt scaling, its folds grouped by subject.

    Platt (1999), https://doi.org/10.7551/mitpress/1113.003.0008: a sigmoid is fitted to the
    SVM's cross-validated decision values, then the SVM is refitted on every row
    (:class:`~sklearn.calibration.CalibratedClassifierCV` with ``ensemble=False``). When
    ``fit`` gets ``groups`` naming a subject on every row, the calibration folds are
    :class:`~sklearn.model_selection.StratifiedGroupKFold` by subject, so the sigmoid is
    fitted on decision values of subjects the SVM did not see, as it will be applied; else
    they are :class:`~sklearn.model_selection.StratifiedKFold` over rows (scikit-learn's
    ``cv=3``).

    Parameters
    ----------
    C : float
        Penalty of the SVM.
    gamma : float or "scale"
        RBF kernel width.
    calibration_folds : int
        Folds of the calibration; fewer when a class has fewer subjects (never below 2).
    random_state : int or None
        Seed of the SVM and of the grouped folds.

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV
    classes_ : (2,) ndarray
    grouped_ : bool
        Whether the calibration folds were grouped by subject.
    """

    def __init__(self, C: float = 1.0, gamma: float | str = "scale", calibration_folds: int = CALIBRATION_FOLDS,
                 random_state: int | None = None) -> None:
        self.C = C
        self.gamma = gamma
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Sequence[str] | np.ndarray | None = None) -> PlattSVC:
        """Fit the SVM and its sigmoid; ``groups`` (n,) names the subject of every row, optional.

        Raises
        ------
        EvaluationError
            ``groups`` name fewer than 2 subjects of a class, too few for grouped folds.
        """
        y = np.asarray(y)
        group_array = None if groups is None else np.asarray(groups, dtype=object).astype(str)
        cv: Any = self.calibration_folds
        self.grouped_ = _grouped(group_array)
        if self.grouped_ and group_array is not None:
            fewest = min(len(set(group_array[y == c])) for c in np.unique(y))
            if fewest < 2:
                raise EvaluationError(
                    f"the SVM's Platt calibration is grouped by subject, but a training part holds {fewest} "
                    "subject(s) of one class; it needs 2 or more: lower compare.inner_folds or compare.folds, "
                    "or leave svm out of compare.models"
                )
            splitter = StratifiedGroupKFold(n_splits=min(self.calibration_folds, fewest), shuffle=True,
                                            random_state=self.random_state)
            cv = list(splitter.split(X, y, group_array))
        svc = SVC(kernel="rbf", C=self.C, gamma=self.gamma, random_state=self.random_state)
        self.calibrated_ = CalibratedClassifierCV(svc, method="sigmoid", cv=cv, ensemble=False).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, 2) probabilities of ``classes_``."""
        return self.calibrated_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The second class where its probability is at least :data:`THRESHOLD`."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= THRESHOLD).astype(int)]


def _grid(name: ClassifierName) -> dict[str, list[Any]]:
    """:data:`PARAM_GRIDS` entry with the pipeline's parameter prefixes."""
    return {"model__" + key: values for key, values in PARAM_GRIDS[name].items()}


def make_estimator(name: ClassifierName | str, *, seed: int = 0) -> BaseEstimator:
    """The untuned model ``name`` with the fixed settings listed in :data:`PARAM_GRIDS`."""
    name = ClassifierName(name)
    if name is ClassifierName.SVM:
        return PlattSVC(random_state=seed)
    if name is ClassifierName.LOGREG:
        return LogisticRegression(max_iter=5000)
    if name is ClassifierName.RF:
        return RandomForestClassifier(n_estimators=100, max_features="sqrt", random_state=seed, n_jobs=1)
    if name is ClassifierName.KNN:
        return KNeighborsClassifier()
    return XGBClassifier(
        n_estimators=100,
        learning_rate=0.1,
        subsample=0.8,
        colsample_bytree=0.5,
        tree_method="hist",
        max_bin=64,
        n_jobs=1,
        random_state=seed,
        eval_metric="logloss",
    )


def build_pipeline(
    name: ClassifierName | str,
    *,
    seed: int = 0,
    pca_columns: Sequence[int] | np.ndarray = (),
    pca_components: int = 0,
) -> Pipeline:
    """Impute -> [PCA on some columns] -> standardise -> model, all fitted on training data only.

    Parameters
    ----------
    name : ClassifierName or str
    seed : int
        Seed of the model's randomness (SVM's Platt scaling, forests, boosting, PCA).
    pca_columns : sequence of int
        Columns (e.g. the CNN-embedding part of a hybrid set) replaced by their first
        ``pca_components`` principal components; the other columns pass through.
    pca_components : int
        0 keeps every column as it is.

    Returns
    -------
    Pipeline
        Steps ``prepare``, ``scale``, ``model``.
    """
    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    if pca_components > 0 and len(pca_columns):
        pca = Pipeline([("impute", impute), ("pca", PCA(n_components=pca_components, random_state=seed))])
        prepare: BaseEstimator = ColumnTransformer(
            [("pca", pca, list(pca_columns))],
            remainder=SimpleImputer(strategy="median", keep_empty_features=True),
        )
    else:
        prepare = impute
    return Pipeline([("prepare", prepare), ("scale", StandardScaler()), ("model", make_estimator(name, seed=seed))])


def inner_splits(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The inner (tuning, selection) splits of a training part.

    Parameters
    ----------
    x : (n, p) ndarray
    y : (n,) int ndarray
        1 = ALL, 0 = HEM.
    groups : (n,) str ndarray or None
        Subject (or block) of every row; the splits are grouped by it when no entry is empty.
    folds : int
    seed : int

    Returns
    -------
    list of ((n_train,) int ndarray, (n_test,) int ndarray)
        :class:`~sklearn.model_selection.StratifiedGroupKFold` when grouped, else
        :class:`~sklearn.model_selection.StratifiedKFold`; shuffled with ``seed``.

    Raises
    ------
    EvaluationError
        Fewer subjects (or images) of a class than ``folds``.
    """
    grouped = _grouped(groups)
    units = [len(set(groups[y == c])) if grouped and groups is not None else int((y == c).sum()) for c in (1, 0)]
    if min(units) < folds:
        kind = "subjects" if grouped else "images"
        raise EvaluationError(
            f"the inner cross-validation needs at least {folds} {kind} per class in every training "
            f"part, but one holds {units[0]} ALL and {units[1]} HEM {kind}; lower compare.inner_folds "
            "or compare.folds"
        )
    if grouped:
        return list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups))
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))


def fit_predict(
    name: ClassifierName | str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    groups: Sequence[str] | np.ndarray | None = None,
    inner_folds: int = 3,
    seed: int = 0,
    pca_columns: Sequence[int] | np.ndarray = (),
    pca_components: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Tune ``name`` by inner CV on the training part, refit it there, and score the test part.

    Parameters
    ----------
    name : ClassifierName or str
    x_train : (n_train, n_features) float ndarray
        May hold NaN (imputed by the training median).
    y_train : (n_train,) int ndarray
        1 = ALL, 0 = HEM.
    x_test : (n_test, n_features) float ndarray
    groups : (n_train,) sequence of str, optional
        Subject of every training row; the inner CV (and the SVM's Platt calibration) is
        grouped by it when none is empty.
    inner_folds : int
        Folds of the inner (tuning) cross-validation; at least 2.
    seed : int
    pca_columns, pca_components
        See :func:`build_pipeline`.

    Returns
    -------
    y_score : (n_test,) float ndarray
        P(ALL) of every test row.
    best_params : dict
        The chosen grid point (model parameter names, without the pipeline prefix).

    Raises
    ------
    EvaluationError
        Too few subjects or images per class for ``inner_folds``.
    """
    name = ClassifierName(name)
    if inner_folds < 2:
        raise EvaluationError(
            f"the inner cross-validation needs at least 2 folds, got compare.inner_folds = {inner_folds}"
        )
    y_train = np.asarray(y_train, dtype=int)
    group_array = None if groups is None else np.asarray(groups, dtype=object).astype(str)
    inner = inner_splits(x_train, y_train, group_array, inner_folds, seed)
    smallest = min(len(train) for train, _ in inner)  # PCA and k-NN may not ask for more rows
    grid = _grid(name)
    if name is ClassifierName.KNN:
        grid["model__n_neighbors"] = [k for k in grid["model__n_neighbors"] if k <= smallest] or [1]
    search = GridSearchCV(
        build_pipeline(
            name, seed=seed, pca_columns=pca_columns, pca_components=min(pca_components, len(pca_columns), smallest)
        ),
        grid,
        scoring=SCORING,
        cv=inner,
        n_jobs=1,
        error_score="raise",
    )
    grouped_svm = name is ClassifierName.SVM and _grouped(group_array)
    search.fit(x_train, y_train, **({"model__groups": group_array} if grouped_svm else {}))
    best = {key.rpartition("__")[2]: value for key, value in search.best_params_.items()}
    return search.predict_proba(x_test)[:, 1], best


__all__ = [
    "PARAM_GRIDS",
    "THRESHOLD",
    "PlattSVC",
    "build_pipeline",
    "fit_predict",
    "inner_splits",
    "make_estimator",
    "predict_labels",
]

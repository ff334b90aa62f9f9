"""The handcrafted feature families as a scikit-learn transformer.

:class:`HandcraftedFeatures` turns segmented cells, ``(image, labels)`` pairs, into the
feature matrix of :func:`~leukoscope.features.registry.compute_features`, so feature
extraction can be the first step of a :class:`sklearn.pipeline.Pipeline`::

    make_pipeline(HandcraftedFeatures(), SimpleImputer(), StandardScaler(), LogisticRegression())

It learns nothing: ``fit`` only checks the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leukoscope.features.choices import Family
from leukoscope.features.registry import check_options, compute_features, feature_names, resolve_families

#: Every family, the default of :class:`HandcraftedFeatures`.
ALL_FAMILIES: tuple[str, ...] = tuple(family.value for family in Family)


def _cells(X: Any, labels: Sequence[Any] | None) -> list[tuple[Any, Any]]:
    """``(image, labels)`` pairs from either input form; refuse anything else with the fix."""
    if labels is not None:
        if len(X) != len(labels):
            raise ValueError(f"got {len(X)} images but {len(labels)} label masks; give one mask per image")
        return list(zip(X, labels))
    cells = list(X)
    for index, cell in enumerate(cells):
        if isinstance(cell, np.ndarray) or not (isinstance(cell, Sequence) and len(cell) == 2):
            raise ValueError(
                f"item {index} of X is not an (image, labels) pair (got {type(cell).__name__} "
                f"{getattr(cell, 'shape', '')}); pass list(zip(images, labels)), or the images and "
                "the masks as two sequences: transform(images, labels)"
            )
    return cells


class HandcraftedFeatures(TransformerMixin, BaseEstimator):
    """Handcrafted features of segmented cells, one row per cell.

    Parameters
    ----------
    families : sequence of Family or str
        Families to compute (``intensity``, ``haralick``, ``morphology``, ``colour``;
        default all); the columns come in canonical family order whatever the order here.
    haralick_distance : int
        Pixel distance of the Haralick co-occurring pairs (>= 1).
    haralick_levels : int
        Grey levels of the Haralick quantisation (2..255).

    Attributes
    ----------
    families_ : tuple of Family
        The families computed, in canonical order.
    feature_names_out_ : (n_features,) object ndarray of str
        The column names (:func:`~leukoscope.features.registry.feature_names`).

    Notes
    -----
    ``X`` is a sequence of ``(image, labels)`` pairs: an ``(H, W, 3)`` uint8 RGB image and
    its ``(H, W)`` label mask (0 background, 1 cytoplasm, 2 nucleus, any integer or boolean
    dtype, see :func:`~leukoscope.segmentation.labels.as_label_mask`); sizes may differ from
    cell to cell. Outside a pipeline the images and masks may also be given as two
    sequences, ``transform(images, labels)``. A feature of a degenerate region (an empty
    nucleus, a flat cytoplasm) is NaN, as in
    :func:`~leukoscope.features.registry.compute_features`, whose ``qc_flag`` explains it;
    put a :class:`~sklearn.impute.SimpleImputer` before a model that refuses NaN.
    """

    def __init__(self, families: Sequence[Family | str] = ALL_FAMILIES, haralick_distance: int = 1,
                 haralick_levels: int = 64) -> None:
        self.families = families
        self.haralick_distance = haralick_distance
        self.haralick_levels = haralick_levels

    def fit(self, X: Any, y: Any = None, labels: Sequence[Any] | None = None) -> HandcraftedFeatures:
        """Check the parameters and the form of ``X`` (no feature is computed).

        Parameters
        ----------
        X : sequence of (image, labels) pairs, or of images when ``labels`` is given
        y : ignored
        labels : sequence of (H, W) ndarray, optional
            The masks of ``X``'s images, when ``X`` holds images only.

        Returns
        -------
        HandcraftedFeatures
            ``self``.

        Raises
        ------
        ValueError
            An unknown family, Haralick options out of range, or ``X`` in neither form.
        """
        try:
            families = resolve_families([self.families] if isinstance(self.families, str) else self.families)
        except ValueError:
            valid = ", ".join(f.value for f in Family)
            raise ValueError(f"unknown feature family in families={self.families!r}; valid families: {valid}") from None
        if not families:
            raise ValueError("families is empty; choose at least one of: " + ", ".join(f.value for f in Family))
        check_options(haralick_distance=self.haralick_distance, haralick_levels=self.haralick_levels)
        _cells(X, labels)
        self.families_ = families
        self.feature_names_out_ = np.asarray(feature_names(families), dtype=object)
        return self

    def transform(self, X: Any, labels: Sequence[Any] | None = None) -> np.ndarray:
        """The features of every cell.

        Parameters
        ----------
        X : sequence of (image, labels) pairs, or of images when ``labels`` is given
        labels : sequence of (H, W) ndarray, optional
            The masks of ``X``'s images, when ``X`` holds images only.

        Returns
        -------
        (n_cells, n_features) float64 ndarray
            Columns in :meth:`get_feature_names_out` order; NaN where a region is degenerate.

        Raises
        ------
        ValueError
            ``X`` in neither form, or a cell's image or mask is malformed (the message of
            :func:`~leukoscope.features.registry.compute_features`, with the cell's index).
        """
        check_is_fitted(self, "feature_names_out_")
        cells = _cells(X, labels)
        out = np.empty((len(cells), len(self.feature_names_out_)), dtype=np.float64)
        for row, (image, mask) in enumerate(cells):
            try:
                values = compute_features(image, mask, families=self.families_,
                                          haralick_distance=self.haralick_distance,
                                          haralick_levels=self.haralick_levels).values
            except ValueError as exc:
                raise ValueError(f"cell {row}: {exc}") from exc
            out[row] = [values[name] for name in self.feature_names_out_]
        return out

    def fit_transform(self, X: Any, y: Any = None, labels: Sequence[Any] | None = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same cells (``X`` is read once)."""
        cells = _cells(X, labels)
        return self.fit(cells, y).transform(cells)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The column names of :meth:`transform`'s output.

        Parameters
        ----------
        input_features : ignored
            The input has no feature names (it is images).

        Returns
        -------
        (n_features,) object ndarray of str
        """
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


__all__ = ["ALL_FAMILIES", "HandcraftedFeatures"]

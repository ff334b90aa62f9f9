"""The registry of handcrafted feature families: their columns, functions and quality flags.

Every family declares its columns up front (:data:`FAMILIES`), so the CSV header and the
data dictionary exist before any image is read, and a test checks that each family returns
exactly the names it declares. :func:`compute_features` runs the chosen families on one cell
(cropped once to the cell's bounding box) and explains every NaN in a ``qc_flag``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

import leukoscope.features.colour as colour  # the modules, not the package (whose __init__ imports this one)
import leukoscope.features.haralick as haralick
import leukoscope.features.intensity as intensity
import leukoscope.features.morphology as morphology
from leukoscope.features.choices import Family
from leukoscope.features.columns import Column
from leukoscope.features.regions import CellImage, Region, RegionStatus, check_inputs, crop_to_cell, region_statuses

DICTIONARY_COLUMNS = ["name", "family", "region", "description", "unit"]


@dataclass(frozen=True)
class FamilySpec:
    """One family: its declared columns and the pure functions that compute them.

    Attributes
    ----------
    family : Family
    columns : tuple of Column
        Declared before any computation, in CSV order.
    compute : callable
        The public function, ``compute(image, labels, **options) -> dict[str, float]``.
    measure : callable
        The same on a :class:`~leukoscope.features.regions.CellImage`, whose colour
        conversions and histograms the families share: ``measure(cell, **options)``.
    options : tuple of str
        Names of the :func:`compute_features` keyword options the functions take.
    """

    family: Family
    columns: tuple[Column, ...]
    compute: Callable[..., dict[str, float]]
    measure: Callable[..., dict[str, float]]
    options: tuple[str, ...] = ()


FAMILIES: dict[Family, FamilySpec] = {
    Family.INTENSITY: FamilySpec(Family.INTENSITY, intensity.COLUMNS, intensity.intensity_features,
                                 intensity.measure_intensity),
    Family.HARALICK: FamilySpec(Family.HARALICK, haralick.COLUMNS, haralick.haralick_features,
                                haralick.measure_haralick, options=("distance", "levels")),
    Family.MORPHOLOGY: FamilySpec(Family.MORPHOLOGY, morphology.COLUMNS, morphology.morphology_features,
                                  morphology.measure_morphology),
    Family.COLOUR: FamilySpec(Family.COLOUR, colour.COLUMNS, colour.colour_features, colour.measure_colour),
}


class FeatureResult(NamedTuple):
    """Features of one cell.

    Attributes
    ----------
    values : dict of str to float
        One value per column of the chosen families, NaN where undefined.
    qc_flag : str
        ``""`` when every value is defined, else ``;``-joined ``family:region:reason`` entries
        (reason ``empty``, ``one_pixel``, ``flat`` or ``undefined``).
    """

    values: dict[str, float]
    qc_flag: str


def resolve_families(families: Iterable[Family | str]) -> tuple[Family, ...]:
    """The chosen families in canonical order, without repeats."""
    chosen = {Family(f) for f in families}
    return tuple(f for f in Family if f in chosen)


def family_columns(families: Iterable[Family | str] = tuple(Family)) -> tuple[Column, ...]:
    """The declared columns of ``families``, in CSV order."""
    return tuple(column for family in resolve_families(families) for column in FAMILIES[family].columns)


def feature_names(families: Iterable[Family | str] = tuple(Family)) -> list[str]:
    """The column names of ``families``, in CSV order."""
    return [column.name for column in family_columns(families)]


def data_dictionary(families: Iterable[Family | str] = tuple(Family)) -> pd.DataFrame:
    """The data dictionary (``name, family, region, description, unit``) of ``families``."""
    rows = [(c.name, c.family.value, c.region, c.description, c.unit) for c in family_columns(families)]
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def check_options(*, haralick_distance: int, haralick_levels: int) -> None:
    """Raise ``ValueError`` with the config key to fix when an option is out of range."""
    haralick.check_haralick_options(distance=haralick_distance, levels=haralick_levels)


def _qc_flag(spec: FamilySpec, values: dict[str, float], statuses: dict[Region, RegionStatus]) -> list[str]:
    """``family:region:reason`` for every region with a NaN column, in column order."""
    flags = []
    for column in spec.columns:
        if not math.isnan(values[column.name]):
            continue
        reasons = [statuses[r].value for r in column.regions if statuses[r] is not RegionStatus.OK]
        flag = f"{spec.family.value}:{column.region}:{reasons[0] if reasons else 'undefined'}"
        if flag not in flags:
            flags.append(flag)
    return flags


def compute_features(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    families: Iterable[Family | str] = tuple(Family),
    haralick_distance: int = 1,
    haralick_levels: int = 64,
) -> FeatureResult:
    """All chosen feature families of one segmented cell.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image of any size (both arrays are cropped to the cell first).
    labels : (H, W) integer or bool ndarray
        Its segmentation: 0 background, 1 cytoplasm, 2 nucleus, in any integer dtype, or a
        boolean cell mask; for separate cell and nucleus masks pass
        ``as_label_mask(cell=..., nucleus=...)`` (:func:`~leukoscope.segmentation.labels.as_label_mask`).
    families : iterable of Family
        Families to compute (default all), output in canonical order.
    haralick_distance : int
        Pixel distance of the Haralick co-occurring pairs.
    haralick_levels : int
        Grey levels of the Haralick quantisation (2..255).

    Returns
    -------
    FeatureResult
        ``values`` keyed by :func:`feature_names` and the ``qc_flag`` that explains any NaN.

    Raises
    ------
    ValueError
        Wrong array shapes or types (a float mask, an image other than uint8 RGB), label
        values other than 0/1/2, or options out of range.
    """
    labels = check_inputs(image, labels)
    check_options(haralick_distance=haralick_distance, haralick_levels=haralick_levels)
    cell = CellImage(*crop_to_cell(image, labels))
    statuses = region_statuses(cell)
    options = {"distance": haralick_distance, "levels": haralick_levels}
    values: dict[str, float] = {}
    flags: list[str] = []
    for family in resolve_families(families):
        spec = FAMILIES[family]
        result = spec.measure(cell, **{name: options[name] for name in spec.options})
        values.update(result)
        flags.extend(_qc_flag(spec, result, statuses))
    return FeatureResult(values, ";".join(flags))

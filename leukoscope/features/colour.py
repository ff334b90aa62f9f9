"""Colour statistics that separate the stains of nucleus and cytoplasm, and their contrast.

Per region (nucleus, cytoplasm, cell), from OpenCV's 8-bit HSV (hue in 256 steps per turn)
and CIE L*a*b* (D65) conversions, whose integer codes map exactly onto the values below (a
float conversion would be finer but gives results that vary in the last bits with memory
alignment, which breaks "same CSV whatever the job count"):

- hue mean: saturation-weighted circular mean of the hue, in degrees (0-360); grey pixels
  carry no hue and weigh nothing;
- hue spread: ``1 - R``, where R is the length of the saturation-weighted mean hue vector
  (0 when every pixel has the same hue, up to 1 for hues spread round the circle);
- saturation mean and standard deviation (HSV saturation, 0-1);
- chroma mean: mean of ``sqrt(a*^2 + b*^2)``;
- blue ratio mean: mean of ``B / (R + G + B)`` (black pixels count as 1/3), which rises with
  the blue-violet of basophilic stains.

Nucleus against cytoplasm: CIE76 colour difference (delta E*ab) of their mean L*a*b*,
circular hue difference (0-180 degrees), saturation difference and L* difference (nucleus
minus cytoplasm).

A region with fewer than two pixels gives NaN in its columns (and in the contrasts); the hue
columns are NaN for a region without any saturated pixel.

References
----------
CIE (1976) L*a*b* colour space and colour difference; see Sharma, Wu, Dalal (2005). The
CIEDE2000 color-difference formula. Color Res. Appl. 30(1), 21-30. doi:10.1002/col.20070
"""

from __future__ import annotations

import numpy as np

from leukoscope.features.choices import Family
from leukoscope.features.columns import Column
from leukoscope.features.regions import CYTOPLASM, NUCLEUS, CellImage, Region

REGIONS = (Region.NUCLEUS, Region.CYTOPLASM, Region.CELL)
#: Per-region feature -> (description, unit).
PER_REGION: dict[str, tuple[str, str]] = {
    "hue_mean": ("saturation-weighted circular mean hue", "degrees"),
    "hue_spread": ("circular spread of the hue, 1 - length of the weighted mean hue vector", "1"),
    "saturation_mean": ("mean HSV saturation", "1"),
    "saturation_std": ("standard deviation of the HSV saturation", "1"),
    "chroma_mean": ("mean CIE chroma sqrt(a*^2 + b*^2)", "a*b*"),
    "blue_ratio_mean": ("mean of B / (R + G + B)", "1"),
}
_PAIR = (Region.NUCLEUS, Region.CYTOPLASM)
#: Nucleus-versus-cytoplasm feature -> (description, unit).
CONTRASTS: dict[str, tuple[str, str]] = {
    "delta_e": ("CIE76 colour difference between the mean L*a*b* of nucleus and cytoplasm", "delta E*ab"),
    "hue_difference": ("circular difference of the mean hues of nucleus and cytoplasm (0-180)", "degrees"),
    "saturation_difference": ("mean saturation of the nucleus minus that of the cytoplasm", "1"),
    "lightness_difference": ("mean L* of the nucleus minus that of the cytoplasm", "L* (0-100)"),
}

# Lookup tables from OpenCV's 8-bit codes (HSV_FULL hue: 256 steps per turn; L* scaled by
# 255/100; a*, b* offset by 128) to the reported values: exact and the same on every machine.
_UNIT = np.arange(256) / 255.0
_COS = np.cos(np.arange(256) * (2 * np.pi / 256))
_SIN = np.sin(np.arange(256) * (2 * np.pi / 256))
_LIGHTNESS = np.arange(256) * (100.0 / 255.0)
_OFFSET = np.arange(256) - 128.0
_CHROMA = np.hypot(*np.meshgrid(_OFFSET, _OFFSET, indexing="ij")).ravel()  # index a * 256 + b

COLUMNS: tuple[Column, ...] = tuple(
    Column(f"colour_{feature}_{region.value}", Family.COLOUR, (region,),
           f"{description} over the {region.value}", unit)
    for region in REGIONS
    for feature, (description, unit) in PER_REGION.items()
) + tuple(
    Column(f"colour_{feature}_nucleus_cytoplasm", Family.COLOUR, _PAIR, description, unit)
    for feature, (description, unit) in CONTRASTS.items()
)


def _by_region(per_label: np.ndarray) -> np.ndarray:
    """Per-label sums (label first) to nucleus, cytoplasm, cell (:data:`REGIONS` order)."""
    return np.stack([per_label[NUCLEUS], per_label[CYTOPLASM], per_label[NUCLEUS] + per_label[CYTOPLASM]])


def colour_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Hue, saturation, chroma and blueness of each region, and nucleus/cytoplasm contrast.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image, read through its 8-bit HSV and L*a*b* codes.
    labels : (H, W) integer or bool ndarray
        Label mask: background 0 is left out, cytoplasm 1, nucleus 2 (any form
        :func:`~leukoscope.segmentation.labels.as_label_mask` reads).

    Returns
    -------
    dict of str to float
        The 22 :data:`COLUMNS`; hue NaN without saturated pixels, all NaN for a region of
        fewer than two pixels.
    """
    return measure_colour(CellImage(image, labels))


def measure_colour(cell: CellImage) -> dict[str, float]:
    """:func:`colour_features` of a :class:`~leukoscope.features.regions.CellImage`."""
    # OpenCV's integer conversions of the whole crop; label 0 is dropped below
    planes = {name: plane.ravel() for name, plane in cell.planes.items()}
    label = cell.labels.ravel().astype(np.intp)
    channel_sum = planes["red"].astype(np.int32) + planes["green"] + planes["blue"]
    blue_ratio = np.divide(planes["blue"], channel_sum, out=np.full(len(label), 1 / 3), where=channel_sum > 0)
    chroma = _CHROMA[planes["lab_a"].astype(np.intp) * 256 + planes["lab_b"]]
    # per label: histograms of the 8-bit codes, saturation summed per hue code, chroma and blueness sums
    histograms = [cell.histograms(name) for name in ("saturation", "lab_l", "lab_a", "lab_b")]
    saturation_by_hue = np.bincount(label * 256 + planes["hue"], weights=_UNIT[planes["saturation"]],
                                    minlength=3 * 256).reshape(3, 256)
    sums = [np.bincount(label, weights=w, minlength=3) for w in (chroma, blue_ratio)]
    saturation, lightness, lab_a, lab_b, weight_by_hue, chroma, blue = (
        _by_region(x) for x in (*histograms, saturation_by_hue, *sums))

    count = lightness.sum(axis=1).astype(np.float64)
    usable = count >= 2
    n = np.where(usable, count, 1.0)
    sat_mean = (saturation * _UNIT).sum(axis=1) / n
    sat_var = (saturation * (_UNIT - sat_mean[:, None]) ** 2).sum(axis=1) / n
    weight = weight_by_hue.sum(axis=1)
    hued = usable & (weight > 0)
    vector = ((weight_by_hue * _COS).sum(axis=1) + 1j * (weight_by_hue * _SIN).sum(axis=1)) / np.where(
        hued, weight, 1.0)
    hue_mean = np.where(hued, np.rad2deg(np.angle(vector)) % 360.0, np.nan)
    lab_mean = np.stack([(lightness * _LIGHTNESS).sum(axis=1), (lab_a * _OFFSET).sum(axis=1),
                         (lab_b * _OFFSET).sum(axis=1)], axis=1) / n[:, None]
    nan_unless_usable = lambda x: np.where(usable, x, np.nan)  # noqa: E731
    table = {
        "hue_mean": hue_mean,
        "hue_spread": np.where(hued, 1.0 - np.abs(vector), np.nan),
        "saturation_mean": nan_unless_usable(sat_mean),
        "saturation_std": nan_unless_usable(np.sqrt(sat_var)),
        "chroma_mean": nan_unless_usable(chroma / n),
        "blue_ratio_mean": nan_unless_usable(blue / n),
    }
    lab_mean[~usable] = np.nan
    out = {f"colour_{name}_{region.value}": float(table[name][r])
           for r, region in enumerate(REGIONS) for name in PER_REGION}
    nucleus, cytoplasm = 0, 1
    hue_gap = abs(hue_mean[nucleus] - hue_mean[cytoplasm]) % 360.0
    sat_gap = table["saturation_mean"][nucleus] - table["saturation_mean"][cytoplasm]
    out["colour_delta_e_nucleus_cytoplasm"] = float(np.sqrt(((lab_mean[nucleus] - lab_mean[cytoplasm]) ** 2).sum()))
    out["colour_hue_difference_nucleus_cytoplasm"] = float(min(hue_gap, 360.0 - hue_gap))
    out["colour_saturation_difference_nucleus_cytoplasm"] = float(sat_gap)
    out["colour_lightness_difference_nucleus_cytoplasm"] = float(lab_mean[nucleus, 0] - lab_mean[cytoplasm, 0])
    return out

"""Decode expert masks into label masks (0 background, 1 cytoplasm, 2 nucleus).

Two formats are understood:

- ALL-IDB2 (Di Ruberto, Loddo, Putzu 2016): RGB colour-coded, background (255, 255, 255),
  cytoplasm (0, 0, 255), nucleus (0, 255, 255);
- Zheng et al. (2018) WBC sets: one channel, background 0 (red cells included), cytoplasm
  128, nucleus 255. Stray in-between values (a few hundred pixels in dataset 2) are rounded
  to the nearest of the three.

A pixel further than :data:`TOLERANCE` from every code is "unknown"; if more than
:data:`MAX_UNKNOWN_FRACTION` of the pixels are unknown, the array is not such a mask and
decoding fails instead of producing a silently wrong ground truth.

References
----------
Labati RD, Piuri V, Scotti F. All-IDB: the acute lymphoblastic leukemia image database for
image processing. ICIP 2011. doi:10.1109/ICIP.2011.6115881

Zheng X, Wang Y, Wang G, Liu J. Fast and robust segmentation of white blood cell images by
self-supervised learning. Micron 107:55-71, 2018. doi:10.1016/j.micron.2018.01.010
"""

from __future__ import annotations

import numpy as np

ALLIDB2_COLOURS = np.array([(255, 255, 255), (0, 0, 255), (0, 255, 255)], dtype=np.int32)
ZHENG_LEVELS = np.array([0, 128, 255], dtype=np.int32)
TOLERANCE = 64
MAX_UNKNOWN_FRACTION = 0.01


class MaskFormatError(ValueError):
    """An array is not an expert mask in any known format."""


def _nearest(distance: np.ndarray, what: str) -> np.ndarray:
    """Label = index of the nearest code; refuse arrays with many pixels far from every code."""
    unknown = float(np.mean(distance.min(axis=-1) > TOLERANCE**2))
    if unknown > MAX_UNKNOWN_FRACTION:
        raise MaskFormatError(
            f"{unknown:.1%} of the pixels match none of the {what}; is this an expert mask?"
        )
    return np.argmin(distance, axis=-1).astype(np.uint8)


def decode_allidb2_mask(mask: np.ndarray) -> np.ndarray:
    """Decode an ALL-IDB2 colour-coded mask.

    Parameters
    ----------
    mask : (H, W, 3) uint8 ndarray
        White background, blue (0, 0, 255) cytoplasm, cyan (0, 255, 255) nucleus.

    Returns
    -------
    (H, W) uint8 ndarray
        Labels 0 background, 1 cytoplasm, 2 nucleus (each pixel takes the nearest colour).

    Raises
    ------
    MaskFormatError
        Not an (H, W, 3) array, or more than 1% of the pixels far from every code colour.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3 or mask.shape[2] != 3:
        raise MaskFormatError(f"an ALL-IDB2 mask is an (H, W, 3) colour image, got shape {mask.shape}")
    difference = mask[..., None, :].astype(np.int32) - ALLIDB2_COLOURS
    return _nearest(np.sum(difference * difference, axis=-1), "ALL-IDB2 mask colours (white, blue, cyan)")


def decode_zheng_mask(mask: np.ndarray) -> np.ndarray:
    """Decode a Zheng et al. single-channel mask (0 / 128 / 255).

    Parameters
    ----------
    mask : (H, W) uint8 ndarray
        0 background, 128 cytoplasm, 255 nucleus; other values are rounded to the nearest.

    Returns
    -------
    (H, W) uint8 ndarray
        Labels 0 background, 1 cytoplasm, 2 nucleus.

    Raises
    ------
    MaskFormatError
        Not a 2-D array, or more than 1% of the pixels far from every level.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MaskFormatError(f"a Zheng mask is a single-channel (H, W) image, got shape {mask.shape}")
    difference = mask[..., None].astype(np.int32) - ZHENG_LEVELS
    return _nearest(difference * difference, "Zheng mask levels (0, 128, 255)")


def decode_expert_mask(mask: np.ndarray) -> np.ndarray:
    """Decode an expert mask of either format into labels.

    A colour array whose channels differ is an ALL-IDB2 mask; a single-channel array, or a
    colour array with three equal channels (a grey mask saved as RGB), is a Zheng mask.

    Parameters
    ----------
    mask : (H, W) or (H, W, 3) uint8 ndarray
        The raw mask.

    Returns
    -------
    (H, W) uint8 ndarray
        Labels 0 background, 1 cytoplasm, 2 nucleus.

    Raises
    ------
    MaskFormatError
        The array is in neither format.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 3:
        if not (np.array_equal(mask[..., 0], mask[..., 1]) and np.array_equal(mask[..., 1], mask[..., 2])):
            return decode_allidb2_mask(mask)
        mask = mask[..., 0]
    return decode_zheng_mask(mask)

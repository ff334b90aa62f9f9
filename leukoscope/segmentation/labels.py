"""Label masks: the one place where any label or mask array becomes leukoscope's uint8 0/1/2.

Every algorithm that reads a segmentation (the feature families, the overlays, the Dice
scores, the refiner) takes a label mask: an ``(H, W)`` array holding 0 (background),
1 (cytoplasm) and 2 (nucleus). :func:`as_label_mask` accepts it in the forms other tools
write, so a mask from scikit-image, QuPath or a hand-made numpy array can be used directly:

- any integer array with values 0, 1 and 2 (int32 from ``skimage.measure``, int64 from numpy);
- a boolean array, read as 0 background and 1 cytoplasm (a cell without nucleus);
- a boolean (or 0/1) whole-cell mask together with a boolean (or 0/1) nucleus mask.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

BACKGROUND = 0
CYTOPLASM = 1
NUCLEUS = 2


def _as_2d_array(array: ArrayLike, name: str) -> np.ndarray:
    """``array`` as an (H, W) integer or boolean ndarray; refuse floats and other shapes."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) array, got shape {array.shape}; "
                         "for an (H, W, 1) image pass its first channel, mask[..., 0]")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be an integer or boolean array, got {array.dtype}; "
                         f"round it first, e.g. np.rint({name}).astype(np.uint8)")
    return array


def _check_values(array: np.ndarray, name: str, allowed: int, meaning: str, fix: str) -> None:
    """Raise unless every value of the integer ``array`` lies in ``0..allowed``."""
    if array.dtype == bool or not array.size:
        return
    signed = not np.issubdtype(array.dtype, np.unsignedinteger)
    if array.max() > allowed or (signed and array.min() < 0):
        bad = np.unique(array[(array < 0) | (array > allowed)])
        shown = ", ".join(str(int(v)) for v in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise ValueError(f"{name} holds values [{shown}]; only {meaning} are allowed; {fix}")


def _uint8(array: np.ndarray) -> np.ndarray:
    """A checked 0..255 array as uint8, without a copy when it is uint8 or bool already."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.view(np.uint8)
    return array.astype(np.uint8)


def as_label_mask(
    labels: ArrayLike | None = None, *, cell: ArrayLike | None = None, nucleus: ArrayLike | None = None
) -> np.ndarray:
    """The label mask leukoscope's algorithms read, from labels or from two binary masks.

    Give either ``labels``, or ``cell`` (and optionally ``nucleus``).

    Parameters
    ----------
    labels : (H, W) integer or bool array-like, optional
        0 background, 1 cytoplasm, 2 nucleus, in any integer dtype; a boolean array is
        background (False) and cytoplasm (True).
    cell : (H, W) bool or 0/1 integer array-like, optional
        The whole cell, nucleus included.
    nucleus : (H, W) bool or 0/1 integer array-like, optional
        The nucleus, inside ``cell``; needs ``cell``.

    Returns
    -------
    (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus. A uint8 ``labels`` is returned as it is (not
        copied); a boolean one as a uint8 view.

    Raises
    ------
    ValueError
        Neither or both forms are given; an array is not 2-D, is a float array, or holds
        other values (``labels``: 0/1/2, ``cell`` and ``nucleus``: 0/1); the masks differ in
        shape; the nucleus has pixels outside the cell.

    Examples
    --------
    >>> as_label_mask(np.array([[0, 1, 2]], dtype=np.int32))
    array([[0, 1, 2]], dtype=uint8)
    >>> as_label_mask(cell=np.array([[0, 1, 1]], bool), nucleus=np.array([[0, 0, 1]], bool))
    array([[0, 1, 2]], dtype=uint8)
    """
    if labels is not None:
        if cell is not None or nucleus is not None:
            raise ValueError("give either labels, or cell (and nucleus) masks, not both")
        labels = _as_2d_array(labels, "labels")
        _check_values(labels, "labels", NUCLEUS, "0 (background), 1 (cytoplasm) and 2 (nucleus)",
                      "for a binary mask pass as_label_mask(cell=mask > 0)")
        return _uint8(labels)
    if cell is None:
        raise ValueError("no mask given: pass labels (0/1/2), or cell=... and optionally nucleus=... (boolean masks)")
    cell = _as_2d_array(cell, "cell")
    _check_values(cell, "cell", 1, "0 and 1 (or False and True)", "for a 0/255 mask pass cell=mask > 0")
    out = _uint8(cell).copy()
    if nucleus is None:
        return out
    nucleus = _as_2d_array(nucleus, "nucleus")
    if nucleus.shape != cell.shape:
        raise ValueError(f"nucleus mask is {nucleus.shape[0]}x{nucleus.shape[1]} but the cell mask is "
                         f"{cell.shape[0]}x{cell.shape[1]}; they must have the same size")
    _check_values(nucleus, "nucleus", 1, "0 and 1 (or False and True)", "for a 0/255 mask pass nucleus=mask > 0")
    inside = nucleus.astype(bool, copy=False)
    outside = int(np.count_nonzero(inside & (out == 0)))
    if outside:
        raise ValueError(f"{outside} nucleus pixels lie outside the cell mask; the cell must contain its "
                         "nucleus: pass cell=cell | nucleus if they belong to the cell")
    out[inside] = NUCLEUS
    return out


__all__ = ["BACKGROUND", "CYTOPLASM", "NUCLEUS", "as_label_mask"]

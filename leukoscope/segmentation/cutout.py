"""C-NMC-like cut-outs of expert-masked smear crops, for benchmarks and tests.

C-NMC cells come cut out of their smear and set on black, by a mask that is seldom exact: a
ring of the surrounding smear (plasma, red cells, pieces of neighbours) often stays round the
cell. An expert-masked crop (ALL-IDB2, Zheng) is turned into such a cut-out by blacking out
everything farther than ``margin`` pixels from the expert's cell mask; the expert labels stay
the ground truth of the cut-out.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.segmentation.channels import check_rgb


def expert_cutout(image: np.ndarray, labels: np.ndarray, *, margin: int) -> np.ndarray:
    """Black out everything outside the expert cell mask dilated by ``margin`` pixels.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB crop.
    labels : (H, W) uint8 ndarray
        Expert labels, 0 background, 1 cytoplasm, 2 nucleus (any non-zero pixel is cell).
    margin : int
        Radius in pixels of the disc the cell mask is dilated with (0: the cell exactly).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        A copy of ``image``, (0, 0, 0) wherever the Euclidean distance to the nearest cell
        pixel is more than ``margin`` (a dilation by the disc of pixel offsets
        ``dx**2 + dy**2 <= margin**2``).

    Raises
    ------
    ValueError
        Sizes differ, ``margin`` is negative, or the image is not RGB uint8.
    """
    image = check_rgb(image)
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels are {labels.shape} but the image is {image.shape[:2]}; they must match")
    if margin < 0:
        raise ValueError(f"margin must be 0 or more pixels, got {margin}")
    keep = (labels > 0).astype(np.uint8)
    if margin:
        offsets = np.arange(-margin, margin + 1)
        disc = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= margin**2).astype(np.uint8)
        keep = cv2.dilate(keep, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = image.copy()
    out[keep == 0] = 0
    return out

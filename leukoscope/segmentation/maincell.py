"""The main cell of a cut-out on black: without smear, fragments, red cells or neighbours.

A cut-out's non-black region is the cell as the cutting mask saw it, and that mask may hold
more than the cell: a ring of smear (:mod:`~leukoscope.segmentation.surround`), fragments of
debris, a red cell or a neighbouring white cell, joined to the cell or not. The main cell is
found in four steps:

1. the surround of smear, if the three-population test finds one, is removed;
2. objects under ``min_size`` pixels are dropped and holes filled; a *coarse nucleus* is
   thresholded (nucleus channel, on all remaining pixels), and its object containing or
   nearest the image centre is the *central nucleus*;
3. every object, and an object less solid than ``split_solidity`` also every part of it that
   a thin neck joins (:func:`~leukoscope.segmentation.split.neck_pieces`), is a *piece*;
4. the main cell is the union of the pieces that overlap the central nucleus (the central
   object when there is no nucleus). Every other piece is cut away: one holding a coarse-
   nucleus object of ``min_size`` pixels is another white cell (flag ``multiple_cells``),
   one holding none is debris, a fragment or a red cell (flag ``debris_removed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.segmentation.choices import Channel, Enhancement, QCFlag, ThresholdMethod
from leukoscope.segmentation.cleanup import fill_holes, keep_central_component, remove_small_objects
from leukoscope.segmentation.nucleus import Nucleus, find_nucleus
from leukoscope.segmentation.split import neck_pieces, solidity
from leukoscope.segmentation.surround import SurroundTest, strip_surround


@dataclass(frozen=True)
class MainCell:
    """The main cell of a cut-out and what was cut away.

    Attributes
    ----------
    mask : (H, W) bool ndarray
        The main cell, holes filled (empty when the region holds no object of ``min_size``).
    flags : tuple of QCFlag
        ``multiple_cells`` and/or ``debris_removed`` when such pieces were cut away.
    surround : SurroundTest
        The surround test of step 1.
    nucleus : Nucleus or None
        The coarse nucleus when nothing was cut away after step 2 (it is then the nucleus
        of ``mask``), else None.
    """

    mask: np.ndarray
    flags: tuple[QCFlag, ...]
    surround: SurroundTest
    nucleus: Nucleus | None = None


def _split_central(pieces: np.ndarray, count: int, central: np.ndarray, split_solidity: float) -> np.ndarray:
    """Object labels with the central object cut at its necks when it is less solid than the limit."""
    label = pieces[central][0]
    target = pieces == label
    if solidity(target) < split_solidity:
        parts = neck_pieces(target)[target]
        pieces[target] = np.where(parts == 1, label, count + parts - 2)
    return pieces


def main_cell(
    image: np.ndarray,
    region: np.ndarray,
    *,
    center: tuple[float, float],
    channel: Channel | str,
    method: ThresholdMethod | str,
    enhance: Enhancement | str,
    min_size: int,
    split_solidity: float,
) -> MainCell:
    """Find the main cell in the non-black region of a cut-out (module docstring).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cut-out (or its bounding box).
    region : (H, W) bool ndarray
        Its non-black pixels.
    center : (row, col)
        The point the main cell is nearest to (the cut-out's centre, in ``image``'s frame).
    channel, method, enhance
        Nucleus channel, threshold method and enhancement of the coarse nucleus
        (:func:`~leukoscope.segmentation.nucleus.find_nucleus`).
    min_size : int
        Smallest object (cell piece or nucleus) considered, in pixels.
    split_solidity : float
        Objects less solid than this are cut at their necks; 0 never cuts.

    Returns
    -------
    MainCell
        The main cell and the flags of what was cut away.
    """
    stripped, test = strip_surround(image, region)
    objects = fill_holes(remove_small_objects(stripped, min_size=min_size))
    if not objects.any():
        objects = fill_holes(remove_small_objects(region, min_size=min_size))
    if not objects.any():
        return MainCell(objects, (), test)
    nucleus = find_nucleus(image, objects, channel=channel, method=method, enhance=enhance, min_size=min_size)
    count, pieces = cv2.connectedComponents(objects.view(np.uint8), connectivity=8)
    if count == 2 and not solidity(objects) < split_solidity:
        return MainCell(objects, (), test, nucleus)
    central = keep_central_component(nucleus.mask, center=center)
    if not central.any():
        central = keep_central_component(objects, center=center)
    pieces = _split_central(pieces, count, central, split_solidity)
    keep = np.bincount(pieces[central], minlength=int(pieces.max()) + 1) > 0
    keep[0] = False
    if keep[1:].all():
        return MainCell(objects, (), test, nucleus)
    flags = set()
    for label in np.flatnonzero(~keep[1:]) + 1:
        piece = pieces == label
        if np.count_nonzero(piece) < min_size:
            continue
        has_nucleus = remove_small_objects(nucleus.mask & piece, min_size=min_size).any()
        flags.add(QCFlag.MULTIPLE_CELLS if has_nucleus else QCFlag.DEBRIS_REMOVED)
    return MainCell(fill_holes(keep[pieces]), tuple(sorted(flags, key=list(QCFlag).index)), test)

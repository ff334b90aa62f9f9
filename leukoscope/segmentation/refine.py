"""Apply a trained refiner U-Net to images and their threshold labels.

The model (see :mod:`leukoscope.segmentation.unet`) is given; loading it from a file is the
pipeline's job (:func:`leukoscope.pipeline.refiner_model.load_refiner`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from leukoscope.segmentation.cell import SegmentationResult
from leukoscope.segmentation.choices import Background, QCFlag
from leukoscope.segmentation.cleanup import clean_mask, remove_small_objects
from leukoscope.segmentation.labels import as_label_mask
from leukoscope.segmentation.qc import join_flags, label_flags, split_flags
from leukoscope.segmentation.unet_encoding import decode_output, encode_input

#: flags of the threshold result that describe the image, not the threshold labels: kept
IMAGE_FLAGS = (QCFlag.MULTIPLE_CELLS, QCFlag.DEBRIS_REMOVED)


def model_side(model: Any) -> int:
    """Input side of a refiner model (its input is ``(None, side, side, 5)``)."""
    return int(model.input_shape[1])


def tidy_labels(labels: np.ndarray, *, min_size: int) -> np.ndarray:
    """The documented clean-up of refined labels.

    The whole cell is cleaned like a threshold mask (:func:`~leukoscope.segmentation.cleanup.clean_mask`:
    objects under ``min_size`` pixels dropped, the central object kept, its holes filled); the
    nucleus is what the network called nucleus inside that cell, without objects under
    ``min_size / 4`` pixels (a lobed nucleus keeps all its lobes).

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Raw labels (0 background, 1 cytoplasm, 2 nucleus).
    min_size : int
        Smallest cell object kept, in pixels.

    Returns
    -------
    (H, W) uint8 ndarray
        Clean labels; all zero when no cell of ``min_size`` pixels is left.
    """
    cell = clean_mask(labels > 0, min_size=min_size)
    nucleus = remove_small_objects((labels == 2) & cell, min_size=max(1, min_size // 4))
    out = cell.astype(np.uint8)
    out[nucleus] = 2
    return out


@dataclass(frozen=True)
class Refinement:
    """The refiner's labels of one image and how sure it was of them.

    Attributes
    ----------
    labels : (H, W) uint8 ndarray
        Refined labels, cleaned (:func:`tidy_labels`).
    confidence : float
        Mean top class probability over the model-side pixels of the threshold or refined cell
        (each dilated by one pixel); 1.0 where neither has a pixel.
    """

    labels: np.ndarray
    confidence: float


#: the eight flips and quarter turns: (quarter turns, mirrored)
DIHEDRAL = tuple((turns, mirrored) for turns in range(4) for mirrored in (False, True))


def _predict(model: Any, inputs: np.ndarray, *, flips: bool) -> np.ndarray:
    """Softmax of a batch; with ``flips`` the mean over the :data:`DIHEDRAL` views, each turned back."""
    if not flips:
        return np.asarray(model.predict_on_batch(inputs))
    views = [np.rot90(inputs[:, :, ::-1] if mirrored else inputs, turns, axes=(1, 2))
             for turns, mirrored in DIHEDRAL]
    outputs = np.split(np.asarray(model.predict_on_batch(np.concatenate(views))), len(DIHEDRAL))
    back = []
    for (turns, mirrored), p in zip(DIHEDRAL, outputs):
        p = np.rot90(p, -turns, axes=(1, 2))
        back.append(p[:, :, ::-1] if mirrored else p)
    return np.mean(back, axis=0)


def _confidence(probabilities: np.ndarray, cell: np.ndarray) -> float:
    """Mean top probability inside ``cell`` (model side) dilated by one pixel; 1.0 for an empty cell."""
    cell = cv2.dilate(cell.view(np.uint8), np.ones((3, 3), dtype=np.uint8)) > 0
    return float(probabilities.max(axis=-1)[cell].mean()) if cell.any() else 1.0


def keep_outline(threshold: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """The threshold cell with the refined nucleus inside it: 2 where both say cell and the refiner
    says nucleus, 1 elsewhere in the threshold cell, 0 outside it.

    On a black surround (a cut-out) the threshold cell is the whole non-black part, and the
    refiner cannot tell at its resolution whether a cut-out is tight or keeps a thin ring of
    smear: one trained on cut-outs with margins of 0 to 20 pixels took a ring off the tight
    ones too (cell Dice 1.000 -> 0.96-0.98 on the validation parts of the expert-masked sets,
    docs/refiner.md). So there the outline stays the thresholding's.
    """
    return np.where(threshold > 0, np.where(refined == 2, 2, 1), 0).astype(np.uint8)


def refine_cells(
    model: Any,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    min_size: int = 64,
    batch_size: int = 16,
    flips: bool = False,
    black: Sequence[bool] = (),
) -> list[Refinement]:
    """Refined labels of several images from their threshold labels, with the refiner's confidence.

    Parameters
    ----------
    model : keras.Model
        A refiner: input ``(None, S, S, 5)``, output ``(None, S, S, 3)`` softmax.
    images : sequence of (H, W, 3) uint8 ndarray
        The RGB images (sizes may differ).
    labels : sequence of (H, W) integer or bool ndarray
        Their threshold labels (0 background, 1 cytoplasm, 2 nucleus; see
        :func:`~leukoscope.segmentation.labels.as_label_mask`); an empty mask is allowed, the
        network then works from the image alone.
    min_size : int
        Smallest cell object kept (see :func:`tidy_labels`).
    batch_size : int
        Images per forward pass.
    flips : bool
        Average the softmax over the eight flips and quarter turns of the input (test-time
        augmentation; eight times the work).
    black : sequence of bool
        Per image, whether it sits on a black surround (a cut-out); there only the nucleus is
        refined and the cell outline stays the threshold's (:func:`keep_outline`). Empty: none.

    Returns
    -------
    list of Refinement
        One per image, its labels the size of its image.

    Raises
    ------
    ValueError
        ``images`` and ``labels`` differ in length, or an image or its labels are malformed.
    """
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label masks; give one per image")
    labels = [as_label_mask(mask) for mask in labels]
    side = model_side(model)
    refined: list[Refinement] = []
    for start in range(0, len(images), batch_size):
        chunk = range(start, min(start + batch_size, len(images)))
        encoded = [encode_input(images[i], labels[i], side=side) for i in chunk]
        probabilities = _predict(model, np.stack([x for x, _ in encoded]), flips=flips)
        for i, p, (x, window) in zip(chunk, probabilities, encoded):
            cell = (x[..., 3] > 0.5) | (np.argmax(p, axis=-1) > 0)
            out = tidy_labels(decode_output(p, window, labels[i]), min_size=min_size)
            if i < len(black) and black[i]:
                out = keep_outline(labels[i], out)
            refined.append(Refinement(out, _confidence(p, cell)))
    return refined


def refine_labels(
    model: Any,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    min_size: int = 64,
    batch_size: int = 16,
    flips: bool = False,
) -> list[np.ndarray]:
    """The labels of :func:`refine_cells` (same parameters): one (H, W) uint8 mask per image."""
    return [r.labels for r in refine_cells(model, images, labels, min_size=min_size, batch_size=batch_size,
                                           flips=flips)]


#: largest share of the cell (threshold or refined, whichever is larger) whose class the refiner may change
MAX_CHANGE = 0.6
#: smallest share of the threshold nucleus area the refined nucleus must keep
MIN_NUCLEUS_KEPT = 0.5
#: lowest mean confidence (:attr:`Refinement.confidence`) at which the refined labels are used
MIN_CONFIDENCE = 0.7


def refiner_doubt(threshold: np.ndarray, refined: np.ndarray, confidence: float = 1.0) -> str:
    """Why the refined labels should not replace the threshold labels, or ``""``.

    The guard keeps the refiner from doing harm where it was not trained (e.g. a refiner trained
    on smear crops applied to black-background cut-outs, where it shrank the nucleus to blobs):

    - it changes the class of more than :data:`MAX_CHANGE` of the cell's pixels (cell = the union
      of the threshold and the refined cell);
    - it keeps less than :data:`MIN_NUCLEUS_KEPT` of a threshold nucleus' area;
    - it leaves no cell where the thresholding found one;
    - its mean confidence over the cell is under :data:`MIN_CONFIDENCE`.

    A cell found where the thresholding found none is allowed.

    Parameters
    ----------
    threshold, refined : (H, W) uint8 ndarray
        Labels (0 background, 1 cytoplasm, 2 nucleus).
    confidence : float
        The refiner's mean confidence (:attr:`Refinement.confidence`).

    Returns
    -------
    str
        The reason, empty when the refined labels may be used.
    """
    if not (threshold > 0).any():  # the refiner may find a cell the thresholding missed
        return ""
    if not (refined > 0).any():
        return "the refiner removed the whole cell"
    cell = (threshold > 0) | (refined > 0)
    changed = float(np.count_nonzero((threshold != refined) & cell)) / float(np.count_nonzero(cell))
    nucleus_before, nucleus_after = np.count_nonzero(threshold == 2), np.count_nonzero(refined == 2)
    if nucleus_before and nucleus_after < MIN_NUCLEUS_KEPT * nucleus_before:
        return f"the refiner kept {nucleus_after / nucleus_before:.0%} of the nucleus (< {MIN_NUCLEUS_KEPT:.0%})"
    if changed > MAX_CHANGE:
        return f"the refiner changed {changed:.0%} of the cell (> {MAX_CHANGE:.0%})"
    if confidence < MIN_CONFIDENCE:
        return f"the refiner's mean confidence is {confidence:.2f} (< {MIN_CONFIDENCE})"
    return ""


def skip_refiner(result: SegmentationResult) -> SegmentationResult:
    """``result`` with its threshold labels kept and ``refiner_skipped`` added to its flags."""
    return dataclasses.replace(result, qc_flag=join_flags([*split_flags(result.qc_flag), QCFlag.REFINER_SKIPPED]))


def refine_result(
    model: Any, image: np.ndarray, result: SegmentationResult, *, min_size: int = 64, flips: bool = False
) -> tuple[SegmentationResult, str]:
    """A threshold segmentation with its labels replaced by the refiner's, unless the guard doubts them.

    Parameters
    ----------
    model : keras.Model
        A refiner.
    image : (H, W, 3) uint8 ndarray
        The RGB image.
    result : SegmentationResult
        Its threshold segmentation (:func:`~leukoscope.segmentation.cell.segment_cell`).
    min_size : int
        Smallest cell object kept (see :func:`tidy_labels`).
    flips : bool
        Average over the eight flips and quarter turns (see :func:`refine_cells`).

    Returns
    -------
    result : SegmentationResult
        Same surround, thresholds and ``excluded_area``. With the refined labels, ``qc_flag``
        holds the threshold result's :data:`IMAGE_FLAGS` and the flags of the refined labels
        (:func:`~leukoscope.segmentation.qc.label_flags`), so a cell the thresholding missed
        but the refiner found is no longer flagged; or, when :func:`refiner_doubt` objects,
        the threshold labels with their flags and ``refiner_skipped``.
    reason : str
        Why the refiner was skipped, empty when its labels were used.
    """
    black = result.background == Background.BLACK
    (refined,) = refine_cells(model, [image], [result.labels], min_size=min_size, flips=flips, black=[black])
    labels = refined.labels
    reason = refiner_doubt(result.labels, labels, refined.confidence)
    if reason:
        return skip_refiner(result), reason
    kept = [flag for flag in split_flags(result.qc_flag) if flag in IMAGE_FLAGS]
    return dataclasses.replace(result, labels=labels, qc_flag=join_flags(kept + label_flags(image, labels))), ""


__all__ = [
    "DIHEDRAL", "MAX_CHANGE", "MIN_CONFIDENCE", "MIN_NUCLEUS_KEPT", "Refinement", "keep_outline", "model_side",
    "refine_cells", "refine_labels", "refine_result", "refiner_doubt", "skip_refiner", "tidy_labels",
]

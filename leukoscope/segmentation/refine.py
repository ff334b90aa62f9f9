"""Apply a trained refiner U-Net to images and their threshold labels.

The model (see :mod:`leukoscope.segmentation.unet`) is given; loading it from a file is the
pipeline's job (:func:`leukoscope.pipeline.refiner_model.load_refiner`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from leukoscope.segmentation.cell import SegmentationResult
from leukoscope.segmentation.choices import QCFlag
from leukoscope.segmentation.cleanup import clean_mask, remove_small_objects
from leukoscope.segmentation.unet_encoding import decode_output, encode_input


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


def refine_labels(
    model: Any,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    min_size: int = 64,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Refined labels of several images from their threshold labels.

    Parameters
    ----------
    model : keras.Model
        A refiner: input ``(None, S, S, 5)``, output ``(None, S, S, 3)`` softmax.
    images : sequence of (H, W, 3) uint8 ndarray
        The RGB images (sizes may differ).
    labels : sequence of (H, W) uint8 ndarray
        Their threshold labels (0 background, 1 cytoplasm, 2 nucleus); an empty mask is
        allowed, the network then works from the image alone.
    min_size : int
        Smallest cell object kept (see :func:`tidy_labels`).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    list of (H, W) uint8 ndarray
        One refined label mask per image, each the size of its image.

    Raises
    ------
    ValueError
        ``images`` and ``labels`` differ in length, or an image or its labels are malformed.
    """
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label masks; give one per image")
    side = model_side(model)
    refined: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        chunk = range(start, min(start + batch_size, len(images)))
        encoded = [encode_input(images[i], labels[i], side=side) for i in chunk]
        probabilities = np.asarray(model.predict_on_batch(np.stack([x for x, _ in encoded])))
        refined.extend(
            tidy_labels(decode_output(p, window, labels[i]), min_size=min_size)
            for i, p, (_, window) in zip(chunk, probabilities, encoded)
        )
    return refined


def refine_result(
    model: Any, image: np.ndarray, result: SegmentationResult, *, min_size: int = 64
) -> SegmentationResult:
    """A threshold segmentation with its labels replaced by the refiner's.

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

    Returns
    -------
    SegmentationResult
        Same surround and thresholds; refined labels; ``qc_flag`` recomputed from them
        (``no_cell``, ``no_nucleus`` or empty), so a cell the thresholding missed but the
        refiner found is no longer flagged.
    """
    (labels,) = refine_labels(model, [image], [result.labels], min_size=min_size)
    flag = "" if (labels == 2).any() else QCFlag.NO_NUCLEUS.value if labels.any() else QCFlag.NO_CELL.value
    return dataclasses.replace(result, labels=labels, qc_flag=flag)


__all__ = ["model_side", "refine_labels", "refine_result", "tidy_labels"]

"""Frozen-CNN embeddings: fit cell images to a backbone's input and pool its last feature map.

Pure array functions; reading files, caching and batching over a dataset live in
:mod:`leukoscope.pipeline.embeddings`. Keras is imported only inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

#: Names of the pooled outputs of :func:`build_extractor`.
POOLINGS = ("avg", "max")


def fit_to_square(image: np.ndarray, *, size: int, mask: np.ndarray | None = None,
                  mirror: bool = False) -> np.ndarray:
    """Zero the background (optionally), pad to a centred square with black, resize.

    Padding keeps the cell's aspect ratio (C-NMC and ALL-IDB2 images are square already).
    Shrinking uses area averaging, enlarging bilinear interpolation.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image.
    size : int
        Side of the output square.
    mask : (H, W) ndarray or None
        Segmentation labels (0 background, >0 cell); pixels where it is 0 become black.
        ``None`` keeps the raw image.
    mirror : bool
        Flip left-right (the horizontal flip of the training augmentation).

    Returns
    -------
    (size, size, 3) uint8 ndarray

    Raises
    ------
    ValueError
        ``image`` is not (H, W, 3), or ``mask`` does not have the image's height and width.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"mask is {mask.shape[0]}x{mask.shape[1]} but its image is "
                f"{image.shape[0]}x{image.shape[1]}"
            )
        image = np.where(mask[..., None] > 0, image, np.uint8(0)).astype(np.uint8)
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    if (height, width) != (side, side):
        image = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left,
                                   cv2.BORDER_CONSTANT, value=(0, 0, 0))
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interpolation)
    if mirror:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def prepare_batch(images: Sequence[np.ndarray], *, size: int,
                  preprocess: Callable[[np.ndarray], np.ndarray],
                  masks: Sequence[np.ndarray | None] | None = None, mirror: bool = False) -> np.ndarray:
    """Stack cell images into one network input batch.

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8 ndarray
        RGB cell images (sizes may differ).
    size : int
        Side of the network input.
    preprocess : callable
        The backbone's ``preprocess_input`` (e.g. :meth:`BackboneSpec.preprocess`), applied to
        the float32 batch with values in [0, 255].
    masks : sequence of (H, W) ndarray or None, optional
        Segmentation labels per image; pixels labelled 0 are set to black first.
    mirror : bool
        Flip every image left-right.

    Returns
    -------
    (N, size, size, 3) float32 ndarray
    """
    if masks is None:
        masks = [None] * len(images)
    if len(masks) != len(images):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    batch = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, (image, mask) in enumerate(zip(images, masks)):
        batch[i] = fit_to_square(image, size=size, mask=mask, mirror=mirror)
    return np.asarray(preprocess(batch), dtype=np.float32)


def build_extractor(backbone: keras.Model) -> keras.Model:
    """Wrap a backbone so it returns its last feature map pooled two ways.

    Parameters
    ----------
    backbone : keras.Model
        A no-top backbone (output ``(N, h, w, C)``), e.g. from :meth:`BackboneSpec.build`.

    Returns
    -------
    keras.Model
        Outputs ``{"avg": (N, C), "max": (N, C)}``: global average pooling (the embedding) and
        global max pooling (what the paper's head sees).
    """
    import keras

    features = backbone.output
    pooled = {
        "avg": keras.layers.GlobalAveragePooling2D(name="avg")(features),
        "max": keras.layers.GlobalMaxPooling2D(name="max")(features),
    }
    return keras.Model(backbone.input, pooled, name=f"{backbone.name}_pooled")


def embed_batch(extractor: keras.Model, batch: np.ndarray, *, pad_to: int = 0) -> dict[str, np.ndarray]:
    """Run one prepared batch through an extractor with Keras' compiled inference step.

    Parameters
    ----------
    extractor : keras.Model
        From :func:`build_extractor`.
    batch : (N, S, S, 3) float32 ndarray
        From :func:`prepare_batch`.
    pad_to : int
        Pad a shorter batch with zero images to this many rows (outputs for the padding are
        dropped), so that every call has the same shape and the compiled step is traced once.

    Returns
    -------
    dict of str to (N, C) float32 ndarray
        ``"avg"`` and ``"max"`` pooled features.
    """
    n = len(batch)
    if pad_to > n:
        batch = np.concatenate([batch, np.zeros((pad_to - n, *batch.shape[1:]), dtype=batch.dtype)])
    outputs = extractor.predict_on_batch(batch)
    return {name: np.asarray(outputs[name][:n], dtype=np.float32) for name in POOLINGS}


__all__ = ["POOLINGS", "build_extractor", "embed_batch", "fit_to_square", "prepare_batch"]

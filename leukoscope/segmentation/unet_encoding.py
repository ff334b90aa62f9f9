"""How the refiner U-Net sees a cell: its input window and channels, its target, its output, and augmentation.

Pure NumPy/OpenCV (no Keras): the refiner sees five channels at a fixed side (e.g. 128x128) of a
square window centred on the threshold cell and twice its size (:func:`refiner_window`): the RGB
image, each channel stretched to [0, 1] between its 1st and 99th percentiles
(:func:`stretch_colour`), and the threshold whole-cell and nucleus masks (0/1). The model
(:mod:`.unet`) outputs a softmax over three classes (0 background, 1 cytoplasm, 2 nucleus); the
pixels whose class it changed are resized back to the image with nearest neighbours, the others
keep their full-resolution threshold label (:func:`decode_output`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.segmentation.cell import BLACK_LEVEL

#: Input channels: R, G, B (each stretched to 0-1), threshold cell and nucleus masks (0/1).
INPUT_CHANNELS = 5
#: Output classes: 0 background, 1 cytoplasm, 2 nucleus.
N_CLASSES = 3
#: Side of the refiner window over the larger side of the threshold cell (see refiner_window).
WINDOW_SCALE = 2.0
#: Smallest refiner window, in pixels.
MIN_WINDOW = 32


@dataclass(frozen=True)
class Window:
    """A square part of an image, in pixels; it may reach beyond the image's edges."""

    top: int
    left: int
    side: int


def refiner_window(labels: np.ndarray, *, scale: float = WINDOW_SCALE) -> Window:
    """The square the refiner looks at: centred on the threshold cell, ``scale`` times its size.

    Cropping to the cell before resizing gives every cell about the same size in the model's
    input whatever the magnification and crop of the dataset (a lymphocyte in a 257-pixel
    ALL-IDB2 crop, a neutrophil filling a 120-pixel Zheng crop), and keeps small cells at
    full resolution.

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Threshold labels.
    scale : float
        Window side over the larger side of the cell's bounding box.

    Returns
    -------
    Window
        At least :data:`MIN_WINDOW` pixels wide; the square round the whole image when the
        threshold found no cell.
    """
    labels = np.asarray(labels)
    height, width = labels.shape[:2]
    left, top, box_width, box_height = cv2.boundingRect((labels > 0).view(np.uint8))
    if box_width == 0:
        left, top, box_width, box_height, scale = 0, 0, width, height, 1.0
    side = max(MIN_WINDOW, int(np.ceil(scale * max(box_width, box_height))))
    return Window(top=int(round(top + box_height / 2 - side / 2)), left=int(round(left + box_width / 2 - side / 2)),
                  side=side)


def crop_window(array: np.ndarray, window: Window, *, fill: np.ndarray | Sequence[float] | float = 0) -> np.ndarray:
    """The part of an image or mask inside a window; what lies beyond the image is ``fill``.

    Parameters
    ----------
    array : (H, W) or (H, W, C) ndarray
        Image or mask.
    window : Window
        The square.
    fill : float or sequence of float
        Value (or colour) of the pixels outside the image.

    Returns
    -------
    (side, side) or (side, side, C) ndarray
    """
    height, width = array.shape[:2]
    pads = (max(0, -window.top), max(0, window.top + window.side - height),
            max(0, -window.left), max(0, window.left + window.side - width))
    value = tuple(float(v) for v in np.atleast_1d(fill))
    padded = cv2.copyMakeBorder(np.ascontiguousarray(array), *pads, cv2.BORDER_CONSTANT, value=value)
    top, left = window.top + pads[0], window.left + pads[2]
    return padded[top : top + window.side, left : left + window.side]


def paste_window(labels: np.ndarray, window: Window, shape: tuple[int, int]) -> np.ndarray:
    """Labels of a window put back into an image of ``shape``; 0 outside the window.

    Parameters
    ----------
    labels : (side, side) or (side, side, C) uint8 ndarray
        Labels of the window (or a stack of masks), at its own resolution.
    window : Window
        Where they belong.
    shape : (H, W)
        Size of the image.

    Returns
    -------
    (H, W) or (H, W, C) uint8 ndarray
    """
    out = np.zeros(tuple(shape[:2]) + labels.shape[2:], dtype=np.uint8)
    top, left = max(0, window.top), max(0, window.left)
    bottom, right = min(shape[0], window.top + window.side), min(shape[1], window.left + window.side)
    if bottom > top and right > left:
        rows, columns = slice(top - window.top, bottom - window.top), slice(left - window.left, right - window.left)
        out[top:bottom, left:right] = labels[rows, columns]
    return out


def surround_colour(image: np.ndarray) -> np.ndarray:
    """Median colour of the image's outermost pixels (black for C-NMC, the smear otherwise)."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return np.median(border, axis=0)


def encode_input(image: np.ndarray, labels: np.ndarray, *, side: int) -> tuple[np.ndarray, Window]:
    """The model input of one image: RGB and the threshold masks in the refiner window.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB image.
    labels : (H, W) uint8 ndarray
        Threshold labels (0 background, 1 cytoplasm, 2 nucleus).
    side : int
        The model's input side.

    Returns
    -------
    input : (side, side, 5) float32 ndarray
        The window (:func:`refiner_window`; beyond the image filled with
        :func:`surround_colour`) resized to ``side``: RGB (area or linear resampling)
        stretched to [0, 1] by :func:`stretch_colour`, then the cell mask (labels > 0) and
        the nucleus mask (labels == 2) as 0/1 (:func:`resize_labels`).
    window : Window
        The window, for :func:`decode_output` and the training target.

    Raises
    ------
    ValueError
        ``image`` is not (H, W, 3) uint8, or ``labels`` has another size.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} and dtype {image.dtype}")
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"threshold label mask is {labels.shape[0]}x{labels.shape[1]} but the image is "
                         f"{image.shape[0]}x{image.shape[1]}")
    window = refiner_window(labels)
    rgb = crop_window(image, window, fill=surround_colour(image))
    rgb = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA if window.side > side else cv2.INTER_LINEAR)
    masks = np.stack([labels > 0, labels == 2], axis=-1).astype(np.uint8)
    masks = resize_labels(crop_window(masks, window), (side, side))
    return np.concatenate([stretch_colour(rgb), masks.astype(np.float32)], axis=-1), window


def stretch_colour(rgb: np.ndarray, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Each channel stretched linearly so its ``low`` percentile becomes 0 and its ``high`` one 1.

    The percentiles are those of the pixels that are not black (a C-NMC surround), so in every
    channel the darkest stain (the nucleus) lands near 0 and the brightest part of the smear
    near 1, whatever the stain's shade, the illumination and the camera. This contrast
    normalisation is what lets a refiner trained on some datasets read another: without it,
    a refiner trained on ALL-IDB2 and Zheng 1 called the darker red cells of Zheng 2 nucleus
    (``bench/refiner.py``, docs/refiner.md).

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
        Colour image.
    low, high : float
        Percentiles mapped to 0 and 1.

    Returns
    -------
    (H, W, 3) float32 ndarray
        Values in [0, 1]; black stays 0.
    """
    pixels = np.asarray(rgb).reshape(-1, 3)
    lit = pixels[pixels.max(axis=1) > BLACK_LEVEL]
    lo, hi = np.percentile(lit if len(lit) >= 16 else pixels, [low, high], axis=0)
    lo, scale = lo.astype(np.float32), np.maximum(hi - lo, 1.0).astype(np.float32)
    return np.clip((np.asarray(rgb, dtype=np.float32) - lo) / scale, 0.0, 1.0)


def encode_target(labels: np.ndarray, window: Window, *, side: int) -> np.ndarray:
    """Expert labels in the refiner window, resized to ``side`` (the training target).

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Expert labels.
    window : Window
        The window of the image's input (:func:`encode_input`).
    side : int
        The model's input side.

    Returns
    -------
    (side, side) uint8 ndarray
    """
    return resize_labels(crop_window(np.asarray(labels, dtype=np.uint8), window), (side, side))


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a label mask with nearest-neighbour sampling (no new label values appear).

    Pixel centres are aligned (OpenCV's ``INTER_NEAREST_EXACT``, as in PIL and scikit-image);
    OpenCV's plain ``INTER_NEAREST`` shifts masks by up to a pixel, which costs 1-3 Dice
    points on a 257 -> 128 -> 257 round trip.

    Parameters
    ----------
    labels : (h, w) or (h, w, c) uint8 ndarray
        Label mask, or a stack of masks.
    shape : (H, W)
        Target size.

    Returns
    -------
    (H, W) or (H, W, c) uint8 ndarray
    """
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    return cv2.resize(labels, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_NEAREST_EXACT)


def decode_output(probabilities: np.ndarray, window: Window, threshold: np.ndarray) -> np.ndarray:
    """Labels of the image from the model's softmax and the threshold labels it refined.

    The most likely class is taken at the model's side. Where it differs from the threshold
    label at that side (the refiner changed it), and one model-side pixel around, it is resized
    to the window with nearest neighbours (:func:`resize_labels`) and put in place; everywhere
    else the full-resolution threshold label stays, so the outlines the refiner agrees with
    keep their full-resolution detail rather than the model side's pixel steps.

    Parameters
    ----------
    probabilities : (side, side, 3) float ndarray
        Softmax output for one image.
    window : Window
        The window of its input (:func:`encode_input`).
    threshold : (H, W) uint8 ndarray
        The threshold labels the input was made of.

    Returns
    -------
    (H, W) uint8 ndarray
        Labels 0 background, 1 cytoplasm, 2 nucleus.
    """
    side = probabilities.shape[0]
    threshold = np.asarray(threshold, dtype=np.uint8)
    before = encode_target(threshold, window, side=side)
    after = np.argmax(probabilities, axis=-1).astype(np.uint8)
    changed = cv2.dilate((after != before).view(np.uint8), np.ones((3, 3), dtype=np.uint8))
    changed = np.dstack([after, changed]).astype(np.uint8)
    changed = paste_window(resize_labels(changed, (window.side, window.side)), window, threshold.shape)
    return np.where(changed[..., 1] > 0, changed[..., 0], threshold).astype(np.uint8)


def augment_batch(
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    zoom: float = 0.25,
    jitter: float = 0.15,
    corrupt: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, rotations, zoom, colour jitter and threshold-mask corruption.

    Geometry (the same for the five input channels and the labels of one sample): a random
    multiple of 90 degrees, a random horizontal flip, then a random rotation by any angle and a
    zoom by a factor in ``[1 - zoom, 1 + zoom]`` about the centre, with mirrored borders. The
    masks and labels are resampled with nearest neighbours, the RGB linearly.
    Colour (RGB only): a gain per channel in ``[1 - jitter, 1 + jitter]`` (stain hue), a
    contrast factor in the same range about the image mean, an offset in
    ``[-jitter / 2, jitter / 2]`` (brightness), clipped to [0, 1]; then a mixing of the
    channels (each gets up to ``jitter`` times each other channel, which shifts the hue) and a
    gamma per channel in ``[exp(-2 jitter), exp(2 jitter)]`` (the non-linear differences
    between stains and cameras that the percentile stretch leaves), clipped again.
    Threshold masks (so the network learns to correct them rather than copy them): with
    probability ``corrupt`` each of the two masks is dilated or eroded by 1 to 4 pixels, and
    with probability ``corrupt / 10`` both are emptied (a cell the thresholding missed).
    (Cut-outs on black are not made here: they are read and thresholded at full resolution,
    as at inference; see ``leukoscope.pipeline.refiner_data``.)

    Parameters
    ----------
    inputs : (B, S, S, 5) float32 ndarray
        Encoded inputs (:func:`encode_input`).
    labels : (B, S, S) uint8 ndarray
        Expert labels at the same side.
    rng : numpy.random.Generator
        Source of randomness.
    zoom : float
        Largest relative change of scale.
    jitter : float
        Strength of the colour jitter.
    corrupt : float
        Probability of disturbing each threshold mask.

    Returns
    -------
    inputs : (B, S, S, 5) float32 ndarray
    labels : (B, S, S) uint8 ndarray
        New arrays; the arguments are not modified.
    """
    inputs = np.array(inputs, dtype=np.float32, copy=True)
    labels = np.array(labels, dtype=np.uint8, copy=True)
    side = inputs.shape[1]
    centre = ((side - 1) / 2.0, (side - 1) / 2.0)
    for i in range(inputs.shape[0]):
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))
        rgb = np.rot90(inputs[i, ..., :3], k)
        discrete = np.rot90(np.dstack([inputs[i, ..., 3:] > 0.5, labels[i]]).astype(np.uint8), k)
        if flip:
            rgb, discrete = rgb[:, ::-1], discrete[:, ::-1]
        matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(0, 360)), float(rng.uniform(1 - zoom, 1 + zoom)))
        rgb = cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (side, side), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
        discrete = cv2.warpAffine(np.ascontiguousarray(discrete), matrix, (side, side), flags=cv2.INTER_NEAREST,
                                  borderMode=cv2.BORDER_REFLECT_101)
        gain = rng.uniform(1 - jitter, 1 + jitter, size=3).astype(np.float32)
        contrast = np.float32(rng.uniform(1 - jitter, 1 + jitter))
        offset = np.float32(rng.uniform(-jitter / 2, jitter / 2))
        identity = np.eye(3, dtype=np.float32)
        mixing = identity + rng.uniform(-jitter, jitter, size=(3, 3)).astype(np.float32) * (1 - identity)
        gamma = np.exp(rng.uniform(-2 * jitter, 2 * jitter, size=3)).astype(np.float32)
        mean = rgb.mean(axis=(0, 1))
        rgb = np.clip(((rgb - mean) * contrast + mean) * gain + offset, 0.0, 1.0)
        rgb = np.clip(rgb @ mixing.T, 0.0, 1.0) ** gamma
        inputs[i, ..., :3] = rgb
        inputs[i, ..., 3:] = _corrupt_masks(discrete[..., :2], rng=rng, probability=corrupt)
        labels[i] = discrete[..., 2]
    return inputs, labels


def _corrupt_masks(masks: np.ndarray, *, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Randomly dilate, erode or empty the (S, S, 2) uint8 threshold masks of one sample."""
    if rng.random() < probability / 10:
        return np.zeros_like(masks)
    masks = masks.copy()
    for channel in range(masks.shape[-1]):
        if rng.random() < probability:
            radius = int(rng.integers(1, 5))
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            operation = cv2.dilate if rng.random() < 0.5 else cv2.erode
            masks[..., channel] = operation(np.ascontiguousarray(masks[..., channel]), kernel)
    masks[..., 1] &= masks[..., 0]  # the nucleus stays inside the cell
    return masks


__all__ = [
    "INPUT_CHANNELS", "MIN_WINDOW", "N_CLASSES", "WINDOW_SCALE", "Window", "augment_batch", "crop_window",
    "decode_output", "encode_input", "encode_target", "paste_window", "refiner_window", "resize_labels",
    "stretch_colour", "surround_colour",
]

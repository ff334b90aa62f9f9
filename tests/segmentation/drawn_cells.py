"""Hand-drawn cells with known masks: a C-NMC-style cell on black and a smear crop."""

from __future__ import annotations

import cv2
import numpy as np

NUCLEUS_RGB = (90, 45, 150)
CYTOPLASM_RGB = (180, 165, 215)
SMEAR_RGB = (225, 215, 200)
RED_CELL_RGB = (215, 140, 150)


def _paint(labels: np.ndarray, colours: dict[int, tuple[int, int, int]], background, seed: int) -> np.ndarray:
    image = np.empty(labels.shape + (3,), dtype=np.int16)
    image[:] = background
    for value, colour in colours.items():
        image[labels == value] = colour
    noise = np.random.default_rng(seed).integers(-6, 7, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def black_cell(size: int = 96, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A round cell with an off-centre nucleus on pure black, and its labels (0/1/2)."""
    labels = np.zeros((size, size), np.uint8)
    centre = (size // 2, size // 2)
    cv2.circle(labels, centre, size // 3, 1, -1)
    cv2.circle(labels, (centre[0] + size // 16, centre[1]), size // 5, 2, -1)
    image = _paint(labels, {1: CYTOPLASM_RGB, 2: NUCLEUS_RGB}, (0, 0, 0), seed)
    image[labels == 0] = 0
    return image, labels


def smear_cell(size: int = 96, *, seed: int = 0, red_cell: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A white cell on a stained smear, optionally with a red cell touching it; and its labels.

    The red cell is background (0) in the labels, as in the expert masks.
    """
    labels = np.zeros((size, size), np.uint8)
    centre = (size // 2, size // 2)
    cv2.circle(labels, centre, size // 4, 1, -1)
    cv2.circle(labels, centre, size // 7, 2, -1)
    paint = labels.copy()
    if red_cell:
        cv2.circle(paint, (centre[0] + size // 4 + size // 7 - 2, centre[1]), size // 7, 3, -1)
        paint[labels > 0] = labels[labels > 0]
    image = _paint(paint, {1: CYTOPLASM_RGB, 2: NUCLEUS_RGB, 3: RED_CELL_RGB}, SMEAR_RGB, seed)
    return image, labels


def on_black(paint: np.ndarray, colours: dict[int, tuple[int, int, int]], *, seed: int = 0) -> np.ndarray:
    """An image of painted labels (0 stays pure black), with a little noise on the rest."""
    image = _paint(paint, colours, (0, 0, 0), seed)
    image[paint == 0] = 0
    return image


def discs(size: int, *circles: tuple[int, int, int, int]) -> np.ndarray:
    """A label image of filled circles ``(row, col, radius, value)`` drawn in order."""
    labels = np.zeros((size, size), np.uint8)
    for row, col, radius, value in circles:
        cv2.circle(labels, (col, row), radius, value, -1)
    return labels


DEBRIS_RGB = (200, 185, 110)  # yellowish fragment
SCENE_COLOURS = {1: CYTOPLASM_RGB, 2: NUCLEUS_RGB, 4: SMEAR_RGB, 5: RED_CELL_RGB, 6: DEBRIS_RGB}
#: the main cell of every scene: cytoplasm radius 36 round a nucleus of radius 18, at the centre
MAIN_CELL = ((80, 80, 36, 1), (80, 84, 18, 2))


def scene(*circles: tuple[int, int, int, int], bars: tuple[tuple[int, int, int, int, int], ...] = ()) -> np.ndarray:
    """A 160x160 label image of circles ``(row, col, radius, value)`` and, where still empty,
    bars ``(row0, col0, row1, col1, value)``; values as in :data:`SCENE_COLOURS`."""
    labels = discs(160, *circles)
    for row0, col0, row1, col1, value in bars:
        window = labels[row0:row1, col0:col1]
        window[window == 0] = value
    return labels

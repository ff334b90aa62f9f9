"""Hand-drawn smear fields: pink red cells, small violet platelets, white cells with a dark-violet nucleus.

The colours are medians of BCCD pixels (../shared/data/bccd): the background outside every
annotated box, the ring inside red-cell boxes, the centres of platelet boxes, and a
white cell's nucleus and the cytoplasm ring round it. Sizes are in pixels; the tests pass
the red-cell diameter they drew (``RED_CELL``) to the detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RED_CELL = 40  # diameter of a drawn red cell, pixels
SMEAR_RGB = (193, 194, 189)
RED_CELL_RGB = (185, 168, 171)
PLATELET_RGB = (155, 139, 205)
CYTOPLASM_RGB = (188, 172, 197)
NUCLEUS_RGB = (145, 110, 212)


@dataclass(frozen=True)
class WhiteCell:
    """A round white cell: centre, radius, and its nucleus as discs ``(dx, dy, r)`` from the centre."""

    x: int
    y: int
    radius: int
    nuclei: tuple[tuple[int, int, int], ...] = ((0, 0, 24),)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, x1/y1 exclusive, of the drawn disc."""
        return self.x - self.radius, self.y - self.radius, self.x + self.radius + 1, self.y + self.radius + 1


def draw_field(
    shape: tuple[int, int] = (240, 320),
    *,
    white: tuple[WhiteCell, ...] = (),
    red: tuple[tuple[int, int], ...] = (),
    platelets: tuple[tuple[int, int], ...] = (),
    seed: int = 0,
) -> np.ndarray:
    """An (H, W, 3) uint8 field: red cells (diameter RED_CELL) at ``red`` centres ``(x, y)``,
    platelets (diameter 8) at ``platelets``, then the white cells on top; noise of +-6."""
    image = np.empty(shape + (3,), np.int16)
    image[:] = SMEAR_RGB
    for x, y in red:
        cv2.circle(image, (x, y), RED_CELL // 2, RED_CELL_RGB, -1)
    for x, y in platelets:
        cv2.circle(image, (x, y), 4, PLATELET_RGB, -1)
    for cell in white:
        cv2.circle(image, (cell.x, cell.y), cell.radius, CYTOPLASM_RGB, -1)
        for dx, dy, r in cell.nuclei:
            cv2.circle(image, (cell.x + dx, cell.y + dy), r, NUCLEUS_RGB, -1)
    noise = np.random.default_rng(seed).integers(-6, 7, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


#: red cells scattered over a 240x320 field, clear of the centre and of the right half's middle
SCATTERED_RED = ((30, 30), (80, 25), (290, 30), (25, 200), (300, 210), (150, 215), (230, 120))

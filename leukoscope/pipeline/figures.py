"""Matplotlib figures rendered to arrays, so that every PNG goes through the atomic writer."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a matplotlib figure.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        The figure's pixels, RGB.
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()

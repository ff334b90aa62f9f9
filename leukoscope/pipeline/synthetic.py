"""Synthetic single-cell images that look and separate like C-NMC cells (pure functions).

Each cell is drawn on a black background, as C-NMC cells are: an irregular round cell body
(cytoplasm) with a nucleus inside it. The two classes differ the way real ones do, with
overlapping distributions so that the task is learnable but not trivial:

=================  ==============================  ==================================
property           blast (ALL)                     normal (HEM)
=================  ==============================  ==================================
cell radius        larger (about 105 px)           smaller (about 85 px)
nucleus / cell     higher (about 0.72 area ratio)  lower (about 0.55)
nucleus outline    irregular, slightly indented    round
chromatin          fine, paler, low contrast       coarse clumps, dense (darker)
nucleoli           1-3 visible pale spots          usually none
=================  ==============================  ==================================

A latent "blastness" score per cell drives all of these with noise, and every subject has
its own stain (hue, saturation, brightness), illumination gradient and noise level, so a
classifier must generalise across subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 450


@dataclass(frozen=True)
class Stain:
    """Per-subject staining and acquisition parameters."""

    nucleus_rgb: tuple[float, float, float]
    cytoplasm_rgb: tuple[float, float, float]
    brightness: float
    gradient: float
    noise: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Stain:
        """Draw a subject's stain: purple nuclei and blue-lilac cytoplasm with variation."""
        shift = rng.normal(0.0, 12.0, size=3)
        nucleus = np.array([95.0, 55.0, 150.0]) + shift + rng.normal(0.0, 6.0, size=3)
        cytoplasm = np.array([175.0, 160.0, 215.0]) + shift * 0.7 + rng.normal(0.0, 6.0, size=3)
        return cls(
            nucleus_rgb=tuple(np.clip(nucleus, 20, 235)),
            cytoplasm_rgb=tuple(np.clip(cytoplasm, 60, 250)),
            brightness=float(rng.uniform(0.85, 1.12)),
            gradient=float(rng.uniform(0.0, 0.18)),
            noise=float(rng.uniform(3.0, 9.0)),
        )


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian-filtered white noise of the given correlation length."""
    field = rng.standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _blob(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float,
    radius: float, irregularity: float, elongation: float,
) -> np.ndarray:
    """Boolean mask of a star-convex blob with a smooth random radial profile."""
    angle = np.arctan2(yy - cy, xx - cx)
    harmonics = np.zeros_like(angle)
    for k in range(2, 7):
        harmonics += rng.normal(0.0, irregularity / k) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    theta = rng.uniform(0, np.pi)
    stretch = 1.0 + elongation * np.cos(2 * (angle - theta))
    r = np.hypot(yy - cy, xx - cx)
    return r <= radius * stretch * (1.0 + harmonics)


def synthesize_cell(
    rng: np.random.Generator, *, blast: bool, stain: Stain, size: int = SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one cell.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (seed it for reproducible cells).
    blast : bool
        True for an ALL lymphoblast, False for a normal (HEM) cell.
    stain : Stain
        The subject's staining and acquisition parameters.
    size : int
        Side of the square image.

    Returns
    -------
    image : (size, size, 3) uint8 ndarray
        RGB cell on a black background.
    labels : (size, size) uint8 ndarray
        Ground truth: 0 background, 1 cytoplasm, 2 nucleus.
    """
    # Latent blastness: overlapping class distributions, so a few cells look like the other class.
    z = rng.normal(1.0 if blast else -1.0, 0.9)
    scale = size / SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2 + rng.normal(0, 8 * scale, size=2)

    cell_r = (95.0 + 9.0 * z + rng.normal(0, 7.0)) * scale
    nc_ratio = float(np.clip(0.63 + 0.07 * z + rng.normal(0, 0.05), 0.35, 0.9))
    cell = _blob(rng, yy, xx, cy, cx, cell_r, irregularity=0.05, elongation=rng.uniform(0, 0.1))
    ny, nx = cy + rng.normal(0, 0.08 * cell_r), cx + rng.normal(0, 0.08 * cell_r)
    nucleus_r = cell_r * np.sqrt(nc_ratio)
    nucleus = _blob(
        rng, yy, xx, ny, nx, nucleus_r,
        irregularity=float(np.clip(0.05 + 0.03 * z, 0.01, 0.14)), elongation=rng.uniform(0, 0.12),
    )
    nucleus &= cell
    cell |= nucleus

    # Chromatin: fine, pale and even in blasts; coarse, dense and clumped in normal cells.
    fine = _smooth_noise(rng, (size, size), sigma=1.2 * scale)
    coarse = _smooth_noise(rng, (size, size), sigma=4.5 * scale)
    w = float(np.clip(0.5 + 0.25 * z, 0.0, 1.0))  # weight of the fine texture
    chromatin = w * fine * 0.10 + (1 - w) * coarse * 0.22
    density = 1.0 - 0.12 * np.tanh(-z)  # normal cells: darker nucleus
    shade = np.where(nucleus, 1.0 / density + chromatin, 1.0 + 0.05 * fine)

    # Nucleoli: pale round spots, mostly in blasts.
    n_nucleoli = rng.poisson(max(0.15, 1.0 + 0.9 * z))
    nucleus_idx = np.flatnonzero(nucleus.ravel())
    for _ in range(min(n_nucleoli, 4)):
        if nucleus_idx.size == 0:
            break
        centre = nucleus_idx[rng.integers(nucleus_idx.size)]
        py, px = divmod(int(centre), size)
        r = rng.uniform(5, 10) * scale
        spot = ((yy - py) ** 2 + (xx - px) ** 2) <= r**2
        shade = np.where(spot & nucleus, shade * 1.25, shade)

    nucleus_rgb = np.asarray(stain.nucleus_rgb, dtype=np.float32)
    cytoplasm_rgb = np.asarray(stain.cytoplasm_rgb, dtype=np.float32)
    base = np.where(nucleus[..., None], nucleus_rgb, cytoplasm_rgb)
    illumination = 1.0 + stain.gradient * ((xx - size / 2) / size)
    image = base * (shade * illumination * stain.brightness)[..., None]
    image += rng.normal(0.0, stain.noise, size=image.shape).astype(np.float32)
    image[~cell] = 0.0
    labels = np.where(nucleus, 2, np.where(cell, 1, 0)).astype(np.uint8)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels

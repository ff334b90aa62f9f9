"""Is an image like the images a model was trained on? Colour and size signatures, nearest neighbours.

A refiner trained on one source of smears can do harm on another (another stain, another
magnification): trained on ALL-IDB2 and Zheng 2, it takes Zheng 1's cell Dice from 0.90 to 0.84
(docs/refiner.md). Before its labels are used, the image is compared with the training images
through a small signature (:func:`image_signature`): the median CIELAB colour of the threshold
nucleus and of the threshold cell, and the log of the cell's equivalent diameter in pixels.
An image is *unlike* the training images when the distance from its signature to the
``neighbours``-th nearest training signature, each feature scaled by the training images'
standard deviation, is above :attr:`TrainingDomain.limit`: ``factor`` times the ``quantile`` of
the same distance among the training images themselves (each left out of its own neighbours).
Nearest neighbours rather than one mean and covariance, because a model trained on several
sources has several clusters, and an image between them is like none.

References
----------
Sun, Y., Ming, Y., Zhu, X. & Li, Y. (2022). Out-of-distribution detection with deep nearest
neighbors. ICML 2022, PMLR 162:20827-20840. arXiv:2204.06507
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

#: the features of a signature, in order
SIGNATURE_NAMES = ("nucleus_l", "nucleus_a", "nucleus_b", "cell_l", "cell_a", "cell_b", "cell_log_diameter")
#: defaults of :meth:`TrainingDomain.fit`, set on the validation parts of ALL-IDB2, Zheng 1 and
#: Zheng 2 (docs/refiner.md, "The guard")
NEIGHBOURS, QUANTILE, FACTOR = 5, 0.95, 1.5


def image_signature(image: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Colour and size signature of one segmented cell image.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus (the thresholding's labels).

    Returns
    -------
    (7,) float64 ndarray or None
        :data:`SIGNATURE_NAMES`: median L*, a*, b* of the nucleus pixels and of the cell
        pixels (OpenCV's 8-bit CIELAB: L* scaled to 0-255, a* and b* offset by 128), and the
        natural log of the cell's equivalent diameter ``sqrt(4 * area / pi)``; ``None`` when
        there is no cell or no nucleus.

    Examples
    --------
    >>> image = np.zeros((4, 4, 3), np.uint8); image[1:3, 1:3] = 255
    >>> labels = np.zeros((4, 4), np.uint8); labels[1:3, 1:3] = 1; labels[1, 1] = 2
    >>> image_signature(image, labels)[[0, 3]]
    array([255., 255.])
    """
    nucleus, cell = labels == 2, labels > 0
    if not nucleus.any():
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)
    medians = [np.median(lab[region], axis=0) for region in (nucleus, cell)]
    diameter = np.sqrt(4.0 * np.count_nonzero(cell) / np.pi)
    return np.concatenate([*medians, [np.log(diameter)]]).astype(np.float64)


def _kth_distance(points: np.ndarray, reference: np.ndarray, k: int, *, leave_out_self: bool) -> np.ndarray:
    """Distance from each point (m, d) to its ``k``-th nearest reference point (n, d); with
    ``leave_out_self`` the points are the reference and each is left out of its own neighbours.
    Computed 256 points at a time (memory 256 x n)."""
    k = min(k, len(reference) - int(leave_out_self))
    out = np.empty(len(points))
    for start in range(0, len(points), 256):
        block = points[start:start + 256]
        distances = np.sqrt(((block[:, None, :] - reference[None, :, :]) ** 2).sum(axis=-1))
        if leave_out_self:
            distances[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        out[start:start + len(block)] = np.partition(distances, k - 1, axis=1)[:, k - 1]
    return out


@dataclass(frozen=True)
class TrainingDomain:
    """The signatures of a model's training images and the distance beyond which an image is unlike them.

    Attributes
    ----------
    signatures : (n, 7) float64 ndarray
        One :func:`image_signature` per training image (and per training cut-out).
    scale : (7,) float64 ndarray
        Their standard deviation per feature (at least ``1e-6``).
    neighbours : int
        Which nearest training signature the distance is measured to.
    limit : float
        Largest distance of an image like the training images.
    """

    signatures: np.ndarray
    scale: np.ndarray
    neighbours: int
    limit: float

    @classmethod
    def fit(cls, signatures: np.ndarray, *, neighbours: int = NEIGHBOURS, quantile: float = QUANTILE,
            factor: float = FACTOR) -> TrainingDomain:
        """The domain of ``signatures`` (n, 7): limit = ``factor`` x the ``quantile`` of their
        leave-one-out distances to their ``neighbours``-th nearest neighbour.

        Raises
        ------
        ValueError
            Fewer than ``neighbours + 1`` signatures, or a signature of another length.
        """
        signatures = np.asarray(signatures, dtype=np.float64)
        if signatures.ndim != 2 or signatures.shape[1] != len(SIGNATURE_NAMES):
            raise ValueError(f"signatures must be (n, {len(SIGNATURE_NAMES)}), got shape {signatures.shape}")
        if len(signatures) <= neighbours:
            raise ValueError(f"a training domain needs more than {neighbours} signatures, got {len(signatures)}")
        scale = np.maximum(signatures.std(axis=0), 1e-6)
        scaled = signatures / scale
        own = _kth_distance(scaled, scaled, neighbours, leave_out_self=True)
        return cls(signatures, scale, neighbours, float(factor * np.quantile(own, quantile)))

    def distance(self, signature: np.ndarray) -> float:
        """Scaled distance from one signature (7,) to its ``neighbours``-th nearest training signature."""
        point = np.asarray(signature, dtype=np.float64)[None, :] / self.scale
        return float(_kth_distance(point, self.signatures / self.scale, self.neighbours, leave_out_self=False)[0])

    def unlike(self, signature: np.ndarray | None) -> str:
        """Why an image with this signature is unlike the training images, or ``""``
        (also for ``None``: an image without a threshold nucleus is not judged)."""
        if signature is None:
            return ""
        distance = self.distance(signature)
        if distance <= self.limit:
            return ""
        return (f"the image's colours and cell size are unlike the refiner's training images "
                f"(distance {distance:.1f} > {self.limit:.1f})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (signatures rounded to 4 decimals), read back by :meth:`from_dict`."""
        return {"features": list(SIGNATURE_NAMES), "neighbours": self.neighbours, "limit": round(self.limit, 6),
                "scale": [round(float(v), 6) for v in self.scale],
                "signatures": np.round(self.signatures, 4).tolist()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TrainingDomain:
        """The domain :meth:`to_dict` wrote.

        Raises
        ------
        ValueError
            Other features than :data:`SIGNATURE_NAMES`, or arrays of the wrong shape.
        """
        if list(record.get("features", [])) != list(SIGNATURE_NAMES):
            raise ValueError(f"a training domain of features {record.get('features')}; this version reads "
                             f"{list(SIGNATURE_NAMES)}")
        signatures = np.asarray(record["signatures"], dtype=np.float64)
        scale = np.asarray(record["scale"], dtype=np.float64)
        if signatures.ndim != 2 or signatures.shape[1:] != scale.shape or scale.shape != (len(SIGNATURE_NAMES),):
            raise ValueError(f"training domain arrays of shapes {signatures.shape} and {scale.shape}")
        return cls(signatures, scale, int(record["neighbours"]), float(record["limit"]))


__all__ = ["FACTOR", "NEIGHBOURS", "QUANTILE", "SIGNATURE_NAMES", "TrainingDomain", "image_signature"]

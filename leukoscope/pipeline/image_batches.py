"""Cell images streamed from disk as network batches (bounded memory), for Keras fit and predict.

Imported lazily by the heads stage (it imports Keras).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from leukoscope.features.embeddings import prepare_batch
from leukoscope.pipeline.imageio import read_image, read_label_mask


class ImageBatches(keras.utils.PyDataset):
    """Batches of prepared cell images read from their files when asked for.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    size : int
        Side of the network input.
    preprocess : callable
        The backbone's ``preprocess_input``.
    mask_paths : sequence of str or None
        Segmentation label masks per image (background zeroed), or ``None`` for raw images.
    targets : (N, 2) float32 ndarray or None
        One-hot targets; ``None`` yields images only (prediction).
    sample_weight : (N,) float32 ndarray or None
    batch_size : int
    shuffle : bool
        Draw a new order after every epoch (training).
    seed : int
        Seed of the order.
    workers : int
        Threads reading batches ahead (Keras ``PyDataset`` workers).

    Raises
    ------
    ImageReadError, MaskReadError
        When a batch is read: a file became unusable after the samples were checked.
    """

    def __init__(self, paths: Sequence[str], *, size: int, preprocess: Callable[[np.ndarray], np.ndarray],
                 mask_paths: Sequence[str] | None = None, targets: np.ndarray | None = None,
                 sample_weight: np.ndarray | None = None, batch_size: int = 40, shuffle: bool = False,
                 seed: int = 0, workers: int = 2) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=2)
        self.paths = list(paths)
        self.mask_paths = None if mask_paths is None else list(mask_paths)
        self.size, self.preprocess = size, preprocess
        self.targets, self.sample_weight = targets, sample_weight
        self.batch_size, self.shuffle = batch_size, shuffle
        self._rng = np.random.default_rng(seed)
        self.order = self._rng.permutation(len(self.paths)) if shuffle else np.arange(len(self.paths))

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch_size)

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, ...]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = [read_image(self.paths[i]) for i in rows]
        masks = None
        if self.mask_paths is not None:
            masks = [read_label_mask(self.mask_paths[i], image_shape=image.shape[:2],
                                     image_name=Path(self.paths[i]).name) for i, image in zip(rows, images)]
        x = prepare_batch(images, size=self.size, preprocess=self.preprocess, masks=masks)
        if self.targets is None:
            return x
        if self.sample_weight is None:
            return x, self.targets[rows]
        return x, self.targets[rows], self.sample_weight[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self._rng.permutation(len(self.paths))

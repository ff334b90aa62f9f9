"""The refiner U-Net's training loop: augmented batches, one validation pass per epoch, early stopping.

Arrays in, a trained model and its per-epoch log out; reading pairs and writing files is the
``train-refiner`` command's (:mod:`leukoscope.pipeline.train_refiner`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

#: one row per epoch of :func:`fit_unet`
LOG_COLUMNS = ["epoch", "loss", "val_loss", "val_dice_cell", "val_dice_nucleus", "learning_rate", "seconds"]


def _batches(inputs: np.ndarray, targets: np.ndarray, *, batch_size: int, seed: int,
             alternatives: tuple[np.ndarray, np.ndarray] | None = None, share: float = 0.0) -> Any:
    """A Keras dataset of augmented batches; epoch ``e`` batch ``i`` is the same on every run.

    With ``alternatives`` (another view of every sample, e.g. its cut-out on black), each sample
    of a batch is drawn from them with probability ``share``.
    """
    import keras

    from leukoscope.segmentation.unet_encoding import augment_batch

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(inputs))

        def __len__(self) -> int:
            return len(inputs) // batch_size

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            rng = np.random.default_rng([seed, self.epoch, index])
            x, y = inputs[rows], targets[rows]
            if alternatives is not None:
                other = rng.random(len(rows)) < share
                x = np.where(other[:, None, None, None], alternatives[0][rows], x)
                y = np.where(other[:, None, None], alternatives[1][rows], y)
            return augment_batch(x, y, rng=rng)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(inputs))

    return AugmentedBatches()


def _mean_dice(predicted: np.ndarray, expected: np.ndarray, first_class: int) -> float:
    from leukoscope.segmentation.metrics import dice

    return float(np.nanmean([dice(p >= first_class, e >= first_class) for p, e in zip(predicted, expected)]))


def _epoch_logger(inputs: np.ndarray, targets: np.ndarray, rows: list[dict[str, float]]) -> Any:
    """Callback validating once per epoch: ``val_loss`` for the other callbacks and one log row.

    One forward pass over the validation images gives both the validation loss (put in the
    epoch's logs, which Keras hands on to early stopping and the learning-rate schedule, so it
    must come first in the callback list) and the validation Dice at the model side.
    """
    import keras

    from leukoscope.segmentation.unet import DiceCrossEntropy

    loss = DiceCrossEntropy()

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            probabilities = self.model.predict(inputs, batch_size=32, verbose=0)
            logs["val_loss"] = float(keras.ops.convert_to_numpy(loss(targets, probabilities)))
            predicted = np.argmax(probabilities, axis=-1)
            rows.append({
                "epoch": epoch + 1, "loss": float(logs["loss"]), "val_loss": logs["val_loss"],
                "val_dice_cell": _mean_dice(predicted, targets, 1),
                "val_dice_nucleus": _mean_dice(predicted, targets, 2),
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": time.perf_counter() - self.started,
            })

    return EpochLog()


def fit_unet(model: Any, inputs: np.ndarray, targets: np.ndarray, val_inputs: np.ndarray, val_targets: np.ndarray,
             *, epochs: int, patience: int, batch_size: int, learning_rate: float, seed: int,
             alternatives: tuple[np.ndarray, np.ndarray] | None = None, share: float = 0.0,
             quiet: bool = False) -> tuple[pd.DataFrame, int]:
    """Train ``model`` (from :func:`~leukoscope.segmentation.unet.build_unet`) in place.

    Adam with the Dice + cross-entropy loss, its learning rate falling from ``learning_rate``
    to a sixteenth of it along a cosine over the ``epochs`` (Loshchilov & Hutter 2017,
    arXiv:1608.03983, without restarts), and early stopping on the validation loss (the best
    epoch's weights are restored).

    Parameters
    ----------
    model : keras.Model
    inputs, targets : (N, side, side, 5) float32 and (N, side, side) uint8 ndarrays
        Training part (:func:`~leukoscope.segmentation.unet_encoding.encode_input`, ``encode_target``).
    val_inputs, val_targets : ndarrays
        Validation part, same layout.
    epochs, patience, batch_size : int
    learning_rate : float
    seed : int
        Seed of the batch order and the augmentation.
    alternatives : (inputs, targets), optional
        Another view of each training sample (its cut-out on black), same layout.
    share : float
        Probability that a sample is taken from ``alternatives`` in an epoch.
    quiet : bool
        No per-epoch output.

    Returns
    -------
    log : DataFrame
        :data:`LOG_COLUMNS`, one row per epoch run.
    best_epoch : int
        The epoch (from 1) whose weights the model holds.
    """
    import keras

    from leukoscope.segmentation.unet import DiceCrossEntropy

    # XLA: 1.7x faster training steps on a CPU with TensorFlow; JAX compiles anyway, and
    # torch.compile (what jit_compile means on PyTorch) is left to Keras' own choice.
    batches = _batches(inputs, targets, batch_size=batch_size, seed=seed, alternatives=alternatives, share=share)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, epochs * len(batches)),
                                                      alpha=1 / 16)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=DiceCrossEntropy(),
                  jit_compile=True if keras.backend.backend() in ("tensorflow", "jax") else "auto")
    rows: list[dict[str, float]] = []
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    model.fit(batches, epochs=epochs, callbacks=[_epoch_logger(val_inputs, val_targets, rows), stopper],
              verbose=0 if quiet else 2)
    return pd.DataFrame(rows, columns=LOG_COLUMNS), int(stopper.best_epoch) + 1


__all__ = ["LOG_COLUMNS", "fit_unet"]

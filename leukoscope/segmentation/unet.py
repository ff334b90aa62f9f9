"""A compact U-Net that corrects threshold masks: the model and its loss (encoding: :mod:`.unet_encoding`).

The refiner sees five channels at a fixed side (e.g. 128x128) of a square window centred on the
threshold cell and twice its size (:func:`refiner_window`): the RGB image, each channel
stretched to [0, 1] between its 1st and 99th percentiles (:func:`stretch_colour`), and the
threshold whole-cell and nucleus masks (0/1). It outputs a softmax over three classes
(0 background, 1 cytoplasm, 2 nucleus); the pixels whose class it changed are resized back to
the image with nearest neighbours, the others keep their full-resolution threshold label
(:func:`decode_output`). Only ``keras.layers`` and ``keras.ops`` are used, so the
model runs on any Keras 3 backend.

The loss adds pixel-wise cross-entropy to a soft Dice loss of the two regions that are scored,
the whole cell (cytoplasm + nucleus) and the nucleus.

References
----------
Ronneberger O, Fischer P, Brox T. U-Net: convolutional networks for biomedical image
segmentation. MICCAI 2015, LNCS 9351:234-241. doi:10.1007/978-3-319-24574-4_28

Milletari F, Navab N, Ahmadi SA. V-Net: fully convolutional neural networks for volumetric
medical image segmentation. 3DV 2016:565-571. doi:10.1109/3DV.2016.79 (soft Dice loss)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from leukoscope.segmentation.unet_encoding import INPUT_CHANNELS, N_CLASSES

#: Name every refiner model carries; a ``.keras`` file whose model has another name is no refiner.
#: The suffix is the version of the input encoding (v2: colour stretched by :func:`stretch_colour`).
MODEL_NAME = "leukoscope_refiner_unet_v2"


def build_unet(
    *, side: int = 128, depth: int = 4, width: int = 8, prior_strength: float = 3.0, seed: int = 0
) -> keras.Model:
    """Build an untrained refiner U-Net.

    Each level has two 3x3 convolutions with batch normalisation and ReLU; the encoder halves
    the side with 2x2 max pooling and doubles the number of filters, the decoder upsamples,
    concatenates the skip connection and halves the filters again.

    The network learns a correction of the thresholding: its last 1x1 convolution starts at
    zero and is added to the logits of a trainable 1x1 convolution of the input that starts as
    the threshold labels (``prior_strength`` on the threshold's class, 0 on the others). An
    untrained model therefore returns the threshold labels, and training moves it away from
    them only where the expert masks disagree.

    Parameters
    ----------
    side : int
        Side of the square input, a multiple of ``2 ** depth``.
    depth : int
        Number of poolings (levels below the full resolution), at least 1.
    width : int
        Filters of the first level.
    prior_strength : float
        Initial logit of the threshold's class (3 gives it a probability of about 0.9).
    seed : int
        Seed of the weight initialisers, so the same settings build the same model.

    Returns
    -------
    keras.Model
        Named :data:`MODEL_NAME`; input ``(None, side, side, 5)`` float32, output
        ``(None, side, side, 3)`` softmax probabilities.

    Raises
    ------
    ValueError
        ``depth`` or ``width`` below 1, or ``side`` not a multiple of ``2 ** depth``.
    """
    if depth < 1 or width < 1:
        raise ValueError(f"U-Net depth and width must be at least 1, got depth={depth}, width={width}")
    if side < 2**depth or side % 2**depth:
        raise ValueError(f"input side {side} must be a positive multiple of 2**depth = {2**depth}")
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))

    def block(x: Any, filters: int) -> Any:
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)))(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        return x

    inputs = keras.Input((side, side, INPUT_CHANNELS), name="image_and_threshold_masks")
    skips = []
    x = inputs
    for level in range(depth):
        x = block(x, width * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(x, width * 2**depth)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2)(x)
        x = layers.Concatenate()([x, skips[level]])
        x = block(x, width * 2**level)
    correction = layers.Conv2D(N_CLASSES, 1, kernel_initializer="zeros", name="correction_logits")(x)
    prior = layers.Conv2D(N_CLASSES, 1, name="threshold_prior")(inputs)
    logits = layers.Add()([prior, correction])
    outputs = layers.Activation("softmax", name="class_probabilities")(logits)
    model = keras.Model(inputs, outputs, name=MODEL_NAME)
    model.get_layer("threshold_prior").set_weights(_threshold_prior_weights(prior_strength))
    return model


def _threshold_prior_weights(strength: float) -> list[np.ndarray]:
    """1x1 convolution mapping the threshold masks to logits of the threshold labels.

    With ``cell`` and ``nucleus`` the 0/1 mask channels: background ``s (1 - cell)``, cytoplasm
    ``s (cell - nucleus)``, nucleus ``s nucleus``; the RGB channels get weight 0.
    """
    kernel = np.zeros((1, 1, INPUT_CHANNELS, N_CLASSES), dtype=np.float32)
    kernel[0, 0, 3] = (-strength, strength, 0.0)
    kernel[0, 0, 4] = (0.0, -strength, strength)
    bias = np.array([strength, 0.0, 0.0], dtype=np.float32)
    return [kernel, bias]


@keras.saving.register_keras_serializable(package="leukoscope")
class DiceCrossEntropy(keras.losses.Loss):
    """Cross-entropy plus soft Dice loss of the whole cell and of the nucleus.

    ``loss = CE + dice_weight * (1 - (Dice_cell + Dice_nucleus) / 2)`` where the soft Dice of
    one image is ``(2 sum(p t) + 1) / (sum(p) + sum(t) + 1)``, with ``p`` the predicted
    probability of the region (cell: P(cytoplasm) + P(nucleus); nucleus: P(nucleus)) and ``t``
    its 0/1 expert mask.

    Parameters
    ----------
    dice_weight : float
        Weight of the Dice term.

    Notes
    -----
    ``y_true`` is a ``(B, S, S)`` integer label map, ``y_pred`` the ``(B, S, S, 3)`` softmax.
    """

    def __init__(self, dice_weight: float = 1.0, name: str = "dice_cross_entropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:3]), "int32")
        onehot = ops.one_hot(labels, N_CLASSES, dtype=y_pred.dtype)
        probabilities = ops.clip(y_pred, 1e-7, 1.0)
        cross_entropy = -ops.mean(ops.sum(onehot * ops.log(probabilities), axis=-1), axis=(1, 2))
        dice = 0.0
        for first_class in (1, 2):  # cell = classes 1 and 2, nucleus = class 2
            p = ops.sum(y_pred[..., first_class:], axis=-1)
            t = ops.sum(onehot[..., first_class:], axis=-1)
            overlap = ops.sum(p * t, axis=(1, 2))
            dice = dice + (2.0 * overlap + 1.0) / (ops.sum(p, axis=(1, 2)) + ops.sum(t, axis=(1, 2)) + 1.0)
        return cross_entropy + self.dice_weight * (1.0 - dice / 2.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dice_weight": self.dice_weight}


__all__ = ["DiceCrossEntropy", "INPUT_CHANNELS", "MODEL_NAME", "N_CLASSES", "build_unet"]

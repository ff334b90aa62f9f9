"""The reference paper's sigmoid head on a frozen ImageNet backbone (Vijesh et al., sections 3.2, 4.1, 4.2).

The paper's recipe: load the backbone with ImageNet weights and freeze it; add
GlobalMaxPooling2D, Dropout(0.5) and Dense(2, sigmoid); train with binary cross-entropy on
one-hot ALL/HEM targets, Adamax at learning rate 0.001, batch size 40, up to 15 epochs with
EarlyStopping(patience=5) on the validation loss, with random horizontal flips of the training
images only.

Because the backbone is frozen and runs in inference mode, the head only ever sees the max-pooled
last feature map of each image or of its mirror image. :func:`fit_pooled_head` trains the same
head on those pooled vectors: each sample enters as the pair (image, mirror image), and the same
Keras ``RandomFlip("horizontal")`` layer as in the full model swaps the pair at random in
training only, before the first of the two is kept, so every epoch sees each cell mirrored with
probability 1/2, as a random horizontal flip of the image would make it. That is the paper's
training without running the backbone 15 times over every image. :func:`build_head` assembles
the full image-to-prediction model (its flip layer also active in training only) into which the
trained head is copied for saving, prediction and the optional second fine-tuning phase.

Everything here is backend-agnostic Keras 3; Keras is imported inside the functions.

References
----------
.. [1] Vijesh, Sikka & Remya, "A systematic review on pre-trained models on C-NMC leukemia
   using deep learning techniques" (the reference study, ../shared/docs/reference-paper.txt).
.. [2] Kingma & Ba (2015), "Adam: a method for stochastic optimization", ICLR,
   arXiv:1412.6980 (Adamax, section 7.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

#: Column order of the one-hot targets and of the head's two outputs (column 1 = ALL = label 1).
CLASSES = ("HEM", "ALL")
FLIP_LAYER = "train_flip"
POOL_LAYER = "head_pool"
DROPOUT_LAYER = "head_dropout"
DENSE_LAYER = "head_dense"


def one_hot(y: np.ndarray) -> np.ndarray:
    """One-hot targets in :data:`CLASSES` order.

    Parameters
    ----------
    y : (N,) int ndarray
        1 = ALL, 0 = HEM.

    Returns
    -------
    (N, 2) float32 ndarray
    """
    y = np.asarray(y)
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (HEM) or 1 (ALL), got {sorted(set(np.unique(y).tolist()) - {0, 1})}")
    return np.eye(2, dtype=np.float32)[y.astype(int)]


def head_scores(outputs: np.ndarray) -> np.ndarray:
    """P(ALL) from the head's two independent sigmoid outputs.

    The two sigmoids need not sum to one; ``s_ALL / (s_ALL + s_HEM)`` is at least 0.5 exactly
    when the ALL output is at least the HEM output, so the project's one threshold rule (ALL when
    P(ALL) >= 0.5, :func:`~leukoscope.classifiers.metrics.predict_labels`) gives the paper's
    arg-max class, a tie going to ALL. Two outputs of zero give 0.5, hence ALL.

    Parameters
    ----------
    outputs : (N, 2) ndarray
        Sigmoid outputs in :data:`CLASSES` order.

    Returns
    -------
    (N,) float64 ndarray
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    total = outputs.sum(axis=1)
    return np.divide(outputs[:, 1], total, out=np.full(len(outputs), 0.5), where=total > 0)


def balanced_sample_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights ``n / (2 n_class)`` so that both classes weigh the same in the loss.

    Parameters
    ----------
    y : (N,) int ndarray
        1 = ALL, 0 = HEM; both classes present.

    Returns
    -------
    (N,) float32 ndarray
    """
    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2)
    if counts.min() == 0:
        raise ValueError("class weights need both ALL and HEM samples in the training part")
    return (len(y) / (2.0 * counts[y])).astype(np.float32)


def _top(x: Any, *, dropout: float, seed: int | None) -> Any:
    import keras

    x = keras.layers.Dropout(dropout, seed=seed, name=DROPOUT_LAYER)(x)
    return keras.layers.Dense(2, activation="sigmoid", dtype="float32", name=DENSE_LAYER)(x)


def build_head(backbone: keras.Model, *, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """The paper's model: flip (training only) -> frozen backbone -> max pool -> dropout -> 2 sigmoids.

    Parameters
    ----------
    backbone : keras.Model
        No-top backbone (e.g. :meth:`BackboneSpec.build`); it is frozen (``trainable = False``)
        and always runs in inference mode, so its batch-norm statistics never change.
    dropout : float
        Dropout rate before the output layer (paper: 0.5).
    seed : int or None
        Seed of the flip and dropout layers.

    Returns
    -------
    keras.Model
        Input ``(N, S, S, 3)`` images preprocessed for the backbone, output ``(N, 2)``
        sigmoid scores in :data:`CLASSES` order. Not compiled (see :func:`compile_head`).
    """
    import keras

    backbone.trainable = False
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    x = keras.layers.RandomFlip("horizontal", seed=seed, name=FLIP_LAYER)(inputs)
    x = backbone(x, training=False)
    x = keras.layers.GlobalMaxPooling2D(name=POOL_LAYER)(x)
    return keras.Model(inputs, _top(x, dropout=dropout, seed=seed), name=f"{backbone.name}_sigmoid_head")


def build_pooled_head(n_features: int, *, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """The trainable part of :func:`build_head` alone, on max-pooled feature pairs.

    Parameters
    ----------
    n_features : int
        Channels of the backbone's last feature map.
    dropout, seed
        As in :func:`build_head`.

    Returns
    -------
    keras.Model
        Input ``(N, 1, 2, n_features)`` pairs from :func:`mirror_pairs`; a ``RandomFlip``
        swaps each pair with probability 1/2 in training only and the first vector is kept.
        Output ``(N, 2)``; its layer ``head_dense`` can be copied into a :func:`build_head`
        model with :func:`copy_head`.
    """
    import keras

    inputs = keras.Input((1, 2, n_features), name="pooled_pair")
    x = keras.layers.RandomFlip("horizontal", seed=seed, name=FLIP_LAYER)(inputs)
    x = keras.layers.Cropping2D(((0, 0), (0, 1)), name="keep_first")(x)
    x = keras.layers.Flatten(name="pooled")(x)
    return keras.Model(inputs, _top(x, dropout=dropout, seed=seed), name="pooled_sigmoid_head")


def mirror_pairs(pooled: np.ndarray, mirrored: np.ndarray | None = None) -> np.ndarray:
    """Pack pooled features for :func:`build_pooled_head`.

    Parameters
    ----------
    pooled : (N, C) ndarray
        Features of each image.
    mirrored : (N, C) ndarray or None
        Features of each mirror image; ``None`` (validation, prediction) repeats ``pooled``.

    Returns
    -------
    (N, 1, 2, C) float32 ndarray
    """
    pooled = np.asarray(pooled, dtype=np.float32)
    mirrored = pooled if mirrored is None else np.asarray(mirrored, dtype=np.float32)
    if pooled.shape != mirrored.shape:
        raise ValueError(f"pooled {pooled.shape} and mirrored {mirrored.shape} features must have one shape")
    return np.stack([pooled, mirrored], axis=1)[:, None]


def compile_head(model: keras.Model, *, learning_rate: float = 0.001) -> keras.Model:
    """Compile with the paper's optimiser and loss: Adamax and binary cross-entropy.

    Returns
    -------
    keras.Model
        ``model``, compiled, with ``accuracy`` (arg-max class) as metric.
    """
    import keras

    model.compile(
        optimizer=keras.optimizers.Adamax(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    model.optimizer.build(model.trainable_variables)  # saved with its slots, so it reloads whole
    return model


def copy_head(source: keras.Model, target: keras.Model) -> None:
    """Copy the output layer's weights from one head model to another (same feature width)."""
    target.get_layer(DENSE_LAYER).set_weights(source.get_layer(DENSE_LAYER).get_weights())


def unfreeze_top(model: keras.Model, layers: int) -> int:
    """Make the top ``layers`` layers of the backbone inside a :func:`build_head` model trainable.

    Batch-normalisation layers stay frozen (and the backbone keeps running in inference mode),
    the usual practice when fine-tuning on a small dataset. Recompile afterwards.

    Returns
    -------
    int
        Number of backbone layers with weights that became trainable.
    """
    import keras

    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    backbone.trainable = True
    top = set(map(id, backbone.layers[-layers:])) if layers > 0 else set()
    unfrozen = 0
    for layer in backbone.layers:
        layer.trainable = id(layer) in top and not isinstance(layer, keras.layers.BatchNormalization)
        unfrozen += int(layer.trainable and bool(layer.weights))
    return unfrozen


def fit_head(model: keras.Model, x: Any, y: np.ndarray | None, validation: Any, *,
             sample_weight: np.ndarray | None = None, batch_size: int | None = None, epochs: int = 15,
             patience: int = 5, restore_best_weights: bool = False) -> pd.DataFrame:
    """Train a compiled head with EarlyStopping on the validation loss.

    Parameters
    ----------
    model : keras.Model
        A compiled head.
    x : ndarray or keras.utils.PyDataset
        Training inputs (shuffled every epoch), or a dataset yielding ``(x, y[, sample_weight])``.
    y : (N, 2) ndarray or None
        One-hot targets; ``None`` with a dataset.
    validation : tuple or keras.utils.PyDataset
        Validation data ``(x, y)``; never augmented.
    sample_weight : (N,) ndarray or None
        Per-sample loss weights (array inputs).
    batch_size : int or None
        Batch size of array inputs (paper: 40).
    epochs : int
        Most epochs (paper: 15).
    patience : int
        Epochs without a lower validation loss before stopping (paper: 5).
    restore_best_weights : bool
        Roll back to the epoch with the lowest validation loss (the paper does not; Keras'
        default is not to).

    Returns
    -------
    DataFrame
        One row per epoch run: ``epoch`` (from 1), ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy``.
    """
    import keras

    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=restore_best_weights)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=batch_size, validation_data=validation,
                        epochs=epochs, shuffle=True, callbacks=[stopper], verbose=0)
    table = pd.DataFrame(history.history)
    table.insert(0, "epoch", np.arange(1, len(table) + 1))
    return table


def fit_pooled_head(pooled: np.ndarray, mirrored: np.ndarray, y: np.ndarray,
                    validation: tuple[np.ndarray, np.ndarray], *, dropout: float = 0.5,
                    learning_rate: float = 0.001, batch_size: int = 40, epochs: int = 15,
                    patience: int = 5, restore_best_weights: bool = False, class_weight: bool = False,
                    seed: int = 0) -> tuple[keras.Model, pd.DataFrame]:
    """Train the paper's head on max-pooled features of the frozen backbone.

    Parameters
    ----------
    pooled, mirrored : (N, C) float32 ndarray
        Max-pooled last feature map of each training image and of its mirror image.
    y : (N,) int ndarray
        1 = ALL, 0 = HEM.
    validation : ((M, C) ndarray, (M,) int ndarray)
        Pooled features (unflipped) and labels of the validation part.
    dropout, learning_rate, batch_size, epochs, patience, restore_best_weights
        The recipe (paper: 0.5, 0.001, 40, 15, 5, False).
    class_weight : bool
        Weigh the samples so that both classes count the same (ours; the paper does not).
    seed : int
        Seed of the initial weights, dropout, shuffling and flips.

    Returns
    -------
    model : keras.Model
        The trained :func:`build_pooled_head` model (predict on :func:`mirror_pairs` of features).
    history : DataFrame
        See :func:`fit_head`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = compile_head(build_pooled_head(pooled.shape[1], dropout=dropout, seed=seed),
                         learning_rate=learning_rate)
    x_val, y_val = validation
    history = fit_head(model, mirror_pairs(pooled, mirrored), one_hot(y), (mirror_pairs(x_val), one_hot(y_val)),
                       sample_weight=balanced_sample_weights(y) if class_weight else None,
                       batch_size=batch_size, epochs=epochs, patience=patience,
                       restore_best_weights=restore_best_weights)
    return model, history


def predict_outputs(model: keras.Model, x: Any, *, batch_size: int = 40) -> np.ndarray:
    """The two sigmoid outputs of every sample, in :data:`CLASSES` order (HEM, ALL).

    Parameters
    ----------
    model : keras.Model
        A head model: full (images) or pooled (:func:`mirror_pairs`).
    x : ndarray or keras.utils.PyDataset
        Its inputs (a dataset brings its own batch size).
    batch_size : int
        Batch size for array inputs.

    Returns
    -------
    (N, 2) float64 ndarray
        Independent sigmoids (they need not sum to one): what the paper's Keras metrics count
        (:func:`leukoscope.classifiers.keras_metrics.keras_elementwise_metrics`).
    """
    if not isinstance(x, np.ndarray):
        return np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    if len(x) == 0:
        return np.empty((0, len(CLASSES)))
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)


def predict_scores(model: keras.Model, x: Any, *, batch_size: int = 40) -> np.ndarray:
    """P(ALL) of every sample: :func:`head_scores` of :func:`predict_outputs`.

    Returns
    -------
    (N,) float64 ndarray
    """
    return head_scores(predict_outputs(model, x, batch_size=batch_size))


__all__ = [
    "CLASSES",
    "DENSE_LAYER",
    "DROPOUT_LAYER",
    "FLIP_LAYER",
    "POOL_LAYER",
    "balanced_sample_weights",
    "build_head",
    "build_pooled_head",
    "compile_head",
    "copy_head",
    "fit_head",
    "fit_pooled_head",
    "head_scores",
    "mirror_pairs",
    "one_hot",
    "predict_outputs",
    "predict_scores",
    "unfreeze_top",
]

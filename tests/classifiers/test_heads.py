"""The paper's sigmoid head: layers, loss, optimiser, flips in training only, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.classifiers.heads import (
    DENSE_LAYER,
    DROPOUT_LAYER,
    FLIP_LAYER,
    POOL_LAYER,
    balanced_sample_weights,
    build_head,
    build_pooled_head,
    compile_head,
    copy_head,
    fit_pooled_head,
    head_scores,
    mirror_pairs,
    one_hot,
    predict_scores,
    unfreeze_top,
)
from leukoscope.classifiers.metrics import predict_labels


def test_one_hot_puts_all_in_column_one():
    np.testing.assert_array_equal(one_hot(np.array([1, 0, 1])), [[0, 1], [1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"labels must be 0 \(HEM\) or 1 \(ALL\), got \[-1\]"):
        one_hot(np.array([1, -1]))


def test_head_scores_agree_with_the_arg_max_class():
    outputs = np.array([[0.2, 0.6], [0.8, 0.6], [0.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(head_scores(outputs), [0.75, 0.6 / 1.4, 0.5, 0.5])
    # the one threshold rule (P(ALL) >= 0.5 is ALL) is the arg-max class, a tie going to ALL
    assert (predict_labels(head_scores(outputs)) == (outputs[:, 1] >= outputs[:, 0])).all()


def test_balanced_sample_weights_by_hand():
    np.testing.assert_allclose(balanced_sample_weights(np.array([1, 1, 1, 0])), [2 / 3, 2 / 3, 2 / 3, 2])
    with pytest.raises(ValueError, match="need both ALL and HEM"):
        balanced_sample_weights(np.array([1, 1]))


def _tiny_backbone():
    """A small no-top "backbone" with a batch-norm layer: (N, 8, 8, 3) -> (N, 4, 4, 4)."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv_b")(x)
    return keras.Model(inputs, x, name="tiny")


def test_head_has_the_papers_layers_and_reads_back_from_keras_file(tmp_path):
    import keras

    model = compile_head(build_head(_tiny_backbone(), seed=0))
    names = [layer.name for layer in model.layers]
    assert names == ["image", FLIP_LAYER, "tiny", POOL_LAYER, DROPOUT_LAYER, DENSE_LAYER]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer(POOL_LAYER), keras.layers.GlobalMaxPooling2D)
    assert loaded.get_layer(DROPOUT_LAYER).rate == 0.5
    dense = loaded.get_layer(DENSE_LAYER)
    assert dense.units == 2 and dense.activation.__name__ == "sigmoid"
    assert loaded.get_layer("tiny").trainable is False
    assert isinstance(loaded.get_layer(FLIP_LAYER), keras.layers.RandomFlip)
    assert loaded.get_layer(FLIP_LAYER).mode == "horizontal"
    assert isinstance(loaded.optimizer, keras.optimizers.Adamax)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(0.001)
    assert isinstance(loaded.loss, keras.losses.BinaryCrossentropy)
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)


def test_flip_only_in_training():
    model = build_head(_tiny_backbone(), seed=0)
    flip = model.get_layer(FLIP_LAYER)
    x = np.random.default_rng(0).normal(size=(32, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(flip(x, training=False)), x)
    out = np.asarray(flip(x, training=True))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all() and same.any() and mirrored.any()
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict_on_batch(x))


def test_unfreeze_top_keeps_batch_norm_frozen():
    model = build_head(_tiny_backbone())
    assert unfreeze_top(model, 2) == 1  # conv_b; bn stays frozen
    backbone = model.get_layer("tiny")
    assert [layer.name for layer in backbone.layers if layer.trainable] == ["conv_b"]
    assert unfreeze_top(model, 3) == 2
    assert not backbone.get_layer("bn").trainable


def test_pooled_head_sees_the_mirror_with_probability_one_half_in_training_only():
    import keras

    pooled = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    pairs = mirror_pairs(pooled, -pooled)
    assert pairs.shape == (64, 1, 2, 3)
    head = build_pooled_head(3, seed=0)
    chosen = keras.Model(head.input, head.get_layer("pooled").output)
    np.testing.assert_array_equal(chosen(pairs, training=False), pooled)
    train = np.asarray(chosen(pairs, training=True))
    mirrored = (train == -pooled).all(axis=1)
    assert ((train == pooled).all(axis=1) | mirrored).all()
    assert 16 < mirrored.sum() < 48
    with pytest.raises(ValueError, match=r"pooled \(64, 3\) and mirrored \(64, 2\) features must have one shape"):
        mirror_pairs(pooled, pooled[:, :2])


def _separable(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    pooled = rng.normal(size=(n, 6)).astype(np.float32) + 2.0 * (2 * y - 1)[:, None]
    return pooled, pooled + rng.normal(scale=0.1, size=(n, 6)).astype(np.float32), y


@pytest.mark.slow
def test_pooled_head_learns_and_is_deterministic_with_a_seed():
    pooled, mirrored, y = _separable(80, 0)
    val = _separable(20, 1)
    kwargs = dict(batch_size=40, epochs=8, learning_rate=0.1, seed=3)
    model, history = fit_pooled_head(pooled, mirrored, y, (val[0], val[2]), **kwargs)
    again, history_again = fit_pooled_head(pooled, mirrored, y, (val[0], val[2]), **kwargs)
    assert list(history.columns) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    scores = predict_scores(model, mirror_pairs(val[0]))
    assert (predict_labels(scores) == val[2]).mean() >= 0.9
    np.testing.assert_array_equal(predict_scores(again, mirror_pairs(val[0])), scores)
    np.testing.assert_array_equal(history_again.to_numpy(), history.to_numpy())


def test_pooled_head_copies_into_the_full_model():
    import keras

    pooled, mirrored, y = _separable(40, 0)
    backbone = _tiny_backbone()
    head, _ = fit_pooled_head(pooled[:, :4], mirrored[:, :4], y, (pooled[:8, :4], y[:8]), epochs=2, seed=0)
    model = build_head(backbone)
    copy_head(head, model)
    x = np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype(np.float32)
    features = keras.ops.convert_to_numpy(keras.ops.max(backbone(x), axis=(1, 2)))
    np.testing.assert_allclose(predict_scores(model, x), predict_scores(head, mirror_pairs(features)), rtol=1e-5)


def test_class_weights_and_early_stopping():
    pooled, mirrored, y = _separable(60, 0)
    _, history = fit_pooled_head(pooled, mirrored, y, (pooled[:10], 1 - y[:10]), epochs=15, patience=2,
                                 learning_rate=0.05, class_weight=True, seed=0)
    assert len(history) < 15  # the validation loss rises on flipped labels: stopped after 2 more epochs

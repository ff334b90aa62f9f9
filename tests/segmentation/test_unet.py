import keras
import numpy as np
import pytest

from leukoscope.segmentation.unet import MODEL_NAME, DiceCrossEntropy, build_unet
from leukoscope.segmentation.unet_encoding import (
    INPUT_CHANNELS,
    N_CLASSES,
    Window,
    augment_batch,
    crop_window,
    decode_output,
    encode_input,
    encode_target,
    paste_window,
    refiner_window,
    resize_labels,
    stretch_colour,
    surround_colour,
)


def disc_labels(size: int, cell: float, nucleus: float, shift: int = 0) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    radius = np.hypot(rows - size / 2 + 0.5 - shift, cols - size / 2 + 0.5)
    return np.where(radius < nucleus, 2, np.where(radius < cell, 1, 0)).astype(np.uint8)


def cell_image(labels: np.ndarray) -> np.ndarray:
    colours = np.array([(230, 220, 200), (170, 160, 220), (90, 40, 140)], dtype=np.uint8)
    return colours[labels]


def encoded(truth: np.ndarray, threshold: np.ndarray | None = None, *, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Model input (threshold = truth unless given) and target of a synthetic cell."""
    x, window = encode_input(cell_image(truth), truth if threshold is None else threshold, side=side)
    return x, encode_target(truth, window, side=side)


def test_shapes_name_and_softmax():
    model = build_unet(side=32, depth=2, width=4)
    assert model.name == MODEL_NAME
    assert model.input_shape == (None, 32, 32, INPUT_CHANNELS)
    assert model.output_shape == (None, 32, 32, N_CLASSES)
    out = np.asarray(model.predict_on_batch(np.random.default_rng(0).random((2, 32, 32, 5), dtype=np.float32)))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-5)
    assert (out >= 0).all()


@pytest.mark.parametrize(("side", "depth", "width"), [(30, 2, 4), (32, 0, 4), (32, 2, 0), (4, 3, 4)])
def test_bad_architecture_is_refused(side, depth, width):
    with pytest.raises(ValueError, match="depth|multiple"):
        build_unet(side=side, depth=depth, width=width)


def test_untrained_model_returns_the_threshold_labels():
    x, target = encoded(disc_labels(48, 12, 6))
    out = np.asarray(build_unet(side=32, depth=2, width=4).predict_on_batch(x[None]))[0]
    np.testing.assert_array_equal(np.argmax(out, axis=-1), target)
    # prior_strength 3: the threshold's class gets e^3 / (e^3 + 2) of the probability
    assert np.allclose(out.max(axis=-1), np.exp(3) / (np.exp(3) + 2), atol=1e-5)


def test_same_seed_builds_the_same_weights():
    a, b = (build_unet(side=16, depth=1, width=2, seed=3) for _ in range(2))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_loss_matches_hand_computation():
    # 1 image of 1x2 pixels: pixel 0 is nucleus, pixel 1 background
    y_true = np.array([[[2, 0]]])
    y_pred = np.array([[[[0.1, 0.1, 0.8], [0.6, 0.2, 0.2]]]], dtype=np.float32)
    cross_entropy = -(np.log(0.8) + np.log(0.6)) / 2
    # cell: p = (0.9, 0.4), t = (1, 0); nucleus: p = (0.8, 0.2), t = (1, 0)
    dice_cell = (2 * 0.9 + 1) / (1.3 + 1 + 1)
    dice_nucleus = (2 * 0.8 + 1) / (1.0 + 1 + 1)
    expected = cross_entropy + 1 - (dice_cell + dice_nucleus) / 2
    loss = float(DiceCrossEntropy()(y_true, y_pred))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(DiceCrossEntropy(dice_weight=0.0)(y_true, y_pred)) == pytest.approx(cross_entropy, rel=1e-5)


def test_loss_round_trips_through_its_config():
    loss = DiceCrossEntropy(dice_weight=0.5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(again, DiceCrossEntropy) and again.dice_weight == 0.5


def test_refiner_window_is_twice_the_cell_and_centred_on_it():
    labels = np.zeros((100, 100), dtype=np.uint8)
    labels[40:60, 30:70] = 1  # 20 rows x 40 columns, centre (50, 50)
    assert refiner_window(labels) == Window(top=10, left=10, side=80)
    labels[:] = 0
    labels[0:2, 0:3] = 2  # a tiny cell: the window is never below MIN_WINDOW
    assert refiner_window(labels) == Window(top=-15, left=-14, side=32)
    assert refiner_window(np.zeros((60, 80), dtype=np.uint8)) == Window(top=-10, left=0, side=80)


def test_crop_and_paste_window_by_hand():
    array = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
    window = Window(top=-1, left=-1, side=3)
    crop = crop_window(array, window, fill=0)
    np.testing.assert_array_equal(crop, [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    np.testing.assert_array_equal(paste_window(crop, window, (3, 3)), [[1, 2, 0], [4, 5, 0], [0, 0, 0]])
    colour = crop_window(np.full((2, 2, 3), 7, dtype=np.uint8), Window(0, 1, 2), fill=(1, 2, 3))
    np.testing.assert_array_equal(colour[:, 1], [[1, 2, 3], [1, 2, 3]])
    np.testing.assert_array_equal(colour[:, 0], [[7, 7, 7], [7, 7, 7]])


def test_surround_colour_is_the_median_of_the_border():
    image = np.full((6, 6, 3), (10, 20, 30), dtype=np.uint8)
    image[2:4, 2:4] = 255
    image[0, 0] = 0
    np.testing.assert_array_equal(surround_colour(image), [10, 20, 30])


def test_stretch_colour_maps_each_channels_percentiles_to_0_and_1_and_ignores_black():
    ramp = np.repeat(np.arange(101, dtype=np.uint8)[:, None] + 100, 3, axis=1).reshape(101, 1, 3)  # 100..200
    ramp[..., 1] //= 2  # green 50..100: another range, the same result
    image = np.concatenate([ramp, np.zeros((50, 1, 3), dtype=np.uint8)])  # and a black surround
    out = stretch_colour(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    expected = np.clip((np.arange(101) - 1.0) / 98.0, 0.0, 1.0)  # percentiles 1 and 99 of 0..100
    for channel in range(3):
        np.testing.assert_allclose(out[:101, 0, channel], expected, atol=0.011)
    assert (out[101:] == 0).all()
    # a change of illumination (gain and offset per channel) does not change the input
    lit = np.clip(image[:101].astype(float) * (0.8, 1.1, 0.9) + (20, -10, 5), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(stretch_colour(lit), out[:101], atol=0.02)
    np.testing.assert_array_equal(stretch_colour(np.full((4, 4, 3), 7, dtype=np.uint8)), 0.0)  # all black


def test_encode_input_channels_and_sizes():
    labels = disc_labels(40, 15, 7)[:, :30]
    x, window = encode_input(cell_image(labels), labels, side=16)
    assert window == refiner_window(labels)
    assert x.shape == (16, 16, 5) and x.dtype == np.float32
    assert 0.0 <= x[..., :3].min() and x[..., :3].max() <= 1.0
    assert set(np.unique(x[..., 3:])) <= {0.0, 1.0}
    assert (x[..., 4] <= x[..., 3]).all()  # the nucleus is inside the cell
    np.testing.assert_array_equal(x[..., 3], encode_target(labels, window, side=16) > 0)
    with pytest.raises(ValueError, match="threshold label mask is 40x40 but the image is 40x30"):
        encode_input(cell_image(labels), disc_labels(40, 15, 7), side=16)
    with pytest.raises(ValueError, match="uint8 RGB"):
        encode_input(cell_image(labels).astype(np.float32), labels, side=16)


def test_decode_output_puts_the_changed_classes_into_the_window():
    probabilities = np.zeros((2, 2, 3), dtype=np.float32)
    probabilities[0, 0, 2] = probabilities[0, 1, 1] = probabilities[1, :, 0] = 1
    np.testing.assert_array_equal(
        decode_output(probabilities, Window(top=0, left=1, side=4), np.zeros((4, 6), dtype=np.uint8)),
        np.array([[0, 2, 2, 1, 1, 0]] * 2 + [[0] * 6] * 2, dtype=np.uint8),
    )
    labels = disc_labels(20, 8, 4)
    assert set(np.unique(resize_labels(labels, (33, 47)))) == {0, 1, 2}


def test_decode_output_keeps_the_full_resolution_threshold_where_nothing_changed():
    threshold = np.zeros((4, 6), dtype=np.uint8)
    threshold[0, 1] = 1  # a detail the 2x2 model side does not sample
    background = np.zeros((2, 2, 3), dtype=np.float32)
    background[..., 0] = 1
    np.testing.assert_array_equal(decode_output(background, Window(top=0, left=1, side=4), threshold), threshold)


def test_encode_decode_round_trip_keeps_the_labels():
    labels = disc_labels(64, 20, 9)
    _, window = encode_input(cell_image(labels), labels, side=80)  # the window is 80 wide
    onehot = np.eye(3, dtype=np.float32)[encode_target(labels, window, side=80)]
    np.testing.assert_array_equal(decode_output(onehot, window, labels), labels)
    np.testing.assert_array_equal(decode_output(onehot, window, np.zeros_like(labels)), labels)


def test_augmentation_moves_masks_with_labels_and_is_reproducible():
    inputs, labels = map(np.stack, zip(*(encoded(disc_labels(32, 10, 5, shift=s)) for s in (0, 4, -4))))
    a_in, a_lab = augment_batch(inputs, labels, rng=np.random.default_rng(1), corrupt=0.0)
    b_in, b_lab = augment_batch(inputs, labels, rng=np.random.default_rng(1), corrupt=0.0)
    np.testing.assert_array_equal(a_in, b_in)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert a_in.shape == inputs.shape and a_lab.shape == labels.shape and a_lab.dtype == np.uint8
    # geometry is shared: the threshold masks (here equal to the labels) still equal them
    np.testing.assert_array_equal(a_in[..., 3], a_lab > 0)
    np.testing.assert_array_equal(a_in[..., 4], a_lab == 2)
    assert 0.0 <= a_in[..., :3].min() and a_in[..., :3].max() <= 1.0
    assert not np.array_equal(a_in[..., :3], inputs[..., :3])
    np.testing.assert_array_equal(inputs[..., 3], labels > 0)  # the arguments are untouched


def test_augmentation_without_zoom_keeps_the_areas():
    inputs, labels = (a[None] for a in encoded(disc_labels(64, 20, 10), side=64))
    _, out = augment_batch(inputs, labels, rng=np.random.default_rng(5), zoom=0.0, jitter=0.0, corrupt=0.0)
    for value in (1, 2):
        assert np.count_nonzero(out == value) == pytest.approx(np.count_nonzero(labels == value), rel=0.05)


def test_mask_corruption_changes_only_the_threshold_masks():
    inputs, labels = (a[None].repeat(8, axis=0) for a in encoded(disc_labels(32, 10, 5)))
    out, out_labels = augment_batch(inputs, labels, rng=np.random.default_rng(2), zoom=0.0, jitter=0.0, corrupt=1.0)
    assert any(not np.array_equal(m, lab > 0) for m, lab in zip(out[..., 3], out_labels))
    assert (out[..., 4] <= out[..., 3]).all()


def test_a_few_training_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    truth = np.stack([disc_labels(32, rng.integers(8, 13), rng.integers(3, 6), shift=int(rng.integers(-3, 4)))
                      for _ in range(8)])
    # the threshold masks miss the cytoplasm: the model has to learn to add it from the colour
    inputs, truth = map(np.stack, zip(*(encoded(t, np.where(t == 2, 2, 0).astype(np.uint8)) for t in truth)))
    model = build_unet(side=32, depth=2, width=4)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=DiceCrossEntropy())
    losses = model.fit(inputs, truth, batch_size=8, epochs=15, verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]


def test_batches_draw_the_alternative_views_with_the_given_share():
    from leukoscope.segmentation.unet_training import _batches

    inputs, labels = (a[None].repeat(64, axis=0) for a in encoded(disc_labels(32, 10, 5)))
    empty = np.zeros_like(labels)  # the alternative view's target: no cell, whatever the augmentation
    for share, expected in ((0.0, 0), (0.3, 19), (1.0, 64)):  # 19 of 64 draws under 0.3 (seed 0)
        _, targets = _batches(inputs, labels, batch_size=64, seed=0, alternatives=(inputs, empty), share=share)[0]
        assert sum(not t.any() for t in targets) == expected

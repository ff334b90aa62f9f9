"""Fitting cells to a network input, and pooling with a compiled inference step."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.features.embeddings import build_extractor, embed_batch, fit_to_square, prepare_batch


def _identity(batch: np.ndarray) -> np.ndarray:
    return batch


def test_fit_to_square_pads_a_wide_image_centred_with_black():
    image = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3) + 1
    out = fit_to_square(image, size=4)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(out[3], 0)
    np.testing.assert_array_equal(out[1:3], image)


def test_fit_to_square_zeroes_the_background_and_mirrors():
    image = np.full((2, 2, 3), 200, np.uint8)
    image[:, 1] = 100
    mask = np.array([[0, 2], [1, 1]], np.uint8)
    out = fit_to_square(image, size=2, mask=mask)
    np.testing.assert_array_equal(out[..., 0], [[0, 100], [200, 100]])
    mirrored = fit_to_square(image, size=2, mask=mask, mirror=True)
    np.testing.assert_array_equal(mirrored, out[:, ::-1])


def test_fit_to_square_resizes_by_area_averaging():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2, :2] = 200  # one 2x2 block per output pixel
    out = fit_to_square(image, size=2)
    np.testing.assert_array_equal(out[..., 1], [[200, 0], [0, 0]])


def test_fit_to_square_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB image, got shape \(4, 4\)"):
        fit_to_square(np.zeros((4, 4), np.uint8), size=4)
    with pytest.raises(ValueError, match="mask is 2x3 but its image is 2x4"):
        fit_to_square(np.zeros((2, 4, 3), np.uint8), size=4, mask=np.ones((2, 3), np.uint8))


def test_prepare_batch_stacks_float32_and_applies_preprocess():
    images = [np.full((3, 3, 3), v, np.uint8) for v in (10, 20)]
    batch = prepare_batch(images, size=3, preprocess=lambda b: b / 10)
    assert batch.shape == (2, 3, 3, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[:, 0, 0, 0], [1, 2])
    with pytest.raises(ValueError, match="got 2 images but 1 masks"):
        prepare_batch(images, size=3, preprocess=_identity, masks=[None])


@pytest.fixture(scope="module")
def identity_extractor():
    import keras

    inputs = keras.Input((2, 2, 3))
    return build_extractor(keras.Model(inputs, inputs, name="identity"))


def test_extractor_pools_by_mean_and_max(identity_extractor):
    batch = np.zeros((1, 2, 2, 3), np.float32)
    batch[0, :, :, 0] = [[1, 2], [3, 6]]
    pooled = embed_batch(identity_extractor, batch)
    np.testing.assert_allclose(pooled["avg"], [[3, 0, 0]])
    np.testing.assert_allclose(pooled["max"], [[6, 0, 0]])


def test_padding_a_short_batch_keeps_its_values(identity_extractor):
    batch = np.random.default_rng(1).uniform(size=(3, 2, 2, 3)).astype(np.float32)
    plain = embed_batch(identity_extractor, batch)
    padded = embed_batch(identity_extractor, batch, pad_to=5)
    for name in ("avg", "max"):
        assert padded[name].shape == (3, 3)
        np.testing.assert_allclose(padded[name], plain[name], rtol=1e-6)


def test_global_pooling_ignores_a_mirror_flip(identity_extractor):
    image = np.random.default_rng(2).integers(0, 255, (2, 2, 3), dtype=np.uint8)
    both = prepare_batch([image, image], size=2, preprocess=_identity, mirror=False)
    both[1] = prepare_batch([image], size=2, preprocess=_identity, mirror=True)[0]
    pooled = embed_batch(identity_extractor, both)
    np.testing.assert_allclose(pooled["avg"][0], pooled["avg"][1], rtol=1e-6)
    np.testing.assert_allclose(pooled["max"][0], pooled["max"][1])

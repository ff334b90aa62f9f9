"""The backbone registry: names, sizes, preprocessing, building all seven, loading weight files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from leukoscope.features.backbones import BACKBONES, get_backbone
from leukoscope.features.choices import Backbone
from leukoscope.features.embeddings import build_extractor, embed_batch

#: Embedding widths from the Keras application docs (channels of the last feature map).
WIDTHS = {"vgg16": 512, "vgg19": 512, "inceptionv3": 2048, "xception": 2048,
          "efficientnetb0": 1280, "resnet50": 2048, "resnet101": 2048}
#: Smallest inputs Keras accepts: 32 px, 75 for InceptionV3, 71 for Xception.
SMALL = {"inceptionv3": 75, "xception": 71}


def test_registry_holds_the_seven_backbones_of_the_study():
    assert [b.value for b in BACKBONES] == list(WIDTHS)
    assert {b.value: s.embedding_size for b, s in BACKBONES.items()} == WIDTHS
    sizes = {b.value: s.input_size for b, s in BACKBONES.items()}
    assert sizes == {name: 299 if name in ("inceptionv3", "xception") else 224 for name in WIDTHS}
    for spec in BACKBONES.values():
        assert spec.weights_file.endswith("_notop.h5")
        assert spec.weights_url.endswith("/" + spec.weights_file)
        assert len(spec.weights_md5) == 32


def test_get_backbone_accepts_names_and_enums():
    assert get_backbone("resnet50") is get_backbone(Backbone.RESNET50)
    assert get_backbone("inceptionv3").constructor == "InceptionV3"


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown backbone 'resnet18'; valid backbones: vgg16, vgg19, "
                                         "inceptionv3, xception, efficientnetb0, resnet50, resnet101"):
        get_backbone("resnet18")


def test_input_size_defaults_and_minimum():
    spec = get_backbone("xception")
    assert spec.check_input_size(0) == 299
    assert spec.check_input_size(71) == 71
    with pytest.raises(ValueError, match="xception needs an input of at least 71x71 pixels, got 64"):
        spec.check_input_size(64)


def test_importing_the_features_package_does_not_import_keras():
    code = ("import sys, leukoscope.features.backbones, leukoscope.features.embeddings; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_preprocess_is_each_networks_own():
    pixel = np.zeros((1, 1, 2, 3), np.float32)
    pixel[0, 0, 0] = (255, 0, 0)  # pure red, then black
    # VGG/ResNet ("caffe"): RGB -> BGR, minus the ImageNet BGR mean (103.939, 116.779, 123.68)
    np.testing.assert_allclose(get_backbone("vgg16").preprocess(pixel.copy())[0, 0],
                               [[-103.939, -116.779, 131.32], [-103.939, -116.779, -123.68]], atol=1e-3)
    np.testing.assert_allclose(get_backbone("resnet101").preprocess(pixel.copy())[0, 0, 0],
                               [-103.939, -116.779, 131.32], atol=1e-3)
    # InceptionV3/Xception ("tf"): x / 127.5 - 1
    np.testing.assert_allclose(get_backbone("xception").preprocess(pixel.copy())[0, 0],
                               [[1, -1, -1], [-1, -1, -1]], atol=1e-6)
    # EfficientNetB0 rescales inside the network
    np.testing.assert_array_equal(get_backbone("efficientnetb0").preprocess(pixel.copy()), pixel)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WIDTHS))
def test_all_seven_build_with_random_weights(name):
    import keras

    keras.backend.clear_session()
    size = SMALL.get(name, 32)
    model = get_backbone(name).build(input_size=size)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape[-1] == WIDTHS[name]


def test_extractor_pools_the_last_feature_map():
    spec = get_backbone("vgg16")
    extractor = build_extractor(spec.build(input_size=32))
    batch = spec.preprocess(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    pooled = embed_batch(extractor, batch)
    assert pooled["avg"].shape == pooled["max"].shape == (2, 512)
    assert np.isfinite(pooled["avg"]).all()
    assert (pooled["max"] >= pooled["avg"] - 1e-6).all()


@pytest.mark.slow
def test_efficientnet_weight_file_gets_keras_imagenet_input_scaling(tmp_path):
    """Keras divides EfficientNet's normalised input by sqrt(std) when it loads ImageNet weights."""
    import keras

    spec = get_backbone("efficientnetb0")
    std = np.array([0.229, 0.224, 0.225])
    mean = np.array([0.485, 0.456, 0.406])
    source = spec.build(input_size=32)
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign(mean)
    norm.adapt_variance.assign(std ** 2)
    norm.finalize_state()
    path = tmp_path / spec.weights_file
    source.save(path)  # legacy .h5 holding the model's weights, like the official file

    loaded = spec.build(input_size=32, weights_path=str(path))
    probe = keras.Model(loaded.input, next(
        layer for layer in loaded.layers if isinstance(layer, keras.layers.Normalization)).output)
    x = np.full((1, 32, 32, 3), 200.0, np.float32)
    expected = (200.0 / 255.0 - mean) / std / np.sqrt(std)
    np.testing.assert_allclose(probe.predict_on_batch(x)[0, 0, 0], expected, rtol=1e-5)


def test_a_weights_file_of_another_network_is_refused(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    other.save(path)
    with pytest.raises(ValueError, match="does not fit vgg16 .expected the official no-top file "
                                         "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        get_backbone("vgg16").build(input_size=32, weights_path=str(path))


@pytest.mark.slow
def test_load_weights_into_a_built_network_equals_building_from_the_file(tmp_path):
    import keras

    spec = get_backbone("vgg16")
    keras.utils.set_random_seed(1)
    source = spec.build(input_size=32)
    path = tmp_path / "vgg16.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(2)
    target = spec.build(input_size=32)
    spec.load_weights(target, str(path))
    built = spec.build(input_size=32, weights_path=str(path))
    for loaded, rebuilt, saved in zip(target.get_weights(), built.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(loaded, saved)
        np.testing.assert_array_equal(rebuilt, saved)
    with pytest.raises(ValueError, match="does not fit vgg19"):
        get_backbone("vgg19").load_weights(get_backbone("vgg19").build(input_size=32), str(path))

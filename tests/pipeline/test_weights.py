"""Resolving --weights: random, ImageNet from Keras' cache, a folder of official files, auto."""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np
import pytest

from leukoscope.features.backbones import get_backbone
from leukoscope.pipeline.weights import WeightsUnavailableError, keras_cache_dir, resolve_weights

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and no internet."""
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_internet(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_internet)
    return tmp_path / "keras_home" / "models"


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """A random VGG16 saved like the official no-top file (legacy .h5), and its network."""
    spec = get_backbone("vgg16")
    network = spec.build(input_size=32)
    folder = tmp_path_factory.mktemp("weights")
    network.save(folder / spec.weights_file)
    return folder, network


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_random_weights_have_no_file():
    resolved = resolve_weights(get_backbone("resnet50"), "random")
    assert (resolved.label, resolved.path, resolved.source) == ("random", None, "random")


def test_keras_cache_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_cache_dir() == tmp_path / "models"


def test_missing_imagenet_weights_name_the_file_and_where_to_put_it(offline):
    spec = get_backbone("resnet50")
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(spec, "imagenet")
    message = str(info.value)
    assert "ImageNet weights for resnet50 are not available" in message
    assert "'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'" in message
    assert spec.weights_url in message
    assert str(offline) in message and "--weights DIR" in message and "--weights random" in message
    assert "Name or service not known" in message


def test_auto_falls_back_to_random_with_a_warning(offline, caplog):
    with caplog.at_level(logging.WARNING, logger="leukoscope"):
        resolved = resolve_weights(get_backbone("vgg19"), "auto")
    assert resolved.label == "random" and resolved.path is None
    assert "falling back to RANDOM weights for vgg19" in caplog.text


def test_imagenet_file_in_the_keras_cache_is_used(offline, vgg16_file, monkeypatch):
    folder, _ = vgg16_file
    spec = get_backbone("vgg16")
    offline.mkdir(parents=True)
    (offline / spec.weights_file).write_bytes((folder / spec.weights_file).read_bytes())
    official = dataclasses.replace(spec, weights_md5=_md5(folder / spec.weights_file))
    resolved = resolve_weights(official, "imagenet")
    assert (resolved.label, resolved.source) == ("imagenet", "keras-cache")
    assert resolved.path == str((offline / spec.weights_file).resolve())


def test_folder_without_the_file_names_it(tmp_path):
    with pytest.raises(WeightsUnavailableError,
                       match=f"the weights folder '{tmp_path}' has no file 'efficientnetb0_notop.h5'"):
        resolve_weights(get_backbone("efficientnetb0"), str(tmp_path))


def test_neither_keyword_nor_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'imagenet1k' is none of 'auto', 'imagenet', 'random' and no existing folder"):
        resolve_weights(get_backbone("vgg16"), "imagenet1k")


def test_weights_from_a_folder_load_into_the_network(vgg16_file):
    folder, network = vgg16_file
    spec = get_backbone("vgg16")
    resolved = resolve_weights(spec, str(folder))
    assert resolved.source == "folder"
    # not the official checksum: recorded as a file, never as ImageNet
    assert resolved.label == f"file:{(folder / spec.weights_file).resolve()}"
    official = resolve_weights(dataclasses.replace(spec, weights_md5=_md5(folder / spec.weights_file)), str(folder))
    assert official.label == "imagenet" and len(official.sha256) == 64
    loaded = spec.build(input_size=32, weights_path=resolved.path)
    x = spec.preprocess(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    np.testing.assert_allclose(loaded.predict_on_batch(x), network.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    fresh = spec.build(input_size=32)
    assert not np.allclose(fresh.predict_on_batch(x), network.predict_on_batch(x))

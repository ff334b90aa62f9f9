"""Model work run in a subprocess under the Keras backend named by ``KERAS_BACKEND`` (tests/test_backends.py).

    python -m tests.backend_worker embed FOLDER
    python -m tests.backend_worker heads-refiner FOLDER
    python -m tests.backend_worker heads-refiner,embed FOLDER     (both, in this order)

``embed``: for every backbone in turn, writes ``FOLDER/<backbone>-<backend>.npz``, the
average- and max-pooled embeddings (:func:`~leukoscope.features.embeddings.embed_batch`) of
three synthetic cells at :data:`SIZE` pixels. Under TensorFlow the backbone is built with
random weights, which are saved to ``FOLDER/<backbone>.weights.h5`` and loaded back through
:meth:`~leukoscope.features.backbones.BackboneSpec.load_weights`; under any other backend
the worker waits for TensorFlow's ``.npz`` of that backbone (written after its weights) and
builds the backbone from the same file, so the two workers can run side by side. There the
initializers' random draws, which the loaded file replaces, are zeros (:func:`_without_random_draws`).

``heads-refiner``: trains the paper's heads one step, runs the refiner U-Net and trains it one
epoch (:func:`~leukoscope.segmentation.unet_training.fit_unet`), and writes what the test
checks to ``FOLDER/heads-refiner-<backend>.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import keras
import numpy as np

from leukoscope.classifiers import (
    build_head,
    build_pooled_head,
    compile_head,
    mirror_pairs,
    one_hot,
    predict_scores,
    unfreeze_top,
)
from leukoscope.classifiers.heads import DENSE_LAYER
from leukoscope.features import Backbone, build_extractor, embed_batch, get_backbone, prepare_batch
from leukoscope.segmentation import (
    DiceCrossEntropy,
    build_unet,
    encode_input,
    encode_target,
    fit_unet,
    refine_labels,
)
from tests.features.conftest import make_cell

#: Input side of every backbone: the smallest InceptionV3 takes (Xception needs 71).
SIZE = 75
#: Longest wait for TensorFlow's weights of one backbone, in seconds.
WAIT = 900


def _save(embeddings: dict[str, np.ndarray], path: Path) -> None:
    """The pooled embeddings under a temporary name, then renamed, so a reader never sees half a file."""
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, avg=embeddings["avg"], max=embeddings["max"])
    os.replace(partial, path)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"gave up after {WAIT} s waiting for {path} (did the TensorFlow worker fail?)")
        time.sleep(0.2)


@contextmanager
def _without_random_draws() -> Iterator[None]:
    """Keras' random initializers draw zeros instead (what loading a weights file overwrites).

    Under JAX every draw of a new weight shape is compiled anew (about half a second each on two
    cores: most of building a backbone, 90 of the test's 120 s); drawing zeros instead changes
    nothing the test compares, and a weight the file failed to load would differ from
    TensorFlow's random one all the same.
    """
    from keras.src.backend import random

    def zeros(shape: tuple[int, ...], *args: object, dtype: str | None = None, **kwargs: object) -> np.ndarray:
        return np.zeros(shape, dtype=dtype or "float32")

    with mock.patch.object(random, "uniform", zeros), mock.patch.object(random, "normal", zeros), \
            mock.patch.object(random, "truncated_normal", zeros):
        yield


def embed(folder: Path) -> None:
    backend = keras.backend.backend()
    images = [make_cell(seed, size=90)[0] for seed in range(3)]
    for name in (backbone.value for backbone in Backbone):
        spec = get_backbone(name)
        weights = folder / f"{name}.weights.h5"
        if backend == "tensorflow":
            keras.utils.set_random_seed(0)
            model = spec.build(input_size=SIZE)
            model.save_weights(weights)
            spec.load_weights(model, str(weights))  # as build(weights_path=...) does under the other backend
        else:
            _wait_for(folder / f"{name}-tensorflow.npz")
            with _without_random_draws():
                model = spec.build(input_size=SIZE, weights_path=str(weights))
        batch = prepare_batch(images, size=SIZE, preprocess=spec.preprocess)
        _save(embed_batch(build_extractor(model), batch), folder / f"{name}-{backend}.npz")
        keras.backend.clear_session()
        print(f"{name}: done", flush=True)


def _dense_kernel(model: keras.Model) -> np.ndarray:
    return np.array(model.get_layer(DENSE_LAYER).get_weights()[0])


def heads_and_refiner(folder: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 4)
    results: dict[str, object] = {"backend": keras.backend.backend()}

    pooled = (rng.normal(size=(8, 6)) + y[:, None]).astype(np.float32)
    head = compile_head(build_pooled_head(6, seed=0))
    before = _dense_kernel(head)
    results["pooled_loss"] = float(head.train_on_batch(mirror_pairs(pooled, pooled[::-1]), one_hot(y))[0])
    results["pooled_head_changed"] = bool(np.abs(_dense_kernel(head) - before).max() > 0)
    results["pooled_scores"] = predict_scores(head, mirror_pairs(pooled)).tolist()

    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="tiny_conv")(inputs), name="tiny_backbone")
    full = compile_head(build_head(backbone, seed=0))
    images = rng.normal(size=(8, 16, 16, 3)).astype(np.float32)
    results["unfrozen_layers"] = unfreeze_top(full, 1)
    full = compile_head(full)
    conv_before, dense_before = np.array(backbone.get_layer("tiny_conv").get_weights()[0]), _dense_kernel(full)
    results["full_loss"] = float(full.train_on_batch(images, one_hot(y))[0])
    results["full_head_changed"] = bool(np.abs(_dense_kernel(full) - dense_before).max() > 0)
    results["backbone_top_changed"] = bool(
        np.abs(np.array(backbone.get_layer("tiny_conv").get_weights()[0]) - conv_before).max() > 0)

    yy, xx = np.mgrid[:40, :40]
    radius = np.hypot(yy - 20, xx - 20)
    image = np.full((40, 40, 3), 230, np.uint8)
    image[radius < 12] = (150, 120, 200)
    image[radius < 6] = (80, 30, 120)
    labels = (radius < 12).astype(np.uint8) + (radius < 6)
    refiner = build_unet(side=32, depth=2, width=4)
    (refined,) = refine_labels(refiner, [image], [labels])
    results["refiner_keeps_threshold_labels"] = bool(np.array_equal(refined, labels))
    x, window = encode_input(image, labels, side=32)
    target = encode_target(labels, window, side=32)[None]
    log, _ = fit_unet(refiner, x[None], target, x[None], target, epochs=1, patience=1, batch_size=1,
                      learning_rate=1e-3, seed=0, quiet=True)
    results["refiner_loss"] = float(log["loss"].iloc[0])
    results["refiner_loss_is_dice_cross_entropy"] = isinstance(refiner.loss, DiceCrossEntropy)
    (folder / f"heads-refiner-{results['backend']}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    commands, out = sys.argv[1], Path(sys.argv[2])
    for command in commands.split(","):
        {"embed": embed, "heads-refiner": heads_and_refiner}[command](out)

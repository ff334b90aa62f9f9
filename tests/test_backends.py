"""The networks run under JAX as under TensorFlow: backbones, the paper's heads, the refiner U-Net.

Each backend runs in its own process (``KERAS_BACKEND`` is read when Keras is imported), doing
the work of :mod:`tests.backend_worker`; both run once, side by side, for the module's tests.
Skipped where JAX is not installed (``pip install 'leukoscope[jax]'``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leukoscope.features import POOLINGS, Backbone
from tests.conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="JAX is not installed: pip install 'leukoscope[jax]'"),
]

#: Largest difference allowed between the backends' embeddings, relative to the largest
#: TensorFlow value of that embedding (random weights put the embeddings' scales anywhere
#: from 1e-5 to 1e2, so a fixed absolute bound would mean nothing).
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder where both workers wrote their results.

    Side by side: the TensorFlow worker embeds; the JAX worker first trains the heads and the
    refiner, then loads each backbone's weights as soon as TensorFlow wrote them.
    """
    folder = tmp_path_factory.mktemp("backends")
    workers = []
    for commands, backend in (("embed", "tensorflow"), ("heads-refiner,embed", "jax")):
        log = folder / f"{backend}.log"
        workers.append((subprocess.Popen([sys.executable, "-m", "tests.backend_worker", commands, str(folder)],
                                         cwd=REPO, env={**os.environ, "KERAS_BACKEND": backend},
                                         stdout=log.open("w"), stderr=subprocess.STDOUT), log))
    try:
        for process, _ in workers:
            process.wait(timeout=1200)
    finally:
        for process, _ in workers:
            process.kill()
    for process, log in workers:
        assert process.returncode == 0, log.read_text()[-4000:]
    return folder


def test_backbone_weights_saved_under_tensorflow_give_the_same_embeddings_under_jax(worked):
    print("\nbackbone pooling max|TF| max|JAX-TF|/max|TF|")  # shown with pytest -s
    for name in (backbone.value for backbone in Backbone):
        reference, jax = np.load(worked / f"{name}-tensorflow.npz"), np.load(worked / f"{name}-jax.npz")
        for pooling in POOLINGS:
            expected = reference[pooling]
            assert expected.shape == jax[pooling].shape == (3, expected.shape[1])
            scale = float(np.abs(expected).max())
            assert scale > 0 and np.ptp(expected, axis=0).max() > 0, f"{name} {pooling}: a constant embedding"
            difference = float(np.abs(jax[pooling] - expected).max()) / scale
            print(f"{name} {pooling} {scale:.1e} {difference:.1e}")
            assert difference <= RELATIVE_TOLERANCE, f"{name} {pooling}: max |JAX - TF| / max |TF| = {difference:.2e}"


def test_heads_train_and_the_refiner_predicts_under_jax(worked):
    results = json.loads((worked / "heads-refiner-jax.json").read_text())
    assert results["backend"] == "jax"
    assert results["pooled_head_changed"] and math.isfinite(results["pooled_loss"])
    assert all(0.0 <= p <= 1.0 for p in results["pooled_scores"])
    assert results["unfrozen_layers"] == 1
    assert results["full_head_changed"] and results["backbone_top_changed"] and math.isfinite(results["full_loss"])
    assert results["refiner_keeps_threshold_labels"]  # an untrained refiner returns the threshold labels
    assert math.isfinite(results["refiner_loss"]) and results["refiner_loss_is_dice_cross_entropy"]

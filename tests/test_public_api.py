"""The public names of the three packages, and which of them load Keras."""

from __future__ import annotations

import subprocess
import sys

import pytest

import leukoscope.segmentation
from tests.conftest import REPO

KERAS_BACKED = ("DiceCrossEntropy", "build_unet")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return out.stdout.strip()


def test_importing_the_packages_does_not_import_keras():
    code = ("import sys, leukoscope.segmentation, leukoscope.features, leukoscope.classifiers; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    assert _run(code) == "[]"


def test_keras_backed_names_are_listed_but_not_yet_loaded():
    assert set(KERAS_BACKED) <= set(leukoscope.segmentation.__all__)
    assert set(KERAS_BACKED) <= set(dir(leukoscope.segmentation))
    with pytest.raises(AttributeError, match="module 'leukoscope.segmentation' has no attribute 'segment_cells'"):
        leukoscope.segmentation.segment_cells  # noqa: B018 - a typo must fail as usual


@pytest.mark.slow
def test_a_keras_backed_name_loads_its_module_on_first_use():
    code = ("import sys, leukoscope.segmentation as s; before = 'keras' in sys.modules; lazy = s.build_unet; "
            "after = 'keras' in sys.modules; from leukoscope.segmentation.unet import build_unet; "
            "print(before, after, lazy is build_unet, s.DiceCrossEntropy.__module__)")
    assert _run(code) == "False True True leukoscope.segmentation.unet"

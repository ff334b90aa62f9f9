"""What a command prints when its stderr is a log file (issue #14, case 16).

Real ``leukoscope`` processes whose stderr is a pipe (as under CI, nohup or a scheduler), loading
a CNN (VGG16 at 32 px) with ``--weights auto`` on a machine where the ImageNet file cannot be had:
no TensorFlow start-up lines, no Keras download line, the random-weights warning once per command
however many stages build the network, no carriage-return progress, and with ``--quiet`` nothing
but warnings.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from .demo_runs import command
from .integrity_data import class_folders, demo_pool

pytestmark = pytest.mark.slow

PER_CLASS = 6
CONFIG = """\
[run]
jobs = 1
[segmentation]
background = "black"
[features]
families = ["morphology"]
backbones = ["vgg16"]
weights = "auto"
input_size = 32
batch_size = 4
[heads]
backbones = ["vgg16"]
epochs = 1
input_size = 32
[compare]
protocol = "stratified-cv"
folds = 2
inner_folds = 2
models = ["logreg"]
feature_sets = ["cnn", "head"]
bootstrap = 20
"""
#: what TensorFlow and Keras print by themselves
NOISE = ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "This TensorFlow binary", "Downloading data from")
FALLBACK = "falling back to RANDOM weights for vgg16"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """``compare --quiet`` (embeddings and heads both build VGG16), then ``features`` without --quiet."""
    root = tmp_path_factory.mktemp("quiet")
    data = class_folders(root / "data", demo_pool(root / "pool", cells=32), PER_CLASS)
    (root / "config.toml").write_text(CONFIG, encoding="utf-8")
    (root / "keras").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env["KERAS_HOME"] = str(root / "keras")  # no weights file: auto falls back to random weights
    base = ["--config", str(root / "config.toml"), "--data", str(data), "--out", str(root / "run")]
    return {name: subprocess.run(command(*args), capture_output=True, text=True, timeout=900, env=env)
            for name, args in (("quiet", ["compare", *base, "--quiet"]), ("plain", ["features", *base]))}


@pytest.mark.parametrize("name", ["quiet", "plain"])
def test_no_framework_lines_and_no_carriage_returns(runs, name):
    done = runs[name]
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in NOISE)], done.stderr
    assert "\r" not in done.stderr


@pytest.mark.parametrize("name", ["quiet", "plain"])
def test_the_random_weights_warning_comes_once_per_command(runs, name):
    assert runs[name].stderr.count(FALLBACK) == 1, runs[name].stderr


def test_quiet_prints_warnings_only(runs):
    lines = runs["quiet"].stderr.splitlines()
    assert lines and all(line.startswith("leukoscope: ") for line in lines), lines
    assert [line for line in lines if FALLBACK not in line] == [], lines


def test_progress_off_a_terminal_is_a_line_per_tenth_at_most(runs):
    progress = re.findall(r"^leukoscope: (.+?): \d+/(\d+) \w+ \(\d+%\)$", runs["plain"].stderr, re.MULTILINE)
    assert progress, runs["plain"].stderr
    for desc in {d for d, _ in progress}:
        assert sum(d == desc for d, _ in progress) <= 10, desc

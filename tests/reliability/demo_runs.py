"""A small demo dataset, its config, and helpers to run and compare ``leukoscope`` runs on it.

The config runs segmentation, every handcrafted family and one CNN (VGG16, random weights, 32
pixel input) so that a whole ``features`` run takes seconds; ``compare`` is cut to logistic
regression on two feature sets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from leukoscope.pipeline.atomic import TMP_MARK
from leukoscope.pipeline.report_html import STAMP

#: generate_demo arguments: 24 cells of 6 subjects (4 train, 2 preliminary-test subjects)
DEMO: dict[str, Any] = {"subjects": 6, "cells": 24, "seed": 0}
CONFIG = """\
[data]
path = "{data}"
[run]
jobs = 2
quiet = true
[segmentation]
background = "black"
[features]
backbones = ["vgg16"]
weights = "random"
input_size = 32
batch_size = 4
[heads]
backbones = []
[compare]
models = ["logreg"]
feature_sets = ["handcrafted", "cnn"]
inner_folds = 2
bootstrap = 20
"""
TIMEOUT = 180  # seconds one run may take on a loaded machine
#: the files of a run that hold times or the command line, so differ between runs
TIMESTAMPED = {"run.json"}
#: the files that hold one such line, the report's run stamp (date and command), left out of comparisons
STAMPED = {"report.md", "report.html"}


def command(*args: str) -> list[str]:
    """The ``leukoscope`` command line as run by this Python (the console script's entry point)."""
    return [sys.executable, "-m", "leukoscope.pipeline.cli", *args]


def start(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``leukoscope ARGS`` in its own process group (as a shell job), stderr into ``log``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "w", encoding="utf-8") as err:
        return subprocess.Popen(command(*args), stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=True)


def run_files(run: Path, under: str = "") -> dict[str, bytes]:
    """Every file below ``run / under`` (relative path -> bytes), the time-stamped ones left out and the
    reports' run stamps removed."""
    root = run / under

    def content(path: Path) -> bytes:
        data = path.read_bytes()
        return STAMP.sub("", data.decode("utf-8")).encode("utf-8") if path.name in STAMPED else data

    return {p.relative_to(run).as_posix(): content(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in TIMESTAMPED}


def assert_same_files(got: Path, expected: Path, under: str = "") -> None:
    """The two runs hold the same files below ``under``, byte for byte (run.json excepted)."""
    mine, theirs = run_files(got, under), run_files(expected, under)
    assert sorted(mine) == sorted(theirs)
    differ = [name for name in theirs if mine[name] != theirs[name]]
    assert not differ, f"files differ from the reference run: {differ}"


def temporary_files(run: Path) -> list[Path]:
    """Half-written files (:func:`leukoscope.pipeline.atomic.atomic_path`) below ``run``."""
    return [p for p in run.rglob("*") if TMP_MARK in p.name]


def live_members(group: int) -> list[int]:
    """Processes of a process group that still run (zombies waiting for init do not)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        return [group]
    live = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if int(pgrp) == group and state != "Z":
            live.append(int(stat.parent.name))
    return live


def wait_for_group_exit(process: subprocess.Popen, *, within: float) -> None:
    """The run's main process and every worker it started end within ``within`` seconds."""
    process.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + within
    while live := live_members(process.pid):
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"processes {live} of the run outlived it by {within:.0f} s")
        time.sleep(0.05)

"""Killed and interrupted runs: ``leukoscope features`` killed with SIGKILL in each step, or
stopped with Ctrl-C, then run again, ends with the files of an uninterrupted run.

The runs are real ``leukoscope`` processes with two loky workers. A SIGKILL goes to the main
process only (as from ``kill -9`` or the OOM killer): its workers must exit by themselves.
Ctrl-C goes to the whole process group, as a terminal sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.atomic import TMP_MARK
from leukoscope.pipeline.rundir import RunDir

from .demo_runs import DEMO, TIMEOUT, assert_same_files, start, temporary_files, wait_for_group_exit

pytestmark = pytest.mark.slow

#: where each kill lands: after this many cache entries of a step exist, before the step ends
KILL_POINTS = [
    ("segmentation/cache/segment-*/*.npz", 6, "segmentation/segmentation.csv"),
    ("features/cache/handcrafted-*/*.npz", 6, "features/handcrafted.csv"),
    ("features/cache/cnn_vgg16-*/*.npz", 8, "features/cnn_vgg16.csv"),
]
ENTRIES = "*/cache/*/*.npz"


def _signal_when(process: subprocess.Popen, run: Path, pattern: str, count: int, send) -> None:
    """Call ``send(pid)`` once ``count`` files match ``pattern`` in the run directory."""
    deadline = time.monotonic() + TIMEOUT
    while len(list(run.glob(pattern))) < count:
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit code {process.returncode}) before {count} files matched {pattern}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {count} files matched {pattern} within {TIMEOUT} s")
        time.sleep(0.01)
    send(process.pid)


def _entries(run: Path) -> dict[Path, tuple[int, int]]:
    """Every finished cache entry with its inode and modification time (a rewrite changes both)."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in run.glob(ENTRIES)}


def test_killed_in_every_step_then_resumed_gives_the_uninterrupted_files(demo_config, reference_run, tmp_path):
    run = tmp_path / "run"
    args = ["features", "--config", str(demo_config), "--out", str(run)]
    finished: dict[Path, tuple[int, int]] = {}
    for attempt, (pattern, count, output) in enumerate(KILL_POINTS):
        process = start(args, tmp_path / f"stderr{attempt}.txt")
        _signal_when(process, run, pattern, count, lambda pid: os.kill(pid, signal.SIGKILL))
        wait_for_group_exit(process, within=10)  # the loky workers notice and stop writing
        assert process.returncode == -signal.SIGKILL
        assert not (run / output).exists(), f"killed after {output} was written: move the kill point"
        entries = _entries(run)
        assert entries.items() >= finished.items(), "a finished cache entry was rewritten"
        finished = entries
    stray = next(run.glob("features/cache/handcrafted-*")) / f".0.npz{TMP_MARK}99999"
    stray.write_bytes(b"half an entry")  # as a kill in the middle of a write leaves it

    process = start(args, tmp_path / "stderr_last.txt")
    wait_for_group_exit(process, within=10)
    assert process.returncode == 0, (tmp_path / "stderr_last.txt").read_text()
    assert_same_files(run, reference_run)
    assert not temporary_files(run)
    assert _entries(run).items() >= finished.items(), "finished work was redone"
    info = RunDir(run).read_info()
    assert info["status"] == "ok"
    handcrafted = info["features"]["handcrafted"]
    assert (handcrafted["computed"], handcrafted["from_cache"]) == (0, DEMO["cells"])
    cnn = info["features"]["cnn_vgg16"]
    cached_before = sum(1 for p in finished if "cnn_vgg16-" in str(p))
    assert cnn["from_cache"] == cached_before >= 8 and cnn["computed"] == DEMO["cells"] - cached_before


def test_ctrl_c_stops_the_workers_and_says_how_to_resume(demo_config, reference_run, tmp_path):
    run = tmp_path / "run"
    args = ["features", "--config", str(demo_config), "--out", str(run), "--backbones", "none"]
    process = start(args, tmp_path / "stderr.txt")
    _signal_when(process, run, "features/cache/handcrafted-*/*.npz", 4,
                 lambda pid: os.killpg(pid, signal.SIGINT))
    stopped = time.monotonic()
    wait_for_group_exit(process, within=10)
    assert time.monotonic() - stopped < 10
    assert process.returncode == 130
    assert "interrupted; run the same command again to resume" in (tmp_path / "stderr.txt").read_text()
    assert RunDir(run).read_info()["status"] == "interrupted"
    assert not (run / "features" / "handcrafted.csv").exists()

    assert cli.main(args) == 0
    for name in ("segmentation/segmentation.csv", "features/handcrafted.csv", "features/columns.csv"):
        assert (run / name).read_bytes() == (reference_run / name).read_bytes(), name
    assert not temporary_files(run)

"""One command per run directory, and no worker outliving its command (issue #14, cases 9 and 10).

Real processes: a ``leukoscope`` command started with :func:`tests.reliability.demo_runs.start`,
a second command on the same run directory, processes killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.layout import RunLayout
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.runlock import RunDirBusyError, RunLock

from .demo_runs import TIMEOUT, start, wait_for_group_exit
from .integrity_data import class_folders, demo_pool, write_config

PER_CLASS = 6
#: seconds after a worker process appears: its tasks are queued, it still imports (about 1-2 s)
WORKER_STARTING = 0.3
HOLDER = """\
import sys, time
from leukoscope.pipeline.runlock import RunLock
lock = RunLock(sys.argv[1], "features")
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("locking")
    data = class_folders(root / "data", demo_pool(root / "pool", cells=32), PER_CLASS)
    return data, write_config(root / "config.toml")


def _wait_for(condition, what: str, process: subprocess.Popen | None = None, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the command ended (exit code {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {within:.0f} s")
        time.sleep(0.01)


def _loky_workers(pid: int) -> list[int]:
    """Loky worker processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            line = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"LokyProcess" in line:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_second_command_is_refused_while_the_first_runs_and_the_first_finishes(dataset, tmp_path, capsys):
    data, config = dataset
    run = tmp_path / "run"
    first = start(["features", "--config", str(config), "--data", str(data), "--out", str(run)], tmp_path / "first.txt")
    try:
        _wait_for(lambda: list(run.glob("segmentation/cache/*/*.npz")), "segmentation cache entry", first)
        code = cli.main(["features", "--config", str(config), "--data", str(data), "--out", str(run)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert len(err) == 1 and f"in use by leukoscope features (pid {first.pid}" in err[0], err
        assert first.wait(timeout=TIMEOUT) == 0, (tmp_path / "first.txt").read_text()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    info = RunDir(run).read_info()
    assert info["status"] == "ok" and info["stages"] == ["segmentation", "handcrafted", "statistics"]
    assert not RunLayout(run).lock_path.exists()


def test_a_lock_held_by_a_live_process_refuses_and_is_taken_over_once_it_is_killed(tmp_path):
    lock_path = tmp_path / ".leukoscope.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusyError, match=rf"in use by leukoscope features \(pid {holder.pid} on "):
            RunLock(lock_path, "segment").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert json.loads(lock_path.read_text())["pid"] == holder.pid  # the dead holder's lock file is still there
    with RunLock(lock_path, "segment"):
        assert json.loads(lock_path.read_text())["pid"] == os.getpid()
    assert not lock_path.exists()


def test_a_lock_file_of_a_dead_process_is_taken_over_by_a_command(dataset, tmp_path):
    data, config = dataset
    run = tmp_path / "run"
    assert cli.main(["segment", "--config", str(config), "--data", str(data), "--out", str(run)]) == 0
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    RunLayout(run).lock_path.write_text(json.dumps({"pid": int(gone.stdout), "command": "segment"}))
    assert cli.main(["segment", "--config", str(config), "--data", str(data), "--out", str(run)]) == 0
    assert not RunLayout(run).lock_path.exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_workers_exit_when_the_command_is_killed_while_they_start(dataset, tmp_path):
    data, config = dataset
    run = tmp_path / "run"
    process = start(["segment", "--config", str(config), "--data", str(data), "--out", str(run), "--jobs", "2"],
                    tmp_path / "stderr.txt")
    try:
        _wait_for(lambda: _loky_workers(process.pid), "worker process", process)
        time.sleep(WORKER_STARTING)  # the tasks are queued, the workers still import their modules
    finally:
        os.kill(process.pid, signal.SIGKILL)  # the main process only, as the OOM killer does
    wait_for_group_exit(process, within=10)  # orphans that took the queued tasks would write for a minute
    assert not list(run.glob("segmentation/masks/*.png"))

"""Dask (issue #14, case 15): ``--scheduler`` implies the Dask backend, an unreachable scheduler is
one line within seconds, the work runs on the cluster whatever its thread count, and the workers
are checked to write the run directory.

The cluster is a local one with one worker process of one thread, reached through its address as
a remote cluster would be.
"""

from __future__ import annotations

import os
import time

import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.dask_cluster import CONNECT_TIMEOUT, DaskSchedulerError, check_cluster, dask_client
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import RunDir

from .integrity_data import class_folders, demo_pool, write_config

distributed = pytest.importorskip("distributed")
UNREACHABLE = "tcp://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def _transitions(cluster) -> int:
    return cluster.scheduler.transition_counter


def test_the_scheduler_flag_implies_the_dask_backend():
    args = cli.build_parser().parse_args(["segment", "--scheduler", "tcp://host:8786"])
    config = cli.resolve_config(args)
    assert config.run.backend.value == "dask" and config.run.scheduler == "tcp://host:8786"


def test_an_unreachable_scheduler_is_one_line_within_ten_seconds(tmp_path, capsys):
    started = time.monotonic()
    with pytest.raises(DaskSchedulerError, match=f"cannot reach the Dask scheduler at '{UNREACHABLE}' within"):
        with dask_client(UNREACHABLE):
            pass
    assert time.monotonic() - started < 10 and CONNECT_TIMEOUT < 10
    data = class_folders(tmp_path / "data", demo_pool(tmp_path / "pool", cells=12), 2)
    capsys.readouterr()
    assert cli.main(["segment", "--config", str(write_config(tmp_path / "c.toml")), "--data", str(data),
                     "--out", str(tmp_path / "run"), "--scheduler", UNREACHABLE]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0] and "Traceback" not in err[0]
    assert RunDir(tmp_path / "run").read_info()["status"] == "failed"


def test_work_runs_on_a_one_thread_cluster(cluster):
    before = _transitions(cluster)
    pids = list(parallel_map(lambda _item: os.getpid(), range(4), backend="dask", scheduler=cluster.scheduler_address,
                             quiet=True))
    assert len(pids) == 4 and os.getpid() not in pids  # computed by the worker process, not here
    assert _transitions(cluster) > before  # the scheduler saw the tasks


def test_the_workers_must_write_the_run_directory(cluster, tmp_path):
    check_cluster(cluster.scheduler_address, tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probes are removed
    with pytest.raises(DaskSchedulerError, match=r"cannot write the run directory .*shared file system"):
        check_cluster(cluster.scheduler_address, tmp_path / "missing")


@pytest.mark.slow
def test_a_command_runs_on_the_cluster(cluster, tmp_path):
    data = class_folders(tmp_path / "data", demo_pool(tmp_path / "pool", cells=12), 2)
    before = _transitions(cluster)
    assert cli.main(["segment", "--config", str(write_config(tmp_path / "c.toml")), "--data", str(data),
                     "--out", str(tmp_path / "run"), "--scheduler", cluster.scheduler_address]) == 0
    assert _transitions(cluster) > before
    info = RunDir(tmp_path / "run").read_info()
    assert info["status"] == "ok" and info["config"]["run"]["backend"] == "dask"
    assert info["segmentation"]["computed"] == 4

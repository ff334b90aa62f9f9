"""Worker counts (issue #14, case 11): ``--jobs`` is capped at the cores available and at the
number of items, ``-1`` means every core, and a cap is said once."""

from __future__ import annotations

import logging
import os

from leukoscope.pipeline import cli
from leukoscope.pipeline.parallel import available_cores, capped_jobs, parallel_map
from leukoscope.pipeline.rundir import RunDir

from .integrity_data import class_folders, demo_pool, write_config


def _pid(_item: int) -> int:
    return os.getpid()


def test_available_cores_follow_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected >= 1


def test_jobs_above_the_cores_are_lowered_with_a_note(caplog):
    cores = available_cores()
    with caplog.at_level(logging.INFO, logger="leukoscope"):
        assert capped_jobs(10000) == cores
    assert f"--jobs 10000 lowered to {cores}" in caplog.text
    caplog.clear()
    assert capped_jobs(1) == 1 and not caplog.text


def test_the_command_line_takes_minus_one_as_every_core():
    parse = cli.build_parser().parse_args
    assert cli.resolve_config(parse(["segment", "--jobs", "-1"])).run.jobs == available_cores()
    assert cli.resolve_config(parse(["segment", "--jobs", "10000"])).run.jobs == available_cores()
    assert cli.resolve_config(parse(["segment", "--jobs", "1"])).run.jobs == 1


def test_no_more_workers_than_items_or_cores():
    pids = list(parallel_map(_pid, range(3), jobs=64, quiet=True))
    assert len(pids) == 3
    assert len(set(pids)) <= min(3, available_cores())
    assert os.getpid() not in pids or available_cores() == 1


def test_a_command_with_a_huge_job_count_runs_with_the_cores(tmp_path):
    data = class_folders(tmp_path / "data", demo_pool(tmp_path / "pool", cells=12), 2)
    run = tmp_path / "run"
    assert cli.main(["segment", "--config", str(write_config(tmp_path / "c.toml")), "--data", str(data),
                     "--out", str(run), "--jobs", "10000"]) == 0
    assert RunDir(run).read_info()["config"]["run"]["jobs"] == available_cores()

import platform
import sys

import pytest

from leukoscope.pipeline.parallel import keep_freed_memory, parallel_map


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize(("jobs", "backend"), [(1, "loky"), (2, "threading"), (2, "loky")])
def test_results_in_input_order_whatever_the_backend(jobs, backend):
    got = list(parallel_map(_square, range(50), jobs=jobs, backend=backend, quiet=True))
    assert got == [x * x for x in range(50)]


def _pid(_: int) -> int:
    import os
    import time

    time.sleep(0.01)  # so that both workers take items
    return os.getpid()


def test_loky_workers_are_reused_from_one_call_to_the_next(monkeypatch):
    """Every stage calls parallel_map; new workers each time would import the package again."""
    monkeypatch.setattr("leukoscope.pipeline.parallel.available_cores", lambda: 2)
    first = set(parallel_map(_pid, range(20), jobs=2, quiet=True))
    second = set(parallel_map(_pid, range(20), jobs=2, quiet=True))
    assert len(first) == 2 and first == second


def test_generator_input_with_total():
    got = list(parallel_map(_square, (x for x in range(5)), jobs=2, backend="threading", quiet=True, total=5))
    assert got == [0, 1, 4, 9, 16]


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results():
    pytest.importorskip("distributed")
    got = list(parallel_map(_square, range(20), jobs=2, backend="dask", quiet=True))
    assert got == [x * x for x in range(20)]


def test_keep_freed_memory_applies_on_glibc_only():
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is on_glibc

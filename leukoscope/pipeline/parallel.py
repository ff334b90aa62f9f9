"""Ordered, streaming parallel map over samples: loky processes or threads (joblib), or Dask.

The number of workers is capped at the number of items and at the cores available
(:func:`capped_jobs`, :func:`available_cores`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import joblib

from leukoscope.pipeline.choices import Backend
from leukoscope.pipeline.config_rules import all_cores
from leukoscope.pipeline.console import Progress
from leukoscope.pipeline.dask_cluster import dask_client, dask_map

log = logging.getLogger("leukoscope")

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    return all_cores(-1)


def capped_jobs(jobs: int) -> int:
    """``jobs`` lowered to the cores available (:func:`available_cores`), with a note when lowered.

    More processes than cores only add start-up time and memory: each worker is a Python process
    with its own copy of the libraries.
    """
    cores = available_cores()
    if jobs > cores:
        log.info("--jobs %d lowered to %d: only %d cores are available to this process", jobs, cores, cores)
        return cores
    return jobs


#: seconds between two checks of a worker process that its parent still lives
PARENT_POLL = 0.2


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)  # the parent died without shutting us down (SIGKILL, OOM killer): stop writing


#: glibc ``mallopt`` parameters and the values set in loky workers (see :func:`keep_freed_memory`)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
WORKER_MALLOC = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 64 << 20}


def keep_freed_memory() -> bool:
    """Let glibc's ``malloc`` reuse freed image buffers instead of returning them to the system.

    A worker allocates and frees the same few image-sized arrays (0.2-1 MB) for every image;
    above ``malloc``'s default 128 kB threshold each one is a fresh ``mmap`` whose pages fault
    in again, which on virtual machines costs as much as decoding the image. Serving them from
    the heap (requests up to 32 MB; free memory at the top of the heap is given back once it
    exceeds 64 MB) removes that cost for at most 64 MB more resident memory per worker. Does
    nothing where the C library is not glibc.

    Returns
    -------
    bool
        Whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return all(mallopt(param, value) == 1 for param, value in WORKER_MALLOC.items())


def init_worker(parent: int) -> None:
    """The initializer of every loky worker: :func:`keep_freed_memory`, then exit with the parent.

    Loky workers outlive a parent killed with SIGKILL (or by the OOM killer) and would go on
    writing into the run directory; a daemon thread sees that the worker's parent is no longer
    ``parent`` (the main process's id, passed in when the pool is made, so a parent that died
    while the worker was starting is noticed too) and exits. (Dask workers die with their nanny.)
    """
    keep_freed_memory()
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent,), name="leukoscope-parent-watch", daemon=True).start()


@functools.cache
def _initializer(parent: int) -> Callable[[], None]:
    """The loky workers' initializer for the process ``parent``: one object per process, because
    loky reuses its workers only for an equal initializer, and two partials are never equal (a
    new one per call started new workers for every stage, each importing the package again)."""
    return functools.partial(init_worker, parent)


class _InWorker:
    """Run ``func`` in a worker with OpenCV's own thread pool off (the workers are the parallelism)."""

    def __init__(self, func: Callable[[T], R]) -> None:
        self.func = func

    def __call__(self, item: T) -> R:
        import cv2

        if cv2.getNumThreads() != 1:
            cv2.setNumThreads(1)
        return self.func(item)


def parallel_map(
    func: Callable[[T], R],
    items: Sequence[T] | Iterable[T],
    *,
    jobs: int = 1,
    backend: Backend | str = Backend.LOKY,
    scheduler: str = "",
    desc: str = "",
    quiet: bool = False,
    total: int | None = None,
    unit: str = "img",
) -> Iterator[R]:
    """Apply ``func`` to every item and yield the results in input order, as they come.

    Results stream out (joblib's generator mode, bounded pre-dispatch), so memory stays
    bounded whatever the number of items. The results are the same whatever ``jobs`` and
    ``backend``; only the speed differs.

    Parameters
    ----------
    func : callable
        A picklable function of one item.
    items : sequence or iterable
        The work items.
    jobs : int
        Number of workers, at most one per item and per available core; 1 runs in this process.
    backend : Backend or str
        ``loky`` (processes), ``threading``, or ``dask`` (on the scheduler's workers, whatever
        ``jobs`` says: :func:`~leukoscope.pipeline.dask_cluster.dask_map`).
    scheduler : str
        Address of an existing Dask scheduler; empty starts a local cluster.
    desc : str
        Label of the progress (:class:`~leukoscope.pipeline.console.Progress`).
    quiet : bool
        Show no progress.
    total : int, optional
        Number of items, for the progress bar, when ``items`` has no length.
    unit : str
        What one item is, for the progress bar (``img``, ``fit``...).
    """
    backend = Backend(backend)
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    workers = min(jobs, available_cores(), total if total is not None else jobs)
    bar = Progress(total, desc, quiet=quiet, unit=unit)
    with contextlib.ExitStack() as stack:
        if backend is Backend.DASK:
            client = stack.enter_context(dask_client(scheduler, jobs=max(workers, 1)))
            results: Iterable[R] = dask_map(client, _InWorker(func), items)
        elif workers <= 1:
            results = map(func, items)
        else:
            if backend is Backend.LOKY:
                stack.enter_context(joblib.parallel_config(backend="loky", initializer=_initializer(os.getpid())))
            runner = joblib.Parallel(
                n_jobs=workers,
                backend=backend.value if backend is Backend.THREADING else None,
                return_as="generator",
                pre_dispatch="4*n_jobs",
                batch_size="auto",
            )
            worker = _InWorker(func) if backend is not Backend.THREADING else func
            results = runner(joblib.delayed(worker)(item) for item in items)
        try:
            for result in results:
                bar.update(1)
                yield result
        finally:
            bar.close()

"""Ordered, streaming parallel map over samples with joblib (loky, threads or Dask)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import joblib
from tqdm.auto import tqdm

from leukoscope.pipeline.choices import Backend

T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def dask_client(scheduler: str = "", *, jobs: int = 1) -> Iterator[Any]:
    """Connect to a Dask scheduler, or start a local cluster of ``jobs`` processes.

    Raises
    ------
    RuntimeError
        ``dask.distributed`` is not installed (``pip install 'leukoscope[dask]'``).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "--backend dask needs dask.distributed; install it with: pip install 'leukoscope[dask]'"
        ) from exc
    if scheduler:
        with Client(scheduler) as client:
            yield client
    else:
        with LocalCluster(
            n_workers=max(jobs, 1), threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, Client(cluster) as client:
            yield client


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


def init_worker() -> None:
    """The initializer of every loky worker: :func:`keep_freed_memory`, then exit with the parent.

    Loky workers outlive a parent killed with SIGKILL (or by the OOM killer) and would go on
    writing into the run directory; a daemon thread notices the new parent process id and
    exits. (Dask workers die with their nanny.)
    """
    keep_freed_memory()
    threading.Thread(target=_exit_with, args=(os.getppid(),), name="leukoscope-parent-watch", daemon=True).start()


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
        Number of workers; 1 runs in this process.
    backend : Backend or str
        ``loky`` (processes), ``threading``, or ``dask`` (through joblib's Dask backend).
    scheduler : str
        Address of an existing Dask scheduler; empty starts a local cluster.
    desc : str
        Label of the tqdm progress bar.
    quiet : bool
        Hide the progress bar.
    total : int, optional
        Number of items, for the progress bar, when ``items`` has no length.
    unit : str
        What one item is, for the progress bar (``img``, ``fit``...).
    """
    backend = Backend(backend)
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = tqdm(total=total, desc=desc, disable=quiet, unit=unit, dynamic_ncols=True)
    with contextlib.ExitStack() as stack:
        if jobs <= 1 and backend is not Backend.DASK:
            results: Iterable[R] = map(func, items)
        else:
            if backend is Backend.DASK:
                stack.enter_context(dask_client(scheduler, jobs=jobs))
                stack.enter_context(joblib.parallel_config(backend="dask"))
                n_jobs = -1
            else:
                if backend is Backend.LOKY:
                    stack.enter_context(joblib.parallel_config(backend="loky", initializer=init_worker))
                n_jobs = jobs
            runner = joblib.Parallel(
                n_jobs=n_jobs,
                backend=backend.value if backend is Backend.THREADING else None,
                return_as="generator",
                pre_dispatch="4*n_jobs",
                batch_size=1 if backend is Backend.DASK else "auto",
            )
            worker = _InWorker(func) if backend is not Backend.THREADING else func
            results = runner(joblib.delayed(worker)(item) for item in items)
        try:
            for result in results:
                bar.update(1)
                yield result
        finally:
            bar.close()

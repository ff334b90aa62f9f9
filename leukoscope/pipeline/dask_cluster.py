"""Running work on a Dask cluster: connecting, mapping in order, and checking the workers' disk.

The workers write masks and cache entries into the run directory themselves, so every worker
must see the run directory at the same path, writable (a shared file system when the cluster
spans machines). :func:`check_cluster` tests that before any work is sent.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: seconds to wait for a scheduler before saying it cannot be reached
CONNECT_TIMEOUT = 5
#: tasks in flight per worker thread (results stream out in order, memory stays bounded)
TASKS_PER_THREAD = 4


class DaskSchedulerError(ValueError):
    """The Dask scheduler cannot be reached, or its workers cannot write the run directory."""


def _client_classes() -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DaskSchedulerError(
            "--backend dask needs dask.distributed; install it with: pip install 'leukoscope[dask]'"
        ) from exc
    return Client, LocalCluster


@contextlib.contextmanager
def dask_client(scheduler: str = "", *, jobs: int = 1) -> Iterator[Any]:
    """Connect to a Dask scheduler, or start a local cluster of ``jobs`` one-thread processes.

    Raises
    ------
    DaskSchedulerError
        ``dask.distributed`` is not installed, or ``scheduler`` does not answer within
        :data:`CONNECT_TIMEOUT` seconds.
    """
    Client, LocalCluster = _client_classes()
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DaskSchedulerError(
                f"cannot reach the Dask scheduler at '{scheduler}' within {CONNECT_TIMEOUT} s ({reason}); check "
                "the address (e.g. tcp://host:8786) and that `dask scheduler` runs there and is reachable"
            ) from None
        with client:
            yield client
    else:
        with LocalCluster(n_workers=max(jobs, 1), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client


def dask_map(client: Any, func: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``func`` of every item, computed by the cluster's workers, yielded in input order.

    At most :data:`TASKS_PER_THREAD` tasks per worker thread are in flight (at least 2), so the
    work runs on the cluster whatever its size (a one-thread cluster too) and memory stays bounded.
    Tasks still pending when the caller stops are cancelled.
    """
    threads = sum(client.nthreads().values())
    window = max(2, TASKS_PER_THREAD * threads)
    source = iter(items)
    pending: collections.deque = collections.deque(
        client.submit(func, item, pure=False) for item in itertools.islice(source, window))
    try:
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(source, 1):
                pending.append(client.submit(func, item, pure=False))
            yield result
    finally:
        if pending:
            client.cancel(list(pending))


def _probe(folder: str, name: str) -> str:
    """Write a probe file into ``folder`` (on a worker); "" or why it could not."""
    try:
        Path(folder, name).write_text("leukoscope probe\n", encoding="utf-8")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return ""


def check_cluster(scheduler: str, folder: str | Path) -> None:
    """Check that every worker of ``scheduler`` can write ``folder`` and that this process sees
    what they wrote (the same file system at the same path).

    Raises
    ------
    DaskSchedulerError
        The scheduler cannot be reached, has no worker, or a worker cannot write ``folder`` or
        writes somewhere this process does not see.
    """
    folder = Path(folder).resolve()
    with dask_client(scheduler) as client:
        workers = sorted(client.nthreads())
        if not workers:
            raise DaskSchedulerError(f"the Dask scheduler at '{scheduler}' has no worker; start workers with "
                                     f"`dask worker {scheduler}`")
        names = {worker: f".leukoscope-probe-{uuid.uuid4().hex}" for worker in workers}
        problems = {}
        for worker in workers:
            problems[worker] = client.submit(_probe, str(folder), names[worker], workers=[worker], pure=False,
                                             allow_other_workers=False).result()
    try:
        for worker in workers:
            probe = folder / names[worker]
            if not problems[worker] and not probe.is_file():
                problems[worker] = "its file does not appear here"
    finally:
        for name in names.values():
            (folder / name).unlink(missing_ok=True)
    bad = {worker: reason for worker, reason in problems.items() if reason}
    if bad:
        worker, reason = next(iter(bad.items()))
        raise DaskSchedulerError(
            f"Dask worker {worker} cannot write the run directory '{folder}' ({reason}); the workers write masks "
            "and cache entries there, so every worker needs it at the same path on a shared file system "
            f"(e.g. NFS), writable ({len(bad)} of {len(workers)} workers failed)"
        )


__all__ = ["CONNECT_TIMEOUT", "DaskSchedulerError", "check_cluster", "dask_client", "dask_map"]

"""Claiming the run directory before a command works in it.

- **It is leukoscope's.** ``--out`` must be a new or empty folder or a leukoscope run directory
  (it holds ``.leukoscope-run``; a run directory of an earlier version, with its ``run.json``, is
  adopted). A folder holding other files is refused: leukoscope writes and deletes files in its
  run directory, never among a user's files.
- **It never holds an input.** ``--data`` or ``--masks`` inside the run directory is refused
  (leukoscope would overwrite it). The run directory inside ``--data`` is fine: dataset scans skip
  run directories (:func:`~leukoscope.pipeline.dataset_base.walk_images`).
- **One command at a time** (:class:`~leukoscope.pipeline.runlock.RunLock`).
- **One dataset.** A run directory made from another dataset is refused, naming both; ``--force``
  deletes its earlier results (:meth:`~leukoscope.pipeline.rundir.RunDir.reset`; the caches stay).
- **Environment errors** (read-only, disk full, no permission) become one line naming the path
  and the fix (:func:`environment_error`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from leukoscope.pipeline.atomic import TMP_MARK, write_text
from leukoscope.pipeline.layout import is_run_dir
from leukoscope.pipeline.rundir import RunDir, RunDirError
from leukoscope.pipeline.runlock import RunLock

log = logging.getLogger(__name__)

#: keys of the run.json of every leukoscope version (a run directory made before the marker)
_RUN_JSON_KEYS = {"command", "config", "versions"}
MARKER_TEXT = "This folder is a leukoscope run directory; see run.json.\n"
_WRITABLE = "make it writable for you, or pass another --out"
#: errno -> what the user can do about it
_FIXES = {
    errno.ENOSPC: "free space on that disk, or pass --out on another disk",
    errno.EDQUOT: "free space within your disk quota, or pass --out on another disk",
    errno.EROFS: "the file system is read-only: pass --out on a writable one",
    errno.EACCES: _WRITABLE,
    errno.EPERM: _WRITABLE,
    errno.EFBIG: "the file system does not take files this large: pass --out on another one",
}


def environment_error(exc: OSError) -> RunDirError | None:
    """The one-line error for an OSError the user fixes outside leukoscope (``None`` for others).

    Names the file (its folder, for a temporary file of :mod:`leukoscope.pipeline.atomic`), the
    system's reason and the fix.
    """
    fix = _FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    where = Path(exc.filename) if exc.filename else None
    if where is not None and TMP_MARK in where.name:
        where = where.parent
    place = f"'{where}'" if where is not None else "the run directory"
    return RunDirError(f"cannot write {place}: {exc.strerror or exc}; {fix}")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _made_by_leukoscope(out: Path) -> bool:
    """A run directory of a version without the marker: its run.json has leukoscope's keys."""
    try:
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(info, dict) and _RUN_JSON_KEYS <= set(info)


def check_out(out: Path, inputs: Mapping[str, str | Path]) -> None:
    """Refuse an ``--out`` that holds a user's files or an input.

    Parameters
    ----------
    out : Path
        The run directory.
    inputs : mapping
        Flag (``--data``, ``--masks``) -> path given ("" when unset).

    Raises
    ------
    RunDirError
        An input lies inside ``out``, ``out`` is a file, or a folder holding files leukoscope did
        not write.
    """
    target = out.resolve()
    for flag, given in inputs.items():
        if given and _inside(Path(given).resolve(), target):
            raise RunDirError(f"{flag} '{given}' lies inside the run directory '{out}', where leukoscope writes its "
                              f"results and could overwrite it; pass an --out outside {flag}")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out '{out}' is a file; pass a folder (new or empty, or a leukoscope run directory)")
    if not out.is_dir() or is_run_dir(out) or _made_by_leukoscope(out):
        return
    foreign = sorted(out.iterdir())
    if foreign:
        raise RunDirError(f"--out '{out}' holds files leukoscope did not write (e.g. '{foreign[0].name}'); "
                          f"leukoscope writes into a new or empty folder or one of its run directories only: "
                          f"pass a new folder, e.g. --out '{out / 'leukoscope-run'}'")


def check_dataset(run: RunDir, data: Path, *, force: bool) -> None:
    """Refuse a run directory made from another dataset; with ``force``, delete its earlier results.

    Raises
    ------
    RunDirError
        run.json names another dataset and ``force`` is not set.
    """
    previous = str(run.read_info().get("dataset", {}).get("path", ""))
    current = str(data.resolve())
    if force:
        if run.info_path.exists():
            log.warning("--force: deleting the earlier results in %s (the caches are kept)", run.path)
        run.reset()
    elif previous and previous != current:
        raise RunDirError(f"run directory '{run.path}' holds the results of the dataset '{previous}', but this "
                          f"command reads '{current}'; pass another --out for it, or --force to delete the "
                          f"earlier results (the caches are kept) and reuse '{run.path}'")


@contextlib.contextmanager
def claim_run(out: str | Path, command: str, *, data: Path, inputs: Mapping[str, str | Path],
              force: bool = False) -> Iterator[RunDir]:
    """Check ``out`` (:func:`check_out`), mark it as a run directory, hold its lock, check its
    dataset (:func:`check_dataset`), and yield it; the lock is released on leaving.

    Raises
    ------
    RunDirError
        Any of the refusals above, or the folder cannot be created or written (one line).
    """
    out = Path(out)
    check_out(out, inputs)
    try:
        run = RunDir(out)
        if not run.marker_path.exists():
            write_text(MARKER_TEXT, run.marker_path)
        lock = RunLock(run.lock_path, command)
        lock.acquire()
    except OSError as exc:
        problem = environment_error(exc)
        if problem is None:
            raise
        raise problem from exc
    try:
        check_dataset(run, data, force=force)
        yield run
    finally:
        lock.release()


__all__ = ["MARKER_TEXT", "check_dataset", "check_out", "claim_run", "environment_error"]

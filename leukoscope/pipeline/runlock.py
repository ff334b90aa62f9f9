"""One command at a time in a run directory: ``RUN/.leukoscope.lock``.

The lock is an exclusive ``flock`` on the lock file, which the kernel releases when its holder
ends however it ends (even ``kill -9``), so a lock left by a dead command is taken over without
asking. The file holds the holder's pid, host, command and start time, for the message a second
command gets. The holder deletes the file when it releases the lock. Where ``flock`` is missing
(Windows), the file is created exclusively and a lock whose pid no longer runs is taken over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from leukoscope.pipeline.rundir import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class RunDirBusyError(RunDirError):
    """Another command holds the run directory's lock; the message names it."""


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _busy(path: Path, holder: dict[str, Any]) -> RunDirBusyError:
    who = f"leukoscope {holder.get('command', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, " \
          f"since {holder.get('started', '?')})"
    return RunDirBusyError(f"run directory '{path.parent}' is in use by {who}; wait until it has finished, or "
                           "pass another --out")


class RunLock:
    """The exclusive lock of one run directory, held while a command works in it.

    Parameters
    ----------
    path : Path
        The lock file (:attr:`~leukoscope.pipeline.layout.RunLayout.lock_path`).
    command : str
        What holds it, for the message another command gets.

    Raises
    ------
    RunDirBusyError
        From :meth:`acquire` (and ``with``): a live command holds the lock.
    """

    def __init__(self, path: str | Path, command: str) -> None:
        self.path = Path(path)
        self.command = command
        self._fd: int | None = None

    def _claim(self) -> int:
        """Open the lock file and hold it; raise when a live command holds it."""
        while True:
            if fcntl is None:  # pragma: no cover - Windows
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    fd = os.open(self.path, os.O_RDWR)
                    holder = _holder(fd)
                    os.close(fd)
                    if _pid_runs(int(holder.get("pid", 0) or 0)):
                        raise _busy(self.path, holder) from None
                    self.path.unlink(missing_ok=True)
                    continue
                return fd
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise _busy(self.path, holder) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file its last holder deleted while we waited to open it
                return fd
            os.close(fd)

    def acquire(self) -> None:
        """Take the lock (taking over one whose holder has died) and write who holds it."""
        fd = self._claim()
        stale = _holder(fd)
        if stale.get("pid"):
            log.info("took over the lock of %s, left by leukoscope %s (pid %s), which is no longer running",
                     self.path.parent, stale.get("command", "?"), stale["pid"])
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(me) + "\n").encode("utf-8"))
        self._fd = fd

    def release(self) -> None:
        """Delete the lock file and let go of the lock."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["RunDirBusyError", "RunLock"]

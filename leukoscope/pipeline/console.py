"""What leukoscope prints besides its results: progress, its own notes, and nothing of the frameworks'.

- :class:`Progress`: a tqdm bar on a terminal; anywhere else (a log file, CI, a pipe) one log
  line per tenth of the work at most, so logs never fill with carriage-return updates.
- :func:`import_keras`: imports Keras (and TensorFlow) with TensorFlow's start-up lines held back
  (absl's "All log messages before absl::InitializeLog()", oneDNN and CPU-feature notes, printed
  by C++ straight to the process's stderr); any other line it prints is passed on.
- :func:`warn_once` and :func:`first_time`: a message said once per command (:func:`new_command`
  starts a command).

``--quiet`` (``run.quiet``) leaves warnings and errors only: no bar, no progress lines, no notes.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("leukoscope")

#: lines TensorFlow's C++ side prints on import: absl's preamble, INFO/WARNING records, CPU notes
FRAMEWORK_NOISE = re.compile(
    r"absl::InitializeLog|^[IW]\d{4} \d\d:\d\d:\d\d|^To enable the following instructions|oneDNN custom operations"
)
#: the frameworks' Python loggers: their warnings are advice to TensorFlow users, errors still show
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "h5py")
_said: set[str] = set()


class Progress:
    """Count work done: a tqdm bar on a terminal, otherwise a log line at each tenth at most.

    Parameters
    ----------
    total : int or None
        Number of items (``None``: unknown, no progress lines off a terminal).
    desc : str
        What is counted, e.g. ``segment``.
    quiet : bool
        Show nothing.
    unit : str
        What one item is (``img``, ``fit``).
    """

    def __init__(self, total: int | None, desc: str, *, quiet: bool = False, unit: str = "img") -> None:
        self.total, self.desc, self.unit, self.quiet = total, desc, unit, quiet
        self.count, self._tenth = 0, 1
        on_terminal = not quiet and sys.stderr is not None and sys.stderr.isatty()
        self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True) if on_terminal else None

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self.quiet and self.total and self.count * 10 >= self._tenth * self.total:
            log.info("%s: %d/%d %s (%d%%)", self.desc, self.count, self.total, self.unit,
                     100 * self.count // self.total)
            self._tenth = self.count * 10 // self.total + 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def import_keras() -> ModuleType:
    """``import keras`` with TensorFlow's start-up lines on stderr held back (see the module doc).

    The process's file descriptor 2 points at a temporary file while Keras is imported; the lines
    that are not :data:`FRAMEWORK_NOISE` are then written to stderr. ``TF_CPP_MIN_LOG_LEVEL`` is
    set to 2 (C++ errors only) unless the environment sets it, and the :data:`FRAMEWORK_LOGGERS`
    log errors only. Idempotent.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in FRAMEWORK_LOGGERS:  # e.g. tf.function's retracing advice: about TensorFlow, not the data
        logging.getLogger(name).setLevel(logging.ERROR)
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to keep clean
        import keras

        return keras
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import keras
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not FRAMEWORK_NOISE.search(line)]
            if kept and sys.stderr is not None:
                sys.stderr.write("\n".join(kept) + "\n")
    return keras


def new_command() -> None:
    """Start a command: every message of :func:`first_time` and :func:`warn_once` may come again."""
    _said.clear()


def first_time(key: str) -> bool:
    """Whether ``key`` is asked about for the first time in this command (a message said once)."""
    if key in _said:
        return False
    _said.add(key)
    return True


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log ``message % args`` as a warning, unless a warning of ``key`` was logged in this command."""
    if first_time(key):
        log.warning(message, *args)


__all__ = ["FRAMEWORK_LOGGERS", "FRAMEWORK_NOISE", "Progress", "first_time", "import_keras", "new_command", "warn_once"]

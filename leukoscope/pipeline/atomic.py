"""Write files so that a reader never sees half of one: temporary name, then rename.

A process killed outright (SIGKILL, power loss) can leave a temporary file
(``.<name>.leukoscope.tmp-<pid>``) but never a half-written target; :func:`remove_leftovers`
deletes such files when the next run starts. The ``.leukoscope.tmp-`` mark is leukoscope's own,
so a user's file is never taken for a leftover, and a temporary name longer than a file system
allows (255 bytes) is shortened with a hash of the target's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.png import encode_png

#: what marks a temporary file as leukoscope's (followed by the writing process's id)
TMP_MARK = ".leukoscope.tmp-"
#: longest file name (bytes) of the common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)
NAME_MAX = 255


def temporary_name(target: Path, pid: int | None = None) -> Path:
    """The temporary file beside ``target`` that :func:`atomic_path` writes first.

    ``.<name>.leukoscope.tmp-<pid>``, or ``.<sha256 of name, 32 hex>.leukoscope.tmp-<pid>`` when
    that would be longer than :data:`NAME_MAX` bytes.
    """
    suffix = f"{TMP_MARK}{os.getpid() if pid is None else pid}"
    name = f".{target.name}{suffix}"
    if len(os.fsencode(name)) > NAME_MAX:
        name = f".{hashlib.sha256(os.fsencode(target.name)).hexdigest()[:32]}{suffix}"
    return target.with_name(name)


def _writer_alive(leftover: Path) -> bool:
    """Whether the process named in a temporary file's name still runs (then it is not a leftover)."""
    pid = leftover.name.rpartition(TMP_MARK)[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that id
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_leftovers(folder: str | Path) -> int:
    """Delete the temporary files a killed run left anywhere below ``folder``.

    A run directory serves one command at a time (:mod:`leukoscope.pipeline.runlock`), so a
    temporary file found when a command starts belongs to a process that died before renaming
    it. Only leukoscope's own temporary names are touched (:data:`TMP_MARK`), and a file whose
    writer still runs is kept.

    Returns
    -------
    int
        Number of files deleted.
    """
    removed = 0
    for leftover in Path(folder).rglob(f".*{TMP_MARK}*"):
        if leftover.is_file() and not leftover.is_symlink() and not _writer_alive(leftover):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def write_text(text: str, target: str | Path) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj: Any, target: str | Path) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", target)


def write_csv(frame: pd.DataFrame, target: str | Path) -> None:
    """Atomically write a table as CSV without its index (floats at full precision)."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")


def write_png(image: np.ndarray, target: str | Path) -> str:
    """Atomically write a uint8 array of shape (H, W) or (H, W, 3) as PNG; return the file's SHA-256."""
    return write_image(image, target, ".png")


def write_image(image: np.ndarray, target: str | Path, fmt: str = "") -> str:
    """Atomically write a uint8 array of shape (H, W) or (H, W, 3, RGB) as an image; return the file's SHA-256.

    ``fmt`` is the format's extension (``.png``, ``.bmp``); empty takes the target's suffix. PNG
    goes through :func:`leukoscope.pipeline.png.encode_png` (fast, for one mask and overlay per
    cell), other formats through OpenCV.
    """
    fmt = fmt or Path(target).suffix.lower()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{fmt.lstrip('.').upper()} output for '{target}' must be uint8, got {image.dtype}")
    if fmt == ".png":
        data = encode_png(image)
    else:
        import cv2

        ok, buffer = cv2.imencode(fmt, cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image)
        if not ok:  # pragma: no cover - cv2 only fails on impossible shapes
            raise ValueError(f"could not encode '{target}' as {fmt} (shape {image.shape})")
        data = buffer.tobytes()
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def save_keras(model: Any, target: str | Path) -> None:
    """Save a Keras model atomically (Keras needs the ``.keras`` suffix on the file it writes)."""
    with atomic_path(target) as tmp:
        staged = tmp.with_name(tmp.name + ".keras")
        try:
            model.save(staged)
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)

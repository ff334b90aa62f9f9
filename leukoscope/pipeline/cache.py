"""Per-sample result cache, keyed by the image's SHA-256 and the settings that shape the result.

A cache lives inside the run directory (never elsewhere) and stores plain ``.npz`` arrays,
loaded with ``allow_pickle=False``: nothing in it can execute code. Each entry is written
atomically, so a run killed half way leaves only whole entries, and a rerun recomputes only
the samples without one. Entries carry no time stamp: the same arrays give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.pipeline.atomic import atomic_path, write_json
from leukoscope.pipeline.rundir import RunDirError

_HEX = re.compile(r"[0-9a-f]+")
#: time stamp of every member of an entry (``np.savez`` would write the current time)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _check_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Raise ValueError unless ``member`` is an ``.npy`` array whose header fits its size."""
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read_header(fh)
    if dtype.hasobject:
        raise ValueError(f"{member.filename} holds Python objects")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize > member.file_size:
        raise ValueError(f"{member.filename} promises {shape} {dtype} in {member.file_size} bytes")


def settings_key(settings: dict[str, Any]) -> str:
    """Stable short hash of a JSON-serialisable settings dict."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


class ResultCache:
    """A folder of ``<sha256>.npz`` entries for one namespace and one settings dict.

    Parameters
    ----------
    root : Path
        Parent folder inside the run directory, e.g. ``RUN/features/cache``.
    namespace : str
        What is cached, e.g. ``handcrafted`` or ``cnn_resnet50``.
    settings : dict
        Everything that changes the result (feature config, package version, weights).
        A change of settings gives a new folder, so stale entries are never read.
    """

    def __init__(self, root: str | Path, namespace: str, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.folder = Path(root) / f"{namespace}-{settings_key(settings)}"
        self.folder.mkdir(parents=True, exist_ok=True)
        settings_file = self.folder / "settings.json"
        if not settings_file.exists():
            write_json(settings, settings_file)

    def _path(self, key: str) -> Path:
        if not _HEX.fullmatch(key):
            raise ValueError(f"cache key must be a hex digest, got {key!r}")
        return self.folder / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or ``None`` when there is no whole entry.

        A damaged entry (not a zip of ``.npy`` arrays, or an array header promising more bytes
        than the entry holds) is deleted and recomputed, never trusted: nothing is allocated
        from what a header claims before it is checked against the file.

        Raises
        ------
        RunDirError
            Something that is not a file stands where the entry should be (e.g. a folder):
            leukoscope did not make it and does not delete it.
        """
        path = self._path(key)
        if not path.exists() and not path.is_symlink():
            return None
        if not path.is_file() or path.is_symlink():
            raise RunDirError(f"'{path}' is not a cache entry file leukoscope wrote (a folder or a link); "
                              "remove it, and leukoscope computes the entry again")
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    _check_header(archive, member)
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically."""
        buffer = io.BytesIO()  # built in memory, then written in one call
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, array in arrays.items():  # the layout of np.savez, without its clock
                with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME), "w") as fh:
                    np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)
        with atomic_path(self._path(key)) as tmp:
            tmp.write_bytes(buffer.getvalue())

"""Per-sample result cache, keyed by the image's SHA-256 and the settings that shape the result.

A cache lives inside the run directory (never elsewhere) and stores plain ``.npz`` arrays,
loaded with ``allow_pickle=False``: nothing in it can execute code. Each entry is written
atomically, so a run killed half way leaves only whole entries, and a rerun recomputes only
the samples without one. Entries carry no time stamp: the same arrays give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.pipeline.atomic import atomic_path, write_json

_HEX = re.compile(r"[0-9a-f]+")
#: time stamp of every member of an entry (``np.savez`` would write the current time)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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
        """The arrays stored under ``key``, or ``None`` when there is no whole entry."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically."""
        with atomic_path(self._path(key)) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for name, array in arrays.items():  # the layout of np.savez, without its clock
                with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME), "w") as fh:
                    np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)

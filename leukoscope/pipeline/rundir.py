"""A run directory's records: run.json, manifest.csv and rejected.csv (paths: :mod:`.layout`)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from leukoscope.pipeline.atomic import write_csv, write_json
from leukoscope.pipeline.layout import MANIFEST_COLUMNS, REJECTED_COLUMNS, RunLayout

_VERSIONED = (
    "leukoscope", "numpy", "pandas", "scipy", "scikit-image", "opencv-python-headless",
    "mahotas", "scikit-learn", "xgboost", "keras", "tensorflow", "tensorflow-cpu", "joblib",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages whose behaviour shapes the results."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunDir(RunLayout):
    """One run's output folder. Everything leukoscope writes for a run lives below ``path``.

    Parameters
    ----------
    path : str or Path
        The run directory; created when missing.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.path.mkdir(parents=True, exist_ok=True)

    # -- run.json -----------------------------------------------------------------------
    def read_info(self) -> dict[str, Any]:
        if self.info_path.exists():
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        return {}

    def update_info(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into run.json (nested dicts are merged one level deep)."""
        info = self.read_info()
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(info.get(key), dict):
                info[key] = {**info[key], **value}
            else:
                info[key] = value
        write_json(info, self.info_path)
        return info

    def start(self, command: str, config: dict[str, Any]) -> None:
        """Record the start of a command with its resolved config and package versions."""
        self.update_info(
            command=command,
            argv=sys.argv,
            config=config,
            versions=package_versions(),
            started=_now(),
            finished=None,
        )

    def finish(self, status: str = "ok", *, error: str = "") -> None:
        """Record the end of a command: ``status`` ok, interrupted or failed (with ``error``)."""
        self.update_info(finished=_now(), status=status, **({"error": error} if error else {}))

    # -- samples ------------------------------------------------------------------------
    def write_manifest(self, samples: pd.DataFrame) -> None:
        write_csv(samples[MANIFEST_COLUMNS], self.manifest_path)

    def read_manifest(self) -> pd.DataFrame:
        return pd.read_csv(self.manifest_path, dtype=str, keep_default_na=False)

    def read_rejected(self) -> pd.DataFrame:
        if not self.rejected_path.exists():
            return pd.DataFrame(columns=REJECTED_COLUMNS)
        return pd.read_csv(self.rejected_path, dtype=str, keep_default_na=False)

    def kept(self, samples: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``samples`` that no stage has rejected (whose path is not in rejected.csv)."""
        rejected = set(self.read_rejected()["path"])
        return samples[~samples["path"].isin(rejected)].reset_index(drop=True)

    def reject(self, rows: list[dict[str, str]] | pd.DataFrame, *, stage: str | None = None) -> None:
        """Add rejected samples (``path, stage, reason``); one row per path and stage.

        A later rejection of the same path in the same stage replaces the earlier one, so
        rerunning a stage never duplicates rows.
        """
        new = pd.DataFrame(rows, columns=None if isinstance(rows, pd.DataFrame) else REJECTED_COLUMNS)
        if stage is not None:
            new["stage"] = stage
        new = new.reindex(columns=REJECTED_COLUMNS).fillna("").astype(str)
        merged = pd.concat([self.read_rejected(), new], ignore_index=True)
        merged = merged.drop_duplicates(subset=["path", "stage"], keep="last")
        write_csv(merged, self.rejected_path)

    def clear_rejected(self, stage: str) -> None:
        """Forget the rows of ``stage``, which is about to look at every sample again.

        Each stage calls this when it starts, so a file fixed since an earlier run is no longer
        listed (nor left out of ``compare`` by :meth:`kept`); a file still bad is rejected again.
        """
        rejected = self.read_rejected()
        if (rejected["stage"] == stage).any():
            write_csv(rejected[rejected["stage"] != stage], self.rejected_path)

    def ensure_rejected(self) -> None:
        """Create an empty rejected.csv when none exists, so every run has one."""
        if not self.rejected_path.exists():
            write_csv(pd.DataFrame(columns=REJECTED_COLUMNS), self.rejected_path)

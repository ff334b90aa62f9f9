"""A run directory's records: run.json, manifest.csv, rejected.csv and the stage records
(paths: :mod:`.layout`)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from leukoscope.pipeline.atomic import write_csv, write_json
from leukoscope.pipeline.dataset_base import shown_path
from leukoscope.pipeline.layout import CACHE_FOLDER, MANIFEST_COLUMNS, REJECTED_COLUMNS, RunLayout, Stage

_VERSIONED = (
    "leukoscope", "numpy", "pandas", "scipy", "scikit-image", "opencv-python-headless",
    "mahotas", "scikit-learn", "xgboost", "keras", "tensorflow", "tensorflow-cpu", "joblib",
)


class RunDirError(ValueError):
    """The run directory cannot be used as it is; the message names the path and the fix."""


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
        """run.json as a dict ({} when there is none).

        Raises
        ------
        RunDirError
            run.json is not a JSON object (not written by leukoscope, or damaged).
        """
        if not self.info_path.exists():
            return {}
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            info = exc
        if not isinstance(info, dict):
            raise RunDirError(f"'{self.info_path}' is not a run record leukoscope wrote ({info}); move it "
                              "away or pass another --out")
        return info

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
        """Record the start of a command with its resolved config and package versions (status
        ``running``; an earlier command's error is dropped)."""
        info = {key: value for key, value in self.read_info().items() if key != "error"}
        info.update(command=command, argv=sys.argv, config=config, versions=package_versions(), started=_now(),
                    finished=None, status="running")
        write_json(info, self.info_path)

    def finish(self, status: str = "ok", *, error: str = "") -> None:
        """Record the end of a command: ``status`` ok, interrupted or failed (with ``error``)."""
        self.update_info(finished=_now(), status=status, **({"error": error} if error else {}))

    # -- samples ------------------------------------------------------------------------
    def write_manifest(self, samples: pd.DataFrame) -> None:
        write_csv(samples[MANIFEST_COLUMNS], self.manifest_path)

    def read_manifest(self) -> pd.DataFrame:
        return pd.read_csv(self.manifest_path, dtype=str, keep_default_na=False)

    def read_rejected(self) -> pd.DataFrame:
        """rejected.csv (empty when there is none).

        Raises
        ------
        RunDirError
            The file is not a table with leukoscope's columns ``path, stage, reason``.
        """
        if not self.rejected_path.exists():
            return pd.DataFrame(columns=REJECTED_COLUMNS)
        try:
            table = pd.read_csv(self.rejected_path, dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # pandas' parser errors are ValueErrors
            table, problem = None, f"cannot be read as CSV ({type(exc).__name__}: {exc})"
        else:
            problem = f"has the columns {list(table.columns)}"
        if table is None or list(table.columns) != REJECTED_COLUMNS:
            raise RunDirError(f"'{self.rejected_path}' {problem}, not leukoscope's {', '.join(REJECTED_COLUMNS)}; "
                              "it was not written by leukoscope: move it away or pass another --out")
        return table

    def kept(self, samples: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``samples`` that no stage has rejected (whose path is not in rejected.csv)."""
        rejected = set(self.read_rejected()["path"])
        return samples[~samples["path"].isin(rejected)].reset_index(drop=True)

    def reject(self, rows: list[dict[str, str]] | pd.DataFrame, *, stage: str | None = None) -> None:
        """Add rejected samples (``path, stage, reason``).

        Every distinct row is kept (two bad manifest rows naming one file give two rows); a row
        equal to one already listed is not added again. Each stage forgets its rows when it
        starts (:meth:`clear_rejected`), so rerunning a stage never duplicates rows.
        """
        records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows
        records = [{**row, "path": shown_path(row.get("path", "")), **({"stage": stage} if stage is not None else {})}
                   for row in records]
        new = pd.DataFrame(records, columns=REJECTED_COLUMNS).fillna("").astype(str)
        merged = pd.concat([self.read_rejected(), new], ignore_index=True)
        merged = merged.drop_duplicates(keep="last")
        write_csv(merged, self.rejected_path)

    def clear_rejected(self, stage: str) -> None:
        """Forget the rows of ``stage``, which is about to look at every sample again.

        Each stage calls this when it starts, so a file fixed since an earlier run is no longer
        listed (nor left out of ``compare`` by :meth:`kept`); a file still bad is rejected again.
        """
        rejected = self.read_rejected()
        if (rejected["stage"] == stage).any():
            write_csv(rejected[rejected["stage"] != stage], self.rejected_path)

    # -- stage records ------------------------------------------------------------------
    def read_stage_record(self, stage: Stage) -> dict[str, Any]:
        """What ``stage``'s outputs were computed from ({} when unknown or unreadable)."""
        try:
            record = json.loads(self.stage_record(stage).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def write_stage_record(self, stage: Stage, record: dict[str, Any]) -> None:
        self.stage_dir(stage)
        write_json(record, self.stage_record(stage))

    def clear_stage_record(self, stage: Stage) -> None:
        """Forget what ``stage`` was computed from (before it runs: a killed stage is never fresh)."""
        self.stage_record(stage).unlink(missing_ok=True)

    def reset(self) -> None:
        """Delete every result of earlier commands but the result caches (``--force``).

        Removes run.json, manifest.csv, rejected.csv and everything in the stage folders except
        their ``cache/`` folders, whose entries are keyed by content and stay valid.
        """
        for path in self.records:
            path.unlink(missing_ok=True)
        for folder in self.stage_folders:
            for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
                if entry.name == CACHE_FOLDER:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def ensure_rejected(self) -> None:
        """Create an empty rejected.csv when none exists, so every run has one."""
        if not self.rejected_path.exists():
            write_csv(pd.DataFrame(columns=REJECTED_COLUMNS), self.rejected_path)

"""What a stage's outputs were computed from, so that a rerun redoes what changed and nothing else.

Each stage that finishes writes a small record beside its outputs
(``RUN/<folder>/.<stage>.stage.json``, :meth:`~leukoscope.pipeline.layout.RunLayout.stage_record`)
holding one key: the SHA-256 of

- the samples it saw: every manifest row (``sample_id, path, label, subject, split`` and the
  image's ``sha256``), so a replaced, added or removed image changes it;
- the settings that shape its results (:func:`settings_of`), never those that only change the
  speed (``run.jobs``, ``run.backend``...);
- the keys of the stages it reads, so a changed upstream output makes every later stage stale.

The stage graph (:mod:`leukoscope.pipeline.graph`) runs an upstream stage again when its record
does not hold the key it would have now. Each stage's result caches are keyed by content (the
image's SHA-256), so a rerun computes only the samples whose image or settings changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import MANIFEST_COLUMNS, Stage

#: version of the record's key recipe; a new recipe makes every older record stale
RECORD_VERSION = 1


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=True).encode("ascii")
    return hashlib.sha256(blob).hexdigest()


def samples_digest(samples: pd.DataFrame) -> str:
    """SHA-256 of the manifest rows of ``samples`` (order-independent).

    Parameters
    ----------
    samples : DataFrame
        The samples table with the :data:`~leukoscope.pipeline.layout.MANIFEST_COLUMNS` (a missing
        column counts as empty).
    """
    rows = samples.reindex(columns=MANIFEST_COLUMNS).fillna("").astype(str).sort_values(["sample_id", "path"])
    return _digest(rows.to_numpy().tolist())


#: keys a whole section leaves out: they shape only the stages that name them (the statistics of
#: the features; ``features.format`` only adds Parquet copies of tables that stay the same)
NAMED_ONLY = frozenset({"features.format", "features.statistics_bootstrap"})


def settings_of(*keys: str) -> Callable[[Config], dict[str, Any]]:
    """A stage's ``settings`` function: the config sections (``"features"``, without the keys of
    :data:`NAMED_ONLY`) and keys (``"run.seed"``) that shape its results."""

    def settings(config: Config) -> dict[str, Any]:
        values = config.to_dict()
        picked: dict[str, Any] = {}
        for key in keys:
            section, _, name = key.partition(".")
            picked[key] = values[section][name] if name else {
                field: value for field, value in values[section].items() if f"{section}.{field}" not in NAMED_ONLY}
        return picked

    return settings


def stage_key(stage: Stage, config: Config, samples: str, *, settings: Mapping[Stage, Callable[[Config], Any]],
              needs: Mapping[Stage, Callable[[Config], tuple[Stage, ...]]]) -> str:
    """The key of ``stage``'s outputs computed now: samples, settings and upstream keys.

    Parameters
    ----------
    stage : Stage
    config : Config
    samples : str
        :func:`samples_digest` of the samples the command works on.
    settings, needs : mapping
        Every stage's ``settings(config)`` and ``needs(config)`` (from the stage specs).
    """
    upstream = {up.value: stage_key(up, config, samples, settings=settings, needs=needs) for up in needs[stage](config)}
    return _digest({"version": RECORD_VERSION, "stage": Stage(stage).value, "samples": samples,
                    "settings": settings[stage](config), "upstream": upstream})


__all__ = ["NAMED_ONLY", "RECORD_VERSION", "samples_digest", "settings_of", "stage_key"]

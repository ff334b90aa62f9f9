"""The one run configuration: a frozen dataclass tree loaded from TOML.

Every section is a frozen dataclass; :func:`load_config` reads a TOML file, checks every
key and value, and names the file, the key and the allowed values in its errors.
:meth:`Config.with_overrides` applies command-line flags on top (``"data.path"`` style keys).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from leukoscope.classifiers.choices import ClassifierName, FeatureSetKind, Protocol
from leukoscope.features.choices import Backbone, Family, QcRule
from leukoscope.pipeline.choices import Backend, DatasetKind, TableFormat
from leukoscope.segmentation.choices import (
    Background,
    Channel,
    Enhancement,
    Refiner,
    ThresholdMethod,
)


class ConfigError(ValueError):
    """A configuration file or override holds an unknown key or a wrong value."""


@dataclass(frozen=True)
class DataConfig:
    """Where the images are and how to read them."""

    path: str = "data/demo"
    dataset: DatasetKind = DatasetKind.AUTO
    masks: str = ""
    demo: bool = False
    demo_subjects: int = 12
    demo_cells: int = 240
    demo_seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Where results go and how the work is parallelised."""

    out: str = "runs/demo"
    jobs: int = 1
    backend: Backend = Backend.LOKY
    scheduler: str = ""
    seed: int = 0
    quiet: bool = False


@dataclass(frozen=True)
class SegmentationConfig:
    """Threshold segmentation of the whole cell and the nucleus."""

    enhance: Enhancement = Enhancement.NONE
    nucleus_channel: Channel = Channel.STAIN
    nucleus_method: ThresholdMethod = ThresholdMethod.OTSU
    cell_channel: Channel = Channel.LAB_B
    cell_method: ThresholdMethod = ThresholdMethod.TRIANGLE
    background: Background = Background.AUTO
    min_size: int = 64
    split_solidity: float = 0.9
    refiner: Refiner = Refiner.NONE
    refiner_model: str = ""


@dataclass(frozen=True)
class FeaturesConfig:
    """Handcrafted families, frozen-CNN embeddings, and the statistics of the handcrafted features.

    ``format = "parquet"`` adds a typed Parquet copy beside every features CSV;
    ``statistics_bootstrap`` is the number of bootstrap replicates of the effect-size intervals.
    """

    families: tuple[Family, ...] = tuple(Family)
    haralick_distance: int = 1
    haralick_levels: int = 64
    backbones: tuple[Backbone, ...] = ()
    weights: str = "auto"
    input_size: int = 0
    batch_size: int = 32
    mask_background: bool = True
    threads: int = 0
    format: TableFormat = TableFormat.CSV
    statistics_bootstrap: int = 2000


@dataclass(frozen=True)
class HeadsConfig:
    """The reference paper's fine-tuned sigmoid heads (``preset = "paper"`` values as defaults)."""

    backbones: tuple[Backbone, ...] = ()
    epochs: int = 15
    patience: int = 5
    batch_size: int = 40
    learning_rate: float = 0.001
    dropout: float = 0.5
    restore_best_weights: bool = False
    class_weight: bool = False
    unfreeze_top: int = 0
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-5
    input_size: int = 0
    validation_fraction: float = 0.15
    mask_background: bool = False
    mixed_precision: bool = False


@dataclass(frozen=True)
class CompareConfig:
    """Which models on which feature sets, under which evaluation protocol.

    ``qc``: what the statistics of the features (``subjects.csv``, ``univariate.csv``) do with
    cells whose ``qc_flag`` is set: ``keep`` them or ``drop_flagged``.
    """

    protocol: Protocol = Protocol.AUTO
    folds: int = 5
    inner_folds: int = 3
    models: tuple[ClassifierName, ...] = tuple(ClassifierName)
    feature_sets: tuple[FeatureSetKind, ...] = tuple(FeatureSetKind)
    hybrid_pca: int = 0
    bootstrap: int = 1000
    qc: QcRule = QcRule.KEEP


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one run."""

    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, JSON-serialisable view (enums as their values)."""
        return {
            section.name: {
                f.name: _plain(getattr(getattr(self, section.name), f.name))
                for f in dataclasses.fields(getattr(self, section.name))
            }
            for section in dataclasses.fields(self)
        }

    def with_overrides(self, overrides: dict[str, Any], *, source: str = "command line") -> "Config":
        """Return a copy with ``{"section.key": value}`` overrides applied and checked.

        ``None`` values are ignored, so unset command-line flags can be passed as they are.
        """
        sections = {s.name: getattr(self, s.name) for s in dataclasses.fields(self)}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            if section not in sections:
                raise ConfigError(f"{source}: unknown section '{section}'; allowed: {', '.join(sections)}")
            sections[section] = _replace_checked(sections[section], {key: value}, source, section)
        return Config(**sections)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against the field type ``annotation``; convert strings to enums."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if item_type in (Backbone,) and list(value) == ["all"]:
            return tuple(item_type)
        if list(value) == ["none"]:
            return ()
        return tuple(_coerce(v, item_type, where) for v in value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in annotation)
            raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {allowed}") from None
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}: expected a non-negative integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config field type {annotation!r}")  # pragma: no cover


def _replace_checked(section_obj: Any, values: dict[str, Any], source: str, section: str) -> Any:
    hints = typing.get_type_hints(type(section_obj))
    names = [f.name for f in dataclasses.fields(section_obj)]
    checked = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"{source}: unknown key '{section}.{key}'; allowed keys in [{section}]: {', '.join(names)}"
            )
        checked[key] = _coerce(value, hints[key], f"{source}: key '{section}.{key}'")
    return dataclasses.replace(section_obj, **checked)


def load_config(path: str | Path | None = None) -> Config:
    """Load and check a TOML configuration file.

    Parameters
    ----------
    path : str or Path or None
        The TOML file. ``None`` gives the defaults.

    Returns
    -------
    Config
        The frozen, checked configuration.

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or holds an unknown section or key or a
        value of the wrong type; the message names the file, the key and what is allowed.
    """
    config = Config()
    if path is None:
        return config
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist; pass an existing .toml file, e.g. configs/demo.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    sections = {s.name for s in dataclasses.fields(Config)}
    for name, values in raw.items():
        if name not in sections:
            raise ConfigError(f"{path}: unknown section [{name}]; allowed sections: {', '.join(sorted(sections))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{name}] must be a table of keys, got {values!r}")
    overrides = {f"{name}.{key}": value for name, values in raw.items() for key, value in values.items()}
    return config.with_overrides(overrides, source=str(path))


__all__ = [
    "CompareConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "FeaturesConfig",
    "HeadsConfig",
    "RunConfig",
    "SegmentationConfig",
    "load_config",
]

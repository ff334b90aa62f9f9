"""The one run configuration: a frozen dataclass tree loaded from TOML and checked at once.

Every section is a frozen dataclass whose fields carry their description and their allowed
values (:mod:`leukoscope.pipeline.config_rules`; rendered as docs/config.md by
:mod:`leukoscope.pipeline.config_docs`). :func:`load_config` reads a shipped config by name
(:func:`config_names`) or a TOML file, applies command-line overrides, and checks every value:
types, ranges, vocabularies, files that must exist and the settings that depend on each other,
so that a typo stops the run before any work starts, with one line that names the file, the key
and the allowed values.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from leukoscope.classifiers.choices import ClassifierName, FeatureSetKind, Protocol
from leukoscope.features.backbones import get_backbone
from leukoscope.features.choices import Backbone, Family, QcRule
from leukoscope.features.haralick import MAX_LEVELS
from leukoscope.features.registry import check_options
from leukoscope.pipeline.choices import Backend, DatasetKind, TableFormat
from leukoscope.pipeline.config_rules import (
    ConfigError,
    Interval,
    PathRule,
    all_cores,
    coerce,
    field_problem,
    option,
    plain,
)
from leukoscope.pipeline.imageio import MAX_SIDE, MIN_SIDE
from leukoscope.pipeline.predict_config import PredictConfig
from leukoscope.pipeline.weights import AUTO, IMAGENET, RANDOM
from leukoscope.segmentation.choices import Background, Channel, Enhancement, Refiner, ThresholdMethod

SEED = Interval(0, 2**32 - 1)
POSITIVE = Interval(1)
INPUT_SIZE = Interval(0, meaning="0: each backbone's own input size")
READ_LATER = "any (checked when the dataset is read)"


@dataclass(frozen=True)
class DataConfig:
    """Where the images are and how to read them."""

    path: str = option("data/demo", "Dataset folder or manifest CSV (relative paths: to the current directory).",
                       allowed=READ_LATER)
    dataset: DatasetKind = option(DatasetKind.AUTO, "Layout of `path`; `auto` detects it.")
    masks: str = option("", "Folder of expert masks to score the segmentation against (empty: none).",
                        allowed=READ_LATER)
    demo: bool = option(False, "Generate the synthetic demo dataset in `path` when it is missing.")
    demo_subjects: int = option(12, "Subjects of the demo dataset (half ALL, half HEM).", Interval(4, multiple_of=2))
    demo_cells: int = option(240, "Cells of the demo dataset, at least one per subject.", POSITIVE)
    demo_seed: int = option(0, "Random seed of the demo dataset.", SEED)


@dataclass(frozen=True)
class RunConfig:
    """Where results go and how the work is parallelised."""

    out: str = option("runs/demo", "Run directory that every stage writes into.")
    jobs: int = option(1, "Parallel workers.", Interval(1, extra=(-1,), meaning="-1: every core this process may use"),
                       resolve=all_cores)
    backend: Backend = option(Backend.LOKY, "joblib backend of the per-image work (`dask` needs `leukoscope[dask]`).")
    scheduler: str = option("", "Address of a running Dask scheduler (with `backend = \"dask\"`; empty: a local "
                                "cluster).")
    seed: int = option(0, "Random seed of the splits, the models and the bootstrap.", SEED)
    quiet: bool = option(False, "No progress bars; warnings and errors only.")


@dataclass(frozen=True)
class FieldsConfig:
    """White cells found in whole smear fields and cut out (`data.dataset` allidb1, voc, fields; docs/fields.md)."""

    red_cell_diameter: float = option(100.0, "Typical red-cell diameter in the fields' pixels; every detection size "
                                             "is a multiple of it (BCCD 100, ALL-IDB1 60).", Interval(0, open_low=True))
    min_nucleus_area: float = option(0.4, "Least nucleus area of a white cell, in red-cell discs; smaller stained "
                                          "groups are platelets or slivers.", Interval(0))
    min_nucleus_contrast: float = option(40.0, "Least height of nucleus pixels over the field's median stain value "
                                               "(0-255).", Interval(0, 255))
    lobe_gap: float = option(0.05, "Nucleus pieces closer than this (red-cell diameters) are one nucleus.", Interval(0))
    cytoplasm_level: float = option(0.12, "Cytoplasm threshold, as a fraction of the way from the field's median "
                                          "to the nuclei's.", Interval(0, 1, open_low=True, open_high=True))
    reach: float = option(0.6, "Farthest a cell extends from its nucleus, in red-cell diameters.",
                          Interval(0, open_low=True))
    cutout_size: int = option(450, "Side of the square cut-outs in pixels (C-NMC: 450); larger cells are scaled "
                                   "down to fit.", Interval(MIN_SIDE, MAX_SIDE))
    boxes: bool = option(False, "Score the detection against the annotated white-cell boxes (voc) and draw them on "
                                "the overlays.")


@dataclass(frozen=True)
class SegmentationConfig:
    """Threshold segmentation of the whole cell and the nucleus."""

    enhance: Enhancement = option(Enhancement.NONE, "Contrast enhancement before thresholding.")
    nucleus_channel: Channel = option(Channel.STAIN, "Colour plane the nucleus is thresholded in.")
    nucleus_method: ThresholdMethod = option(ThresholdMethod.OTSU, "Threshold method of the nucleus.")
    cell_channel: Channel = option(Channel.LAB_B, "Colour plane the whole cell is thresholded in.")
    cell_method: ThresholdMethod = option(ThresholdMethod.TRIANGLE, "Threshold method of the whole cell.")
    background: Background = option(Background.AUTO, "Surround of the cells: black (C-NMC) or a smear; `auto` decides "
                                                     "per image.")
    min_size: int = option(64, "Smallest object kept, in pixels.", POSITIVE)
    split_solidity: float = option(0.9, "Cells less solid than this are split from touching neighbours.",
                                   Interval(0, 1, open_low=True))
    refiner: Refiner = option(Refiner.NONE, "U-Net mask refiner run after the thresholding.")
    refiner_model: str = option("", "Refiner model file (empty: the model shipped in the package).",
                                PathRule("file", "a .keras model written by `leukoscope train-refiner`", empty=True))
    refiner_flips: bool = option(False, "Average the refiner over the 8 flips and quarter turns of each cell "
                                        "(test-time augmentation, 8x the refiner's time).")


@dataclass(frozen=True)
class FeaturesConfig:
    """Handcrafted families and frozen-CNN embeddings."""

    families: tuple[Family, ...] = option(tuple(Family), "Handcrafted feature families.")
    haralick_distance: int = option(1, "Pixel distance of the Haralick co-occurring pairs.", allowed=">= 1")
    haralick_levels: int = option(64, "Grey levels of the Haralick quantisation.", allowed=f"[2, {MAX_LEVELS}]")
    backbones: tuple[Backbone, ...] = option((), "CNN backbones to embed every cell with (frozen, ImageNet weights).")
    weights: str = option(AUTO, "CNN weights: `imagenet` (Keras' cache or download), a folder of the official "
                                "no-top .h5 files, `random` (untrained), or `auto` (imagenet, else random).",
                          PathRule("folder", "holding the official Keras no-top .h5 files",
                                   words=(AUTO, IMAGENET, RANDOM)))
    input_size: int = option(0, "Side of the square CNN input in pixels; each backbone has its own minimum.",
                             INPUT_SIZE)
    batch_size: int = option(32, "Images per CNN batch.", POSITIVE)
    mask_background: bool = option(True, "Black out the background around the segmented cell before the CNN.")
    threads: int = option(0, "CPU threads of one TensorFlow operation.", Interval(0, meaning="0: all cores"))
    format: TableFormat = option(TableFormat.CSV, "Features tables: `csv`, or `parquet` for a typed Parquet copy, "
                                                  "with its data dictionary, beside every features CSV.")
    statistics_bootstrap: int = option(2000, "Bootstrap replicates of the effect-size intervals of the univariate "
                                             "table (docs/statistics.md).", Interval(0, meaning="0: no intervals"))


@dataclass(frozen=True)
class HeadsConfig:
    """Sigmoid heads trained on frozen backbones (the paper's fine-tuning; its values as defaults)."""

    backbones: tuple[Backbone, ...] = option((), "Backbones to train the paper's sigmoid head on (empty: none).")
    epochs: int = option(15, "Most epochs of the head's training (EarlyStopping may stop it sooner).", POSITIVE)
    patience: int = option(5, "EarlyStopping patience on the validation loss, in epochs.", Interval(0))
    batch_size: int = option(40, "Images per training batch.", POSITIVE)
    learning_rate: float = option(0.001, "Adamax learning rate.", Interval(0, open_low=True))
    dropout: float = option(0.5, "Dropout rate before the dense layer.", Interval(0, 1, open_high=True))
    restore_best_weights: bool = option(False, "Keep the weights of the best validation epoch (Keras' EarlyStopping).")
    class_weight: bool = option(False, "Weigh both classes equally in the loss.")
    unfreeze_top: int = option(0, "Backbone layers fine-tuned in a second phase (needs `fine_tune_epochs`).",
                               Interval(0))
    fine_tune_epochs: int = option(0, "Epochs of the second phase.", Interval(0))
    fine_tune_learning_rate: float = option(1e-5, "Learning rate of the second phase.", Interval(0, open_low=True))
    input_size: int = option(0, "Side of the square head input in pixels.", INPUT_SIZE)
    validation_fraction: float = option(0.15, "Share of each training part held out for EarlyStopping, by subject.",
                                        Interval(0, 1, open_low=True, open_high=True))
    mask_background: bool = option(False, "Black out the background around the segmented cell.")
    mixed_precision: bool = option(False, "Train in mixed_float16 (GPUs).")


@dataclass(frozen=True)
class CompareConfig:
    """Which models on which feature sets, under which evaluation protocol."""

    protocol: Protocol = option(Protocol.AUTO, "Evaluation: the dataset's official split, by subject or by image, "
                                               "or by blocks of 10 consecutive image numbers (`blocked-cv`, a proxy "
                                               "for source fields); `auto` picks official, else by subject, else by "
                                               "image, as the data allows.")
    folds: int = option(5, "Outer cross-validation folds.", Interval(2))
    inner_folds: int = option(3, "Inner cross-validation folds that tune the hyper-parameters.", Interval(2))
    models: tuple[ClassifierName, ...] = option(tuple(ClassifierName), "Classical classifiers.")
    feature_sets: tuple[FeatureSetKind, ...] = option(tuple(FeatureSetKind),
                                                      "Feature sets the classifiers are compared on.")
    hybrid_pca: int = option(0, "Principal components of the embedding part of hybrid sets.",
                             Interval(0, meaning="0: no PCA"))
    bootstrap: int = option(1000, "Bootstrap resamples of the 95 % confidence intervals.",
                            Interval(0, meaning="0: none"))
    block_size: int = option(10, "Consecutive image numbers per block under `blocked-cv` (a proxy for a source "
                                 "field).", POSITIVE)
    repeats: int = option(1, "Outer cross-validations, with fold seeds `run.seed` onwards; the report shows the "
                             "mean and spread across them (5 for a paper; not with `official`).", POSITIVE)
    nested: bool = option(True, "Score the selection-corrected headline: the model and feature set chosen on "
                                "inner folds of each training part (several times the cost of the comparison).")
    qc: QcRule = option(QcRule.KEEP, "Cells with a segmentation qc_flag, in the classifiers' folds and the "
                                     "statistics (subjects.csv, univariate.csv): `keep` them or `drop_flagged`; the "
                                     "report shows the flagged cells per class either way.")


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one run."""

    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, JSON-serialisable view (enums as their values)."""
        return {
            section.name: {
                f.name: plain(getattr(getattr(self, section.name), f.name))
                for f in dataclasses.fields(getattr(self, section.name))
            }
            for section in dataclasses.fields(self)
        }

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str = "command line") -> Config:
        """Return a copy with ``{"section.key": value}`` overrides applied and checked.

        ``None`` values are ignored, so unset command-line flags can be passed as they are;
        strings are parsed for numbers, booleans, choices and comma-separated lists.

        Raises
        ------
        ConfigError
            An unknown key or a value that is not allowed; the message starts with ``source``.
        """
        return _apply(self, [(source, overrides, False)])


def _apply(config: Config, layers: Iterable[tuple[str, Mapping[str, Any], bool]]) -> Config:
    """Apply ``(source, {"section.key": value}, strict)`` layers in order, then check the result."""
    sections = {s.name: getattr(config, s.name) for s in dataclasses.fields(config)}
    origins: dict[str, str] = {}
    for source, values, strict in layers:
        for dotted, value in values.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            if section not in sections:
                raise ConfigError(f"{source}: unknown section '{section}'; allowed: {', '.join(sections)}")
            names = [f.name for f in dataclasses.fields(sections[section])]
            if key not in names:
                raise ConfigError(f"{source}: unknown key '{dotted}'; allowed keys in [{section}]: {', '.join(names)}")
            annotation = typing.get_type_hints(type(sections[section]))[key]
            checked = coerce(value, annotation, f"{source}: key '{dotted}'", strict=strict)
            sections[section] = dataclasses.replace(sections[section], **{key: checked})
            origins[dotted] = source
    for dotted, source in origins.items():
        section, _, key = dotted.partition(".")
        spec = next(f for f in dataclasses.fields(sections[section]) if f.name == key)
        value = getattr(sections[section], key)
        if problem := field_problem(spec, value):
            raise ConfigError(f"{source}: key '{dotted}': {problem}")
        if resolve := spec.metadata.get("resolve"):
            sections[section] = dataclasses.replace(sections[section], **{key: resolve(value)})
    checked_config = Config(**sections)
    try:
        _check_together(checked_config)
    except ValueError as exc:
        raise ConfigError(f"{' + '.join(dict.fromkeys(origins.values())) or 'defaults'}: {exc}") from None
    return checked_config


def _check_together(config: Config) -> None:
    """The checks that span keys or need another module's check; ``ValueError`` names the keys."""
    data, run, features, heads = config.data, config.run, config.features, config.heads
    if data.demo_cells < data.demo_subjects:
        raise ValueError(f"data.demo_cells = {data.demo_cells} is below data.demo_subjects = "
                         f"{data.demo_subjects}; the demo needs at least one cell per subject")
    if run.scheduler and run.backend is not Backend.DASK:
        raise ValueError(f"run.scheduler is set but run.backend is '{run.backend.value}'; set backend = "
                         "\"dask\" to use the scheduler, or remove scheduler")
    if run.backend is Backend.DASK and importlib.util.find_spec("distributed") is None:
        raise ValueError("run.backend = 'dask' needs dask.distributed, which is not installed; run "
                         "pip install 'leukoscope[dask]' or set backend = \"loky\"")
    check_options(haralick_distance=features.haralick_distance, haralick_levels=features.haralick_levels)
    for section in (features, heads):
        name = "features" if section is features else "heads"
        for backbone in section.backbones:
            try:
                get_backbone(backbone).check_input_size(section.input_size)
            except ValueError as exc:
                raise ValueError(f"key '{name}.input_size': {exc}") from None
    if features.weights not in (AUTO, IMAGENET, RANDOM):
        folder = Path(features.weights).expanduser()
        missing = [spec.weights_file for spec in map(get_backbone, dict.fromkeys(features.backbones + heads.backbones))
                   if not (folder / spec.weights_file).is_file()]
        if missing:
            raise ValueError(f"key 'features.weights': the folder '{features.weights}' lacks {', '.join(missing)}; "
                             "put the official Keras no-top files there (README, 'CNN backbones and weights') "
                             "or set weights = \"auto\"")
    if config.compare.repeats > 1 and config.compare.protocol is Protocol.OFFICIAL:
        raise ValueError(f"compare.repeats = {config.compare.repeats} repeats a cross-validation with other fold "
                         "seeds, but compare.protocol = 'official' is one fixed split; set repeats = 1 or a "
                         "cross-validation protocol")
    if heads.unfreeze_top > 0 and heads.fine_tune_epochs == 0:
        raise ValueError(f"heads.unfreeze_top = {heads.unfreeze_top} asks for a second fine-tuning phase but "
                         "heads.fine_tune_epochs is 0; set fine_tune_epochs (e.g. 5) or unfreeze_top = 0")


def _shipped() -> Any:
    return resources.files("leukoscope") / "configs"


def config_names() -> list[str]:
    """Names of the configs shipped in the package (``demo``, ``cnmc``, ``allidb2``), sorted."""
    return sorted(p.name.removesuffix(".toml") for p in _shipped().iterdir() if p.name.endswith(".toml"))


def config_text(name: str) -> str:
    """The TOML text of a shipped config, comments included (for ``leukoscope config show NAME``).

    Raises
    ------
    ConfigError
        ``name`` is not a shipped config; the message lists the names.
    """
    if name not in config_names():
        raise ConfigError(f"no shipped config is called '{name}'; shipped: {', '.join(config_names())}")
    return (_shipped() / f"{name}.toml").read_text(encoding="utf-8")


def _read(path: str | Path) -> tuple[str, str]:
    """``(label for errors, TOML text)`` of a shipped config's name or a file's path."""
    if str(path) in config_names():
        return f"config '{path}'", config_text(str(path))
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist; pass a shipped config's name "
                          f"({', '.join(config_names())}) or an existing .toml file") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read as text ({exc}); pass a .toml file") from None


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, *,
                source: str = "command line") -> Config:
    """Load a config, apply overrides, and check every value.

    Parameters
    ----------
    path : str or Path or None
        A shipped config's name (:func:`config_names`) or a TOML file; ``None`` gives the
        defaults. Relative paths inside the file stay relative to the current directory.
    overrides : mapping of str to Any, optional
        ``{"section.key": value}`` applied on top of the file (``None`` values ignored), as
        :meth:`Config.with_overrides` does; files and folders are checked after they are applied,
        so an override can replace a path of the file that does not exist here.
    source : str
        How errors name the overrides.

    Returns
    -------
    Config
        The frozen, checked configuration.

    Raises
    ------
    ConfigError
        The file is missing or not valid TOML, or a section, key or value is not allowed (a
        string where a number is expected included); the one-line message names the file, the
        key and the allowed values.
    """
    layers: list[tuple[str, Mapping[str, Any], bool]] = []
    if path is not None:
        label, text = _read(path)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file '{label}' is not valid TOML: {exc}") from None
        sections = [s.name for s in dataclasses.fields(Config)]
        for name, values in raw.items():
            if name not in sections:
                raise ConfigError(f"{label}: unknown section [{name}]; allowed sections: {', '.join(sorted(sections))}")
            if not isinstance(values, dict):
                raise ConfigError(f"{label}: [{name}] must be a table of keys, got {values!r}")
        layers.append((label, {f"{name}.{key}": v for name, values in raw.items() for key, v in values.items()}, True))
    if overrides:
        layers.append((source, overrides, False))
    return _apply(Config(), layers)


__all__ = [
    "CompareConfig", "Config", "ConfigError", "DataConfig", "FeaturesConfig", "FieldsConfig", "HeadsConfig",
    "RunConfig", "SegmentationConfig", "config_names", "config_text", "load_config",
]

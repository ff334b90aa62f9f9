"""The ``leukoscope`` command line's parsers: each subcommand's options, their defaults, an example.

A subcommand takes only the options of the stages it runs (:data:`ANALYSES`): ``fields`` cuts
cells out of whole fields, ``segment`` adds the segmentation's, ``features`` the features', and
``compare`` and ``train`` the evaluation's. Every option's help ends with its default: for a flag
that overrides a config key (:data:`OVERRIDES`), the default of that key in
:class:`~leukoscope.pipeline.config.Config` (the value used when neither ``--config`` nor the flag
sets it; :func:`config_default`). Every subcommand's help ends with one example command line
(:data:`EXAMPLES`), kept as written.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any

from leukoscope import __version__
from leukoscope.classifiers.choices import Protocol
from leukoscope.pipeline.choices import FIELD_KINDS, Backend, DatasetKind
from leukoscope.pipeline.config import Config, DataConfig, RunConfig, config_names
from leukoscope.pipeline.refiner_data import TrainingSettings
from leukoscope.segmentation.choices import Refiner

#: command-line flag (argparse dest) -> config key it overrides
OVERRIDES = {
    "data": "data.path",
    "dataset": "data.dataset",
    "masks": "data.masks",
    "out": "run.out",
    "jobs": "run.jobs",
    "backend": "run.backend",
    "scheduler": "run.scheduler",
    "seed": "run.seed",
    "quiet": "run.quiet",
    "backbones": "features.backbones",
    "weights": "features.weights",
    "refiner": "segmentation.refiner",
    "refiner_model": "segmentation.refiner_model",
    "protocol": "compare.protocol",
    "folds": "compare.folds",
    "models": "compare.models",
    "feature_sets": "compare.feature_sets",
    "hybrid_pca": "compare.hybrid_pca",
    "bootstrap": "compare.bootstrap",
    "heads": "heads.backbones",
    "red_cell_diameter": "fields.red_cell_diameter",
    "boxes": "fields.boxes",
    "format": "features.format",
}
#: the keys ``predict`` takes from the command line (the rest comes from the model card)
PREDICT_OVERRIDES = ("data", "dataset", "out", "jobs", "backend", "scheduler", "quiet", "bootstrap", "refiner_model")
#: the analysis subcommands, each running the stages of the one before it and its own
ANALYSES = {
    "fields": "find the white cells of whole smear fields and cut each out as a C-NMC-style cell",
    "segment": "segment every cell (whole cell, nucleus, cytoplasm) with overlays",
    "features": "handcrafted features, their statistics per subject and per feature, and frozen-CNN "
                "embeddings as CSV (and Parquet)",
    "compare": "classifiers on every feature set, evaluated without patient leakage, with a report",
    "train": "fit the chosen models on the labelled training data and write a model folder each "
             "(RUN/models/<name>), after compare when its results are missing",
}
#: one real command line per subcommand (and the program), shown at the end of its help
EXAMPLES = {
    "leukoscope": "leukoscope compare --config demo --out runs/demo",
    "demo-data": "leukoscope demo-data data/demo --subjects 12 --cells 240",
    "fields": "leukoscope fields --data /data/BCCD --dataset voc --boxes --out runs/bccd",
    "segment": "leukoscope segment --config demo --masks data/demo/masks --out runs/demo",
    "features": "leukoscope features --config demo --backbones resnet50,vgg16 --out runs/demo",
    "compare": "leukoscope compare --config allidb2 --backbones none \\\n"
               "    --feature-sets handcrafted --protocol blocked-cv --out runs/idb2",
    "train": "leukoscope train --config demo --models xgboost --feature-sets handcrafted \\\n"
             "    --out runs/demo",
    "predict": "leukoscope predict --model runs/demo/models/xgboost_handcrafted \\\n"
               "    --data new_cells --out runs/new",
    "train-refiner": "leukoscope train-refiner --data data/demo --masks data/demo/masks \\\n"
                     "    --out refiner.keras --epochs 10",
    "config": "leukoscope config show cnmc",
}
#: after the options of a subcommand that reads ``--config``
CONFIG_NOTE = ("A flag overrides the --config file; a default shown is the value used when neither sets it "
               "('leukoscope config show NAME' prints a shipped config).")


class HelpFormatter(argparse.HelpFormatter):
    """Wraps the description and the notes to the terminal, keeps indented lines (the example) as written."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("max_help_position", 30)
        super().__init__(prog, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        prose: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line.startswith(" "):
                prose.append(line.strip())
                continue
            if prose:
                lines.append(textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent))
                prose.clear()
            lines.append(indent + line if line.strip() else "")
        return "\n".join(lines).rstrip("\n")

    def _split_lines(self, text: str, width: int) -> list[str]:
        """An option's help, its closing ``(default: ...)`` kept on one line."""
        found = re.search(r"\(default: [^()]*\)$", text)
        if found:
            text = text[:found.start()] + found.group().replace(" ", "\0")
        return [line.replace("\0", " ") for line in super()._split_lines(text, width)]


def shown(value: Any, description: str = "") -> str:
    """How a help text writes a default: ``on``/``off``, an enum's value, a comma-separated list;
    an empty string or list as the ``(empty: ...)`` note of the key's ``description``, else ``none``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)) and value:
        return ",".join(shown(v) for v in value)
    if value in ("", (), []):
        found = re.search(r"empty: ([^);]+)", description)
        return found.group(1) if found else "none"
    return str(value)


def config_default(key: str) -> str:
    """The default of config key ``section.name`` (:class:`Config`), as a help text writes it."""
    section, _, name = key.partition(".")
    values = getattr(Config(), section)
    spec = next(f for f in dataclasses.fields(values) if f.name == name)
    return shown(getattr(values, name), spec.metadata.get("help", ""))


def _option(parser: argparse.ArgumentParser, flag: str, text: str, shown_as: str | None, **kwargs: Any) -> None:
    """Add ``flag`` with help ``text`` and, unless ``shown_as`` is None, ``(default: shown_as)`` after it."""
    suffix = "" if shown_as is None else f" (default: {shown_as})"
    parser.add_argument(flag, help=(text + suffix).replace("%", "%%"), **kwargs)


def _override(parser: argparse.ArgumentParser, dest: str, text: str, *, shown_as: str | None = None,
              **kwargs: Any) -> None:
    """Add the flag of config key ``OVERRIDES[dest]``, shown with that key's default (or ``shown_as``)."""
    if not kwargs.get("required", False):
        shown_as = shown_as or config_default(OVERRIDES[dest])
    _option(parser, "--" + dest.replace("_", "-"), text, shown_as, dest=dest, **kwargs)


def _values(enum: type[Enum], exclude: frozenset[Any] = frozenset()) -> str:
    return ", ".join(str(member.value) for member in enum if member not in exclude)


def _add_io_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Where the data are, where the run goes, and how the work is run (every analysis command)."""
    _override(parser, "data", "dataset folder, or a manifest CSV (path,label[,subject][,split])", metavar="PATH",
              required=required)
    _override(parser, "out", "run directory", metavar="DIR", required=required)
    fields = ", ".join(kind.value for kind in DatasetKind if kind in FIELD_KINDS)
    _override(parser, "dataset", f"layout of --data: {_values(DatasetKind, FIELD_KINDS)}; whole fields: {fields}",
              metavar="KIND")
    _override(parser, "jobs", "parallel workers (at most the cores available; -1: all cores)", type=int,
              metavar="N")
    _override(parser, "backend", f"joblib backend: {_values(Backend)}", metavar="NAME")
    _override(parser, "scheduler", "address of a Dask scheduler, e.g. tcp://host:8786 (implies --backend dask)",
              metavar="ADDRESS")
    _override(parser, "quiet", "warnings and errors only: no progress, no notes", action="store_true", default=None)
    _option(parser, "--force", "reuse a run directory made from another dataset: delete its earlier results "
                               "(caches are kept)", shown(False), action="store_true")


def _add_analysis_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options of the stages ``command`` runs (:data:`ANALYSES`: each adds to the one before it)."""
    _option(parser, "--config", f"a shipped config's name ({', '.join(config_names())}) or a .toml file",
            "none", metavar="NAME|FILE")
    _add_io_options(parser)
    _override(parser, "red_cell_diameter", "whole fields: the red cells' diameter in pixels (BCCD 100, ALL-IDB1 60)",
              type=float, metavar="PX")
    if command == "fields":
        _override(parser, "boxes", "score the detection against the annotated boxes (voc)", action="store_true",
                  default=None)
        return
    _override(parser, "masks", "folder of expert masks to score the segmentation against", metavar="DIR")
    _override(parser, "refiner", f"mask refiner: {_values(Refiner)}", metavar="NAME")
    _override(parser, "refiner_model", "refiner .keras model file", metavar="FILE")
    if command == "segment":
        return
    _override(parser, "seed", "random seed", type=int, metavar="N")
    _override(parser, "backbones", "comma-separated CNN backbones, 'all' or 'none'", metavar="LIST")
    _override(parser, "weights", "CNN weights: auto, imagenet, random, or a folder of .h5 files", metavar="WEIGHTS")
    _override(parser, "format", "features tables: csv, or parquet for a typed Parquet copy beside every CSV",
              metavar="FORMAT")
    if command == "features":
        return
    _override(parser, "protocol", f"evaluation: {_values(Protocol)}", metavar="NAME")
    _override(parser, "folds", "outer cross-validation folds", type=int, metavar="N")
    _override(parser, "models", "comma-separated classifiers", metavar="LIST")
    _override(parser, "feature_sets", "comma-separated feature sets", metavar="LIST")
    _override(parser, "hybrid_pca", "PCA components of the embedding part of hybrid sets (0: none)", type=int,
              metavar="N")
    _override(parser, "bootstrap", "bootstrap resamples for the 95% intervals", type=int, metavar="N")
    _override(parser, "heads", "backbones to train sigmoid heads on (frozen; the paper's fine-tuning): "
                               "comma-separated, 'all' or 'none'", metavar="LIST")


def _command(sub: Any, name: str, text: str, *, description: str = "", note: str = "") -> argparse.ArgumentParser:
    """A subcommand's parser, its help ending with ``note`` and :data:`EXAMPLES`' line."""
    example = textwrap.indent(EXAMPLES[name], "  ")
    return sub.add_parser(name, help=text, description=description or text, formatter_class=HelpFormatter,
                          epilog=f"{note}\n\nExample:\n{example}" if note else f"Example:\n{example}")


def _add_demo_parser(sub: Any) -> None:
    demo = _command(sub, "demo-data", "write the synthetic demo dataset (C-NMC layout)")
    data, run = DataConfig(), RunConfig()
    demo.add_argument("out_dir", type=Path, help="destination folder")
    for flag, text, default in (("--subjects", "number of subjects (even, >= 4)", data.demo_subjects),
                                ("--cells", "number of cells", data.demo_cells),
                                ("--seed", "random seed", data.demo_seed), ("--jobs", "parallel workers", run.jobs)):
        _option(demo, flag, text, shown(default), type=int, default=default, metavar="N")
    _option(demo, "--quiet", "no progress bar", shown(False), action="store_true")


def _add_predict_parser(sub: Any) -> None:
    text = "apply a trained model folder to new cells (labelled or not): predictions per cell and per subject"
    predict = _command(sub, "predict", text, note="The model card gives every other setting, and the defaults "
                                                  "of --bootstrap and --refiner-model.")
    predict.add_argument("--model", type=Path, required=True, metavar="DIR",
                         help="model folder written by 'leukoscope train'")
    _add_io_options(predict, required=True)
    card = "the model card's"
    _override(predict, "bootstrap", "bootstrap resamples for the 95% intervals (labelled cells)", type=int,
              metavar="N", shown_as=card)
    _override(predict, "refiner_model", "the refiner .keras file the model was trained with, when it is "
                                        "elsewhere here", metavar="FILE", shown_as=card)


def _add_train_refiner_parser(sub: Any) -> None:
    defaults = TrainingSettings()
    parser = _command(sub, "train-refiner", "train the U-Net mask refiner on images with expert masks",
                      description="Train the U-Net that corrects the threshold masks, on one or several datasets "
                                  "with expert masks (pairs of --data and --masks, matched by file stem).")
    parser.add_argument("--data", action="append", required=True, type=Path, metavar="DIR",
                        help="dataset folder (repeatable)")
    parser.add_argument("--masks", action="append", required=True, type=Path, metavar="DIR",
                        help="its expert-mask folder (one per --data, in the same order)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="model file to write (MODEL.keras)")
    _option(parser, "--config", "a shipped config's name or a .toml file whose [segmentation] thresholding is "
                                "refined", "none", metavar="NAME|FILE")
    for name, text in (("side", "input side of the U-Net"), ("depth", "U-Net levels"),
                       ("width", "filters of the first level"),
                       ("epochs", "most epochs (more where --min-steps needs them)"),
                       ("min_steps", "fewest optimiser steps (small training sets get more epochs)"),
                       ("patience", "early-stopping patience (epochs)"), ("batch_size", "images per step"),
                       ("learning_rate", "Adam learning rate"),
                       ("validation_fraction", "share of each source held out for early stopping"),
                       ("test_fraction", "share of each source held out for the test scores"),
                       ("cutouts", "probability of showing a training image as its cut-out on black"),
                       ("limit", "use at most this many pairs of each source (0: all)"), ("seed", "random seed")):
        default = getattr(defaults, name)
        _option(parser, f"--{name.replace('_', '-')}", text, shown(default), dest=name, type=type(default),
                default=default, metavar="X" if isinstance(default, float) else "N")
    _option(parser, "--jobs", "parallel image readers", shown(RunConfig().jobs), type=int,
            default=RunConfig().jobs, metavar="N")
    _option(parser, "--quiet", "no progress output", shown(False), action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The ``leukoscope`` parser: every subcommand with only its options, their defaults and an example."""
    parser = argparse.ArgumentParser(
        prog="leukoscope", formatter_class=HelpFormatter,
        description="Tell ALL blasts from normal white blood cells in microscope images.",
        epilog="'leukoscope COMMAND --help' lists a command's options.\n\nExample:\n  " + EXAMPLES["leukoscope"])
    parser.add_argument("--version", action="version", version=f"leukoscope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo_parser(sub)
    for name, text in ANALYSES.items():
        _add_analysis_options(_command(sub, name, text, note=CONFIG_NOTE), name)
    _add_predict_parser(sub)
    _add_train_refiner_parser(sub)
    shown_config = _command(sub, "config", "list the shipped configs or print one",
                            description="List the configs shipped in the package, or print one to start your own "
                                        "from.")
    shown_config.add_argument("action", choices=["list", "show"], help="list the names, or show one config's TOML")
    shown_config.add_argument("name", nargs="?", help="config name for 'show' (e.g. demo)")
    return parser


__all__ = ["ANALYSES", "CONFIG_NOTE", "EXAMPLES", "OVERRIDES", "PREDICT_OVERRIDES", "HelpFormatter", "build_parser",
           "config_default", "shown"]

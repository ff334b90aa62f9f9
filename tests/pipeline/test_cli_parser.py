import argparse
import re
import shlex

import pytest

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.pipeline.cli_parser import EXAMPLES, OVERRIDES, build_parser, config_default, shown

IO = {"data", "out", "dataset", "jobs", "backend", "scheduler", "quiet", "force"}
SEGMENTATION = {"masks", "refiner", "refiner_model"}
FEATURES = {"seed", "backbones", "weights", "format"}
EVALUATION = {"protocol", "folds", "models", "feature_sets", "hybrid_pca", "bootstrap", "heads"}
#: each subcommand's options (argparse dests): those of the stages it runs, hand-listed
OPTIONS = {
    "demo-data": {"subjects", "cells", "seed", "jobs", "quiet"},
    "fields": {"config", "red_cell_diameter", "boxes"} | IO,
    "segment": {"config", "red_cell_diameter"} | IO | SEGMENTATION,
    "features": {"config", "red_cell_diameter"} | IO | SEGMENTATION | FEATURES,
    "compare": {"config", "red_cell_diameter"} | IO | SEGMENTATION | FEATURES | EVALUATION,
    "train": {"config", "red_cell_diameter"} | IO | SEGMENTATION | FEATURES | EVALUATION,
    "predict": {"model", "bootstrap", "refiner_model"} | IO,
    "train-refiner": {"data", "masks", "out", "config", "side", "depth", "width", "epochs", "min_steps", "patience",
                      "batch_size",
                      "learning_rate", "validation_fraction", "test_fraction", "cutouts", "limit", "seed", "jobs",
                      "quiet"},
    "config": set(),
}
DEFAULT = re.compile(r"\(default: ([^()]+)\)$")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """The program's parser (as ``leukoscope``) and every subcommand's."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"leukoscope": parser, **sub.choices}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", "version")]


def _example(parser: argparse.ArgumentParser) -> list[str]:
    """The example's argv (without ``leukoscope``), its continuation lines joined."""
    _, found, example = (parser.epilog or "").partition("Example:\n")
    assert found, f"{parser.prog}: no example"
    argv = shlex.split(example.replace("\\\n", " "))
    assert argv[0] == "leukoscope"
    return argv[1:]


def test_every_subcommand_has_an_example_that_parses():
    parsers = _parsers()
    assert set(parsers) == set(EXAMPLES) == set(OPTIONS) | {"leukoscope"}
    for name, parser in parsers.items():
        argv = _example(parser)
        if name != "leukoscope":
            assert argv[0] == name
        args = parsers["leukoscope"].parse_args(argv)  # exits (SystemExit) on an option the command lacks
        assert args.command == argv[0]


def test_each_subcommand_takes_only_the_options_of_the_stages_it_runs():
    parsers = _parsers()
    for name, expected in OPTIONS.items():
        assert {a.dest for a in _options(parsers[name])} == expected, name
    segment = parsers["segment"].format_help()
    for flag in ("--backbones", "--weights", "--heads", "--models", "--format", "--boxes", "--seed"):
        assert flag not in segment
    assert "--backbones" in parsers["features"].format_help() and "--heads" not in parsers["features"].format_help()
    assert set(OVERRIDES) <= set().union(*OPTIONS.values())  # every config flag belongs to some command


def test_every_option_with_a_default_shows_it():
    for name, parser in _parsers().items():
        for action in _options(parser):
            found = DEFAULT.search(action.help.replace("%%", "%"))
            if action.required:
                assert found is None, f"{name} {action.dest}"
                continue
            assert found, f"{name} {action.option_strings[0]}: no default in {action.help!r}"
            if name == "predict" and action.dest in ("bootstrap", "refiner_model"):
                assert found.group(1) == "the model card's"
            elif action.dest in OVERRIDES and name not in ("demo-data", "train-refiner"):
                assert found.group(1) == config_default(OVERRIDES[action.dest]), f"{name} {action.dest}"
            elif action.dest != "config":
                assert found.group(1) == shown(action.default), f"{name} {action.dest}"


@pytest.mark.parametrize(("command", "flag", "default"), [
    ("segment", "--jobs", "1"),
    ("segment", "--out", "runs/demo"),
    ("segment", "--refiner-model", "the model shipped in the package"),
    ("segment", "--scheduler", "a local cluster"),
    ("fields", "--red-cell-diameter", "100"),
    ("fields", "--boxes", "off"),
    ("compare", "--folds", "5"),
    ("compare", "--bootstrap", "1000"),
    ("compare", "--models", "svm,logreg,rf,knn,xgboost"),
    ("compare", "--heads", "none"),
    ("demo-data", "--cells", "240"),
    ("train-refiner", "--learning-rate", "0.002"),
])
def test_defaults_are_the_config_dataclass_values(command, flag, default):
    (action,) = [a for a in _options(_parsers()[command]) if flag in a.option_strings]
    assert action.help.endswith(f"(default: {default})")


def test_defaults_are_written_as_the_command_line_takes_them():
    assert shown(True) == "on" and shown(False) == "off"
    assert shown(100.0) == "100" and shown(0.15) == "0.15" and shown(7) == "7"
    assert shown((ClassifierName.SVM, ClassifierName.KNN)) == "svm,knn"
    assert shown(()) == "none" and shown("") == "none"
    assert shown("", "Refiner model file (empty: the shipped model).") == "the shipped model"
    assert shown("", "Dask scheduler (with `backend`; empty: a local cluster).") == "a local cluster"
    assert config_default("compare.folds") == "5" and config_default("data.dataset") == "auto"


def test_help_fits_80_columns_with_the_defaults_and_the_example_unbroken(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for name, parser in _parsers().items():
        text = parser.format_help()
        assert max(map(len, text.splitlines())) <= 80, name
        assert not re.search(r"\(default:\s*\n", text), name
        assert all(f"  {line}" in text.splitlines() for line in EXAMPLES[name].splitlines()), name

"""Bad inputs mixed into a real (ALL-IDB2) and a demo (C-NMC layout) dataset.

Each dataset is copied twice (:mod:`tests.reliability.corpus`): ``clean`` holds good and
awkward-but-valid files, ``dirty`` the same plus one file of every bad kind (and, for C-NMC, a
labels-CSV row whose image is missing). ``segment``, ``features`` and ``compare`` run on both
through the command line. The dirty run must finish, list every bad file exactly once in
``rejected.csv`` with a reason that names the problem, and give every good sample the very
outputs of the clean run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.rundir import RunDir

from .corpus import BAD_KINDS, Corpus, build_corpus

GOOD_PER_CLASS = 8  # ALL-IDB2 cells of each class copied into the corpus
AWKWARD_FOLDER = "dossier spécial ü 2"  # spaces and non-ASCII characters
COMMANDS = ("segment", "features", "compare")
CONFIG = """
[run]
jobs = 1
quiet = true
[segmentation]
background = "{background}"
[features]
backbones = []
[heads]
backbones = []
[compare]
protocol = "{protocol}"
folds = 3
inner_folds = 2
models = ["logreg", "knn"]
feature_sets = ["handcrafted"]
bootstrap = 20
"""
SAFE_ID = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"


@dataclass
class Runs:
    """The corpus of one dataset, its two run folders and the CLI exit codes."""

    corpus: Corpus
    clean: RunDir
    dirty: RunDir
    codes: dict[tuple[str, str], int]
    awkward: tuple[Path, Path]  # the path with spaces and non-ASCII characters, the duplicate name
    missing_row: str = ""  # file name of the labels-CSV row without an image ("" for none)


def _allidb2_corpus(dest: Path, shared_data: Path) -> tuple[Corpus, str, str, str]:
    img = shared_data / "all-idb2" / "img"
    good = sorted(img.glob("Im*_1.tif"))[:GOOD_PER_CLASS] + sorted(img.glob("Im*_0.tif"))[:GOOD_PER_CLASS]
    awkward, duplicate = f"img/{AWKWARD_FOLDER}/Im951_1.tif", f"img/other/{good[1].name}"
    corpus = build_corpus(dest, good, name_bad=lambda i, suffix: f"img/Im{900 + i}_{i % 2}{suffix}",
                          root_of=lambda _: img.parent, awkward_name=awkward, duplicate_name=duplicate)
    return corpus, awkward, duplicate, ""


def _demo_corpus(dest: Path) -> tuple[Corpus, str, str, str]:
    source = dest / "source"
    top = generate_demo(source, subjects=6, cells=18, seed=3)
    good = sorted(top.rglob("*.bmp"))
    labels_csv = next(top.glob("validation_data/*labels.csv"))
    folder = f"{top.name}/training_data/fold_0/all"
    awkward, duplicate = f"{folder}/{AWKWARD_FOLDER}/UID_1_9_9_all.bmp", f"{folder}/copies/{good[1].name}"
    corpus = build_corpus(
        dest / "corpus", good, extras=[labels_csv], root_of=lambda _: source,
        name_bad=lambda i, suffix: (f"{top.name}/training_data/fold_0/{('all', 'hem')[i % 2]}/"
                                    f"UID_{('1', 'H1')[i % 2]}_8_{i + 1}_{('all', 'hem')[i % 2]}{suffix}"),
        awkward_name=awkward, duplicate_name=duplicate,
    )
    missing = "99.bmp"
    dirty_csv = corpus.dirty / labels_csv.relative_to(source)
    with open(dirty_csv, "a", encoding="utf-8") as handle:
        handle.write(f"UID_1_8_99_all.bmp,{missing},1\n")
    return corpus, awkward, duplicate, missing


@pytest.fixture(
    scope="module",
    params=[pytest.param("allidb2", marks=[pytest.mark.shared_data, pytest.mark.slow]),
            pytest.param("demo", marks=pytest.mark.slow)],
)
def runs(request, tmp_path_factory) -> Runs:
    """Build the corpus of one dataset and run segment, features, compare on clean and dirty."""
    dest = tmp_path_factory.mktemp(request.param)
    if request.param == "allidb2":
        corpus, awkward, duplicate, missing = _allidb2_corpus(dest, request.getfixturevalue("shared_data"))
        background, protocol = "smear", "stratified-cv"
    else:
        corpus, awkward, duplicate, missing = _demo_corpus(dest)
        background, protocol = "black", "official"
    config = dest / "config.toml"
    config.write_text(CONFIG.format(background=background, protocol=protocol), encoding="utf-8")
    codes = {}
    for side, data in (("clean", corpus.clean), ("dirty", corpus.dirty)):
        for command in COMMANDS:
            codes[side, command] = cli.main([
                command, "--config", str(config), "--data", str(data),
                "--dataset", "allidb2" if request.param == "allidb2" else "cnmc", "--out", str(dest / f"run-{side}"),
            ])
    return Runs(corpus, RunDir(dest / "run-clean"), RunDir(dest / "run-dirty"), codes,
                (corpus.clean / awkward, corpus.clean / duplicate), missing)


def _csv(run: RunDir, relative: str) -> pd.DataFrame:
    return pd.read_csv(run.path / relative, dtype=str, keep_default_na=False)


def test_every_command_finishes(runs):
    assert runs.codes == {key: 0 for key in runs.codes}
    for run in (runs.clean, runs.dirty):
        assert run.read_info()["status"] == "ok"


def test_each_bad_file_is_rejected_once_with_its_reason(runs):
    rejected = runs.dirty.read_rejected()
    for kind, path in runs.corpus.bad.items():
        rows = rejected[rejected["path"] == os.path.realpath(path)]
        assert len(rows) == 1, f"{kind}: {len(rows)} rows in rejected.csv for {path.name}"
        reason = rows["reason"].iloc[0]
        assert BAD_KINDS[kind][2].lower() in reason.lower(), f"{kind}: {reason}"
        assert path.name in reason or kind == "symlink_loop", f"{kind}: the reason does not name the file: {reason}"
    expected = len(BAD_KINDS) + bool(runs.missing_row)
    assert len(rejected) == expected, rejected.to_string()
    if runs.missing_row:
        row = rejected[rejected["path"].str.endswith(runs.missing_row)]
        assert len(row) == 1 and "labels CSV" in row["reason"].iloc[0] and "has no image file" in row["reason"].iloc[0]


def test_no_good_sample_is_lost(runs):
    assert runs.clean.read_rejected().empty, runs.clean.read_rejected().to_string()
    good = set(runs.clean.read_manifest()["sample_id"])
    for run in (runs.clean, runs.dirty):
        assert set(_csv(run, "segmentation/segmentation.csv")["sample_id"]) == good
        assert set(_csv(run, "features/handcrafted.csv")["sample_id"]) == good


def test_awkward_paths_get_distinct_safe_ids(runs):
    manifest = runs.clean.read_manifest()
    assert manifest["sample_id"].is_unique
    assert manifest["sample_id"].str.fullmatch(SAFE_ID).all()
    ids = manifest.set_index("path")["sample_id"]
    awkward, duplicate = (ids[os.path.realpath(p)] for p in runs.awkward)
    original = ids[os.path.realpath(runs.awkward[1].parent.parent / runs.awkward[1].name)]
    assert len({awkward, duplicate, original}) == 3
    assert "dossier_special_u_2" in awkward  # accents dropped, spaces replaced
    assert not any("loop" in path for path in manifest["path"])  # the folder link is not followed


@pytest.mark.parametrize("table", [
    "segmentation/segmentation.csv", "features/handcrafted.csv", "compare/results.csv", "compare/predictions.csv",
])
def test_good_samples_give_the_same_tables(runs, table):
    clean, dirty = _csv(runs.clean, table), _csv(runs.dirty, table)
    pd.testing.assert_frame_equal(dirty, clean)


def test_good_samples_give_the_same_masks(runs):
    for sample_id in runs.clean.read_manifest()["sample_id"]:
        name = f"segmentation/masks/{sample_id}.png"
        assert (runs.dirty.path / name).read_bytes() == (runs.clean.path / name).read_bytes(), sample_id

"""Run-directory integrity: never a stale or mixed result, never a user file lost (issue #14, 1-5, 13).

Each test runs ``leukoscope`` through its command line on a small class-folder dataset
(:mod:`tests.reliability.integrity_data`) and checks the run directory against a fresh run of
the same data, byte for byte, or that the user's files are untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.rundir import RunDir

from .integrity_data import class_folders, demo_pool, write_config

pytestmark = pytest.mark.slow

PER_CLASS = 6
#: the tables of a compare run that must match a fresh run's
TABLES = ("manifest.csv", "segmentation/segmentation.csv", "features/handcrafted.csv", "compare/results.csv",
          "compare/predictions.csv", "compare/feature_sets.csv")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return demo_pool(tmp_path_factory.mktemp("pool"), cells=32)


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path / "config.toml")


def _run(command: str, config: Path, data: Path, out: Path, *extra: str) -> int:
    return cli.main([command, "--config", str(config), "--data", str(data), "--out", str(out), *extra])


def _same_files(got: Path, expected: Path, names) -> None:
    differ = [name for name in names if (got / name).read_bytes() != (expected / name).read_bytes()]
    assert not differ, f"differ from a fresh run: {differ}"


def _pngs(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.glob("segmentation/*/*.png"))}


def test_replaced_added_and_removed_images_give_the_results_of_a_fresh_run(pool, config, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    run = tmp_path / "run"
    assert _run("compare", config, data, run) == 0
    shutil.copyfile(pool["all"][PER_CLASS], data / "all" / "cell_00.bmp")  # another cell, same name
    shutil.copyfile(pool["hem"][PER_CLASS], data / "hem" / "cell_new.bmp")  # a new cell
    (data / "hem" / "cell_01.bmp").unlink()  # a removed cell
    assert _run("compare", config, data, run) == 0
    assert _run("compare", config, data, tmp_path / "fresh") == 0

    _same_files(run, tmp_path / "fresh", TABLES)
    assert _pngs(run) == _pngs(tmp_path / "fresh")  # the removed cell's mask and overlay are gone too
    counts = pd.read_csv(run / "compare" / "feature_sets.csv")
    assert counts["n_missing"].tolist() == [0]
    info = RunDir(run).read_info()
    assert info["stages"] == ["segmentation", "handcrafted", "statistics", "compare"]
    assert (info["segmentation"]["computed"], info["segmentation"]["from_cache"]) == (2, 2 * PER_CLASS - 2)


def test_nothing_changed_reruns_only_the_target_and_a_changed_setting_reruns_its_stage(pool, config, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    run = tmp_path / "run"
    assert _run("compare", config, data, run) == 0
    assert _run("compare", config, data, run) == 0
    assert RunDir(run).read_info()["stages"] == ["compare"]
    larger = write_config(tmp_path / "larger.toml", min_size=400)
    assert _run("compare", larger, data, run) == 0
    assert RunDir(run).read_info()["stages"] == ["segmentation", "handcrafted", "statistics", "compare"]
    assert _run("compare", larger, data, tmp_path / "fresh") == 0
    _same_files(run, tmp_path / "fresh", TABLES)


def test_a_run_directory_of_another_dataset_is_refused_and_force_starts_it_afresh(pool, config, tmp_path, capsys):
    first = class_folders(tmp_path / "a", pool, PER_CLASS)
    second = class_folders(tmp_path / "b", pool, PER_CLASS, start=2)
    run = tmp_path / "run"
    assert _run("features", config, first, run) == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _run("features", config, second, run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(first.resolve()) in err[0] and str(second.resolve()) in err[0] and "--force" in err[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # refused before touching anything

    assert _run("features", config, second, run, "--force") == 0
    assert _run("features", config, second, tmp_path / "fresh") == 0
    _same_files(run, tmp_path / "fresh", TABLES[:3])
    assert _pngs(run) == _pngs(tmp_path / "fresh")
    assert RunDir(run).read_info()["dataset"]["path"] == str(second.resolve())


def test_out_inside_the_data_folder_is_never_read_as_cells(pool, config, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    run = data / "all" / "results"  # inside a class folder: its overlays would be labelled ALL
    for _ in range(3):
        assert _run("segment", config, data, run) == 0
        manifest = RunDir(run).read_manifest()
        assert len(manifest) == 2 * PER_CLASS
        assert not manifest["path"].str.startswith(str(run.resolve())).any()


def test_an_input_inside_out_is_refused_and_left_as_it_was(pool, config, tmp_path, capsys):
    lab = class_folders(tmp_path / "lab", pool, PER_CLASS)
    manifest = lab / "manifest.csv"
    rows = [(f"{cls}/{p.name}", cls.upper()) for cls in ("all", "hem") for p in sorted((lab / cls).iterdir())]
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(manifest, index=False)
    original = manifest.read_bytes()
    assert _run("segment", config, manifest, lab) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "inside the run directory" in err and "Traceback" not in err
    assert manifest.read_bytes() == original
    assert sorted(p.name for p in lab.iterdir()) == ["all", "hem", "manifest.csv"]


def test_a_folder_of_user_files_is_refused_and_only_leukoscope_temporaries_are_deleted(pool, config, tmp_path, capsys):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    mine = tmp_path / "mine"
    mine.mkdir()
    notes = {mine / "notes.txt": b"my notes", mine / ".draft.tmp-1": b"an editor's file"}
    for path, content in notes.items():
        path.write_bytes(content)
    assert _run("segment", config, data, mine) == 2
    err = capsys.readouterr().err
    assert "holds files leukoscope did not write" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in mine.iterdir()} == notes

    run = tmp_path / "run"
    assert _run("segment", config, data, run) == 0
    user = {run / ".plan.tmp-7": b"user", run / "segmentation" / ".x.tmp-1": b"user",
            run / "segmentation" / "masks" / "notes.txt": b"user"}
    for path, content in user.items():
        path.write_bytes(content)
    leftover = run / "segmentation" / ".segmentation.csv.leukoscope.tmp-999999999"
    leftover.write_bytes(b"half a table")
    assert _run("segment", config, data, run) == 0
    assert {p: p.read_bytes() for p in user} == user
    assert not leftover.exists()


def test_two_bad_manifest_rows_naming_one_file_give_two_rejected_rows(pool, config, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    rows = [(f"{cls}/{p.name}", cls.upper()) for cls in ("all", "hem") for p in sorted((data / cls).iterdir())]
    rows += [("all/cell_00.bmp", "maybe"), ("all/cell_00.bmp", "perhaps")]
    manifest = data / "labels.csv"
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(manifest, index=False)
    assert _run("segment", config, manifest, tmp_path / "run") == 0
    rejected = RunDir(tmp_path / "run").read_rejected()
    assert len(rejected) == 2, rejected.to_string()
    assert sorted(rejected["reason"].str.extract(r"label '(\w+)'")[0]) == ["maybe", "perhaps"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["dataset"]["rejected_at_load"] == 2

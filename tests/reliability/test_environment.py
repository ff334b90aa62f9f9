"""Errors of the environment, not of leukoscope (issue #14, case 12): a read-only run directory,
a full disk, a foreign file or folder in the run directory, a damaged cache entry.

Each is one line on stderr naming the path and the fix, exit code 2, and ``run.json`` status
``failed`` with the reason wherever run.json can still be written; a damaged cache entry is
computed again.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages import segment

from .demo_runs import command
from .integrity_data import class_folders, demo_pool, write_config

PER_CLASS = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("environment")
    data = class_folders(root / "data", demo_pool(root / "pool", cells=16), PER_CLASS)
    return root, data, write_config(root / "config.toml")


@pytest.fixture
def segmented(dataset, tmp_path):
    _, data, config = dataset
    run = tmp_path / "run"
    assert cli.main(["segment", "--config", str(config), "--data", str(data), "--out", str(run)]) == 0
    return run, ["segment", "--config", str(config), "--data", str(data), "--out", str(run)]


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("leukoscope: error: "), err
    return err[0]


def _failed_with(run: Path, words: str) -> None:
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and words in info["error"], info.get("error")


def _without_root_powers() -> list[str]:
    """A command prefix under which root obeys file permissions too (``[]`` for other users)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root writes into read-only folders, and setpriv (util-linux) is missing to drop that power")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


@pytest.mark.slow
def test_a_read_only_run_directory_is_one_line(dataset, tmp_path):
    _, data, config = dataset
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    try:
        done = subprocess.run([*_without_root_powers(), *command("segment", "--config", str(config), "--data",
                                                                  str(data), "--out", str(out))],
                              capture_output=True, text=True, timeout=300)
    finally:
        out.chmod(0o755)
    assert done.returncode == 2, done.stderr
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert f"cannot write '{out}': Permission denied; make it writable for you, or pass another --out" in err[0]
    assert list(out.iterdir()) == []


def test_a_full_disk_is_one_line_and_run_json_says_failed(segmented, monkeypatch, capsys):
    run, args = segmented

    def full(frame, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(segment, "write_csv", full)
    capsys.readouterr()
    assert cli.main(args) == 2
    line = _one_error_line(capsys)
    assert f"cannot write '{run / 'segmentation' / 'segmentation.csv'}': No space left on device" in line
    assert "free space on that disk, or pass --out on another disk" in line
    _failed_with(run, "No space left on device")


def test_a_foreign_rejected_csv_is_one_line_and_run_json_says_failed(segmented, capsys):
    run, args = segmented
    (run / "rejected.csv").write_text("id,comment\n1,my own table\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(args) == 2
    line = _one_error_line(capsys)
    assert str(run / "rejected.csv") in line and "not written by leukoscope: move it away" in line
    _failed_with(run, "not written by leukoscope")
    assert (run / "rejected.csv").read_text(encoding="utf-8") == "id,comment\n1,my own table\n"


def test_a_folder_in_place_of_a_cache_entry_is_one_line_and_left_alone(segmented, capsys):
    run, args = segmented
    entry = sorted(run.glob("segmentation/cache/segment-*/*.npz"))[0]
    entry.unlink()
    (entry / "mine").mkdir(parents=True)
    capsys.readouterr()
    assert cli.main(args) == 2
    line = _one_error_line(capsys)
    assert f"'{entry}' is not a cache entry file leukoscope wrote" in line and "remove it" in line
    _failed_with(run, "is not a cache entry file")
    assert (entry / "mine").is_dir()


def test_a_cache_entry_declaring_a_huge_array_is_computed_again(segmented, capsys):
    run, args = segmented
    entry = sorted(run.glob("segmentation/cache/segment-*/*.npz"))[0]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(entry, "w") as archive:
        archive.writestr("cell_area.npy", header.getvalue() + bytes(64))
    assert cli.main(args) == 0
    with np.load(entry, allow_pickle=False) as data:
        assert data["cell_area"].shape == ()
    info = RunDir(run).read_info()
    assert info["status"] == "ok" and info["segmentation"]["computed"] == 1

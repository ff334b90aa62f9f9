"""Files that once stopped or hung a whole run (issue #14, cases 6-8): a name that is not valid
UTF-8, a legal 252-byte name, a named pipe and a link to ``/dev/zero`` named ``.bmp``.

Each is a rejected.csv row or processed like any other image; the run finishes. The hang test
runs ``leukoscope`` in a child process with its own timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.atomic import NAME_MAX, temporary_name
from leukoscope.pipeline.rundir import RunDir

from .demo_runs import command
from .integrity_data import class_folders, demo_pool, write_config

PER_CLASS = 3
HANG_TIMEOUT = 120  # seconds: the run takes a few; a run reading a pipe or /dev/zero never ends


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return demo_pool(tmp_path_factory.mktemp("pool"), cells=16)


def _segment(config: Path, data: Path, out: Path) -> int:
    return cli.main(["segment", "--config", str(config), "--data", str(data), "--out", str(out)])


def test_a_name_that_is_not_utf8_is_one_rejected_row(pool, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    bad = os.fsencode(data / "all") + b"/cell_\xff\xfe.bmp"
    shutil.copyfile(data / "all" / "cell_00.bmp", bad)
    run = tmp_path / "run"
    assert _segment(write_config(tmp_path / "c.toml"), data, run) == 0
    assert len(RunDir(run).read_manifest()) == 2 * PER_CLASS
    rejected = RunDir(run).read_rejected()
    assert rejected["path"].tolist() == [f"{data / 'all'}/cell_\\xff\\xfe.bmp"]
    assert "file name is not valid UTF-8" in rejected["reason"].iloc[0] and "rename" in rejected["reason"].iloc[0]
    (run / "rejected.csv").read_bytes().decode("utf-8")  # every table stays valid UTF-8


def test_a_252_byte_name_is_processed(pool, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    long_name = "c" * 248 + ".bmp"
    assert len(long_name.encode()) == 252
    shutil.copyfile(data / "hem" / "cell_00.bmp", data / "hem" / long_name)
    run = tmp_path / "run"
    assert _segment(write_config(tmp_path / "c.toml"), data, run) == 0
    manifest = RunDir(run).read_manifest()
    assert len(manifest) == 2 * PER_CLASS + 1 and RunDir(run).read_rejected().empty
    sample_id = manifest.loc[manifest["path"].str.endswith(long_name), "sample_id"].item()
    assert len(sample_id) <= 128 and (run / "segmentation" / "masks" / f"{sample_id}.png").is_file()


def test_temporary_names_stay_within_the_name_limit(tmp_path):
    target = tmp_path / ("t" * 255)
    tmp = temporary_name(target, pid=4194304)
    assert len(os.fsencode(tmp.name)) <= NAME_MAX and tmp.parent == tmp_path
    assert temporary_name(target, pid=1) != temporary_name(tmp_path / ("u" * 255), pid=1)
    assert temporary_name(tmp_path / "a.csv", pid=7).name == ".a.csv.leukoscope.tmp-7"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs FIFOs and /dev/zero")
def test_a_named_pipe_and_a_link_to_dev_zero_are_rejected_without_reading(pool, tmp_path):
    data = class_folders(tmp_path / "data", pool, PER_CLASS)
    os.mkfifo(data / "all" / "pipe.bmp")
    (data / "hem" / "zero.bmp").symlink_to("/dev/zero")
    run = tmp_path / "run"
    try:
        done = subprocess.run(command("segment", "--config", str(write_config(tmp_path / "c.toml")), "--data",
                                      str(data), "--out", str(run)),
                              capture_output=True, text=True, timeout=HANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run hung on a named pipe or /dev/zero for {HANG_TIMEOUT} s")
    assert done.returncode == 0, done.stderr
    rejected = RunDir(run).read_rejected().set_index("path")["reason"]
    assert "is a named pipe (FIFO), not an image file" in rejected[str(data / "all" / "pipe.bmp")]
    assert "is a device, not an image file" in rejected["/dev/zero"]  # listed by where the link leads
    assert len(pd.read_csv(run / "segmentation" / "segmentation.csv")) == 2 * PER_CLASS

"""Claiming a run directory: whose it is, what it may hold, which dataset, environment errors."""

from __future__ import annotations

import errno
import json

import pandas as pd
import pytest

from leukoscope.pipeline.claim import MARKER_TEXT, check_out, claim_run, environment_error
from leukoscope.pipeline.layout import MANIFEST_COLUMNS, RUN_MARKER
from leukoscope.pipeline.rundir import RunDir, RunDirError


def test_new_empty_and_leukoscope_folders_are_accepted(tmp_path):
    check_out(tmp_path / "new", {})
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", {})
    (tmp_path / "marked").mkdir()
    (tmp_path / "marked" / RUN_MARKER).write_text(MARKER_TEXT)
    (tmp_path / "marked" / "notes.txt").write_text("a user's file beside the results")
    check_out(tmp_path / "marked", {})
    (tmp_path / "old").mkdir()  # a run directory of a version without the marker
    (tmp_path / "old" / "run.json").write_text(json.dumps({"command": "segment", "config": {}, "versions": {}}))
    check_out(tmp_path / "old", {})


def test_a_folder_of_other_files_or_a_file_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "run.json").write_text('{"my": "own"}')
    with pytest.raises(RunDirError, match=r"did not write \(e.g. 'run.json'\).*mine/leukoscope-run"):
        check_out(tmp_path / "mine", {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file; pass a folder"):
        check_out(tmp_path / "file", {})


def test_an_input_inside_the_run_directory_is_refused_and_a_run_inside_the_data_is_not(tmp_path):
    with pytest.raises(RunDirError, match=r"--data '.*lab/manifest.csv' lies inside the run directory"):
        check_out(tmp_path / "lab", {"--data": tmp_path / "lab" / "manifest.csv", "--masks": ""})
    with pytest.raises(RunDirError, match="--masks"):
        check_out(tmp_path / "run", {"--masks": tmp_path / "run"})
    check_out(tmp_path / "data" / "run", {"--data": tmp_path / "data"})


def test_another_dataset_is_refused_naming_both_and_force_resets(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with claim_run(tmp_path / "run", "segment", data=tmp_path / "a", inputs={}) as run:
        run.update_info(command="segment", dataset={"path": str((tmp_path / "a").resolve())})
        run.write_manifest(pd.DataFrame(columns=MANIFEST_COLUMNS))
    with pytest.raises(RunDirError, match=r"holds the results of the dataset '.*/a', but this command reads '.*/b'"):
        with claim_run(tmp_path / "run", "segment", data=tmp_path / "b", inputs={}):
            pass
    with claim_run(tmp_path / "run", "segment", data=tmp_path / "b", inputs={}, force=True) as run:
        assert not run.info_path.exists() and not run.manifest_path.exists()
    assert not RunDir(tmp_path / "run").lock_path.exists()


@pytest.mark.parametrize("code, fix", [
    (errno.ENOSPC, "free space on that disk, or pass --out on another disk"),
    (errno.EROFS, "the file system is read-only: pass --out on a writable one"),
    (errno.EACCES, "make it writable for you, or pass another --out"),
])
def test_environment_errors_name_the_path_and_the_fix(tmp_path, code, fix):
    error = environment_error(OSError(code, "Reason", str(tmp_path / "a" / ".t.csv.leukoscope.tmp-12")))
    assert str(error) == f"cannot write '{tmp_path / 'a'}': Reason; {fix}"


def test_other_os_errors_stay_bugs():
    assert environment_error(OSError(errno.EBADF, "Bad file descriptor")) is None

"""Repeatability: the same config gives the same bytes, whatever the job count or backend.

Every file of a run directory is compared except ``run.json`` (start and end times, the
command line). ``--jobs`` and ``--backend`` spread segmentation and handcrafted features over
workers; the CNN runs in the main process, so only the first two are run for those.
"""

from __future__ import annotations

import shutil

import pytest

from leukoscope.pipeline import cli

from .demo_runs import assert_same_files

pytestmark = pytest.mark.slow


def test_same_config_twice_gives_the_same_files(demo_config, reference_run, tmp_path):
    assert cli.main(["features", "--config", str(demo_config), "--out", str(tmp_path / "run")]) == 0
    assert_same_files(tmp_path / "run", reference_run)


@pytest.mark.parametrize("options", [["--jobs", "1"], ["--jobs", "2", "--backend", "dask"]],
                         ids=["jobs-1", "dask-local-cluster"])
def test_job_count_and_backend_do_not_change_the_files(demo_config, reference_run, tmp_path, options):
    run = tmp_path / "run"
    assert cli.main(["features", "--config", str(demo_config), "--out", str(run), "--backbones", "none",
                     *options]) == 0
    assert_same_files(run, reference_run, "segmentation")
    for name in ("handcrafted.csv", "columns.csv"):
        assert (run / "features" / name).read_bytes() == (reference_run / "features" / name).read_bytes()


def test_compare_twice_gives_the_same_results_and_report(demo_config, reference_run, tmp_path):
    for copy in ("one", "two"):
        shutil.copytree(reference_run, tmp_path / copy)
        assert cli.main(["compare", "--config", str(demo_config), "--out", str(tmp_path / copy), "--jobs", "1"]) == 0
    assert_same_files(tmp_path / "one", tmp_path / "two", "compare")

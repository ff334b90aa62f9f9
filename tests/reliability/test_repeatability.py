"""Repeatability: the same config gives the same bytes, whatever the job count or backend.

Every file of a run directory is compared except ``run.json`` (start and end times, the
command line) and the reports' run stamp (their one line with the date and command). ``--jobs``
and ``--backend`` spread segmentation and handcrafted features over workers; the CNN runs in the
main process, so only the first two are run for those. The seeded sigmoid heads (trained on
frozen backbones) must give the same predictions, report and model weights twice too.
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from leukoscope.pipeline import cli

from .demo_runs import assert_same_files, run_files

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


def test_compare_with_fine_tuned_heads_twice_gives_the_same_files(demo_config, reference_run, tmp_path):
    config = tmp_path / "heads.toml"
    heads = '[heads]\nbackbones = ["vgg16"]\nepochs = 2\ninput_size = 32\nbatch_size = 8'
    text = demo_config.read_text(encoding="utf-8").replace("[heads]\nbackbones = []", heads)
    config.write_text(text.replace('feature_sets = ["handcrafted", "cnn"]', 'feature_sets = ["handcrafted", "head"]'),
                      encoding="utf-8")
    for copy in ("one", "two"):
        shutil.copytree(reference_run, tmp_path / copy)
        assert cli.main(["compare", "--config", str(config), "--out", str(tmp_path / copy), "--jobs", "1"]) == 0
    one, two = (run_files(tmp_path / copy, "heads") for copy in ("one", "two"))
    assert "heads/predictions.csv" in one and sorted(one) == sorted(two)
    # a .keras archive holds its save time and session-dependent layer names: compare the weights
    models = [name for name in one if name.endswith(".keras")]
    assert models and {name for name in one if one[name] != two[name]} <= set(models)
    for name in models:
        weights = [keras.saving.load_model(tmp_path / copy / name, compile=False).get_weights()
                   for copy in ("one", "two")]
        assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert_same_files(tmp_path / "one", tmp_path / "two", "compare")

import dataclasses
import json

import pandas as pd
import pytest

from leukoscope.pipeline import cli, graph
from leukoscope.pipeline.choices import TableFormat
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.tables import read_dictionary, read_features, read_table

from .cnmc_tree import make_cnmc_tree


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("demo-data", "segment", "features", "compare"):
        assert name in out


def test_flags_override_the_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\njobs = 3\nout = "runs/x"\n[data]\npath = "d"\n')
    args = cli.build_parser().parse_args(["features", "--config", str(path), "--jobs", "1",
                                          "--backbones", "vgg16,resnet50"])
    config = cli.resolve_config(args)
    assert config.run.jobs == 1 and config.run.out == "runs/x" and config.data.path == "d"
    assert [b.value for b in config.features.backbones] == ["vgg16", "resnet50"]


def test_prepare_run_writes_manifest_rejected_and_run_json(tmp_path):
    base = make_cnmc_tree(tmp_path / "data", drop_prelim_files=1)
    config = Config().with_overrides({"data.path": str(base), "run.out": str(tmp_path / "run"), "run.quiet": True})
    run = RunDir(tmp_path / "run")
    samples = cli.prepare_run(config, run)
    manifest = pd.read_csv(run.manifest_path, dtype=str, keep_default_na=False)
    assert list(manifest.columns) == ["sample_id", "path", "label", "subject", "split", "sha256"]
    assert len(manifest) == len(samples) == 12 + 2 + 2
    assert manifest["sha256"].str.fullmatch("[0-9a-f]{64}").all()
    rejected = run.read_rejected()
    assert len(rejected) == 1 and "has no image file" in rejected["reason"][0]
    info = json.loads(run.info_path.read_text())
    assert info["dataset"]["kind"] == "cnmc" and info["dataset"]["samples"] == 16


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert cli.main(["segment", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "error: data path" in err and "missing" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\njobz = 2\n")
    assert cli.main(["segment", "--config", str(bad)]) == 2
    assert "bad.toml: unknown key 'run.jobz'" in capsys.readouterr().err


def test_demo_data_command(tmp_path, capsys):
    assert cli.main(["demo-data", str(tmp_path / "demo"), "--subjects", "4", "--cells", "4", "--quiet"]) == 0
    assert "demo dataset written" in capsys.readouterr().out
    assert len(list((tmp_path / "demo").rglob("*.bmp"))) == 4


def test_a_bug_keeps_its_traceback_and_run_json_says_failed(tmp_path, monkeypatch, capsys):
    base = make_cnmc_tree(tmp_path / "data")

    def broken(config, run, samples, consumers):
        raise ValueError("an internal inconsistency")  # a bug, not something the user can fix

    monkeypatch.setitem(graph.STAGES, "segmentation", dataclasses.replace(graph.STAGES["segmentation"], run=broken))
    with pytest.raises(ValueError, match="an internal inconsistency"):
        cli.main(["segment", "--data", str(base), "--out", str(tmp_path / "run"), "--quiet"])
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == "ValueError: an internal inconsistency"


def test_a_bad_setting_fails_before_any_stage_runs(tmp_path, capsys):
    base = make_cnmc_tree(tmp_path / "data")
    code = cli.main(["features", "--data", str(base), "--out", str(tmp_path / "run"), "--quiet",
                     "--backbones", "xception", "--weights", str(tmp_path / "no-such-folder")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'features.weights'" in err[0] and "no-such-folder" in err[0]
    assert "allowed: 'auto', 'imagenet', 'random' or an existing folder" in err[0]
    assert not (tmp_path / "run").exists()  # the config is checked before the run directory is made


def test_format_flag_of_the_features_and_compare_commands(tmp_path, capsys):
    for command in ("features", "compare"):
        args = cli.build_parser().parse_args([command, "--format", "parquet"])
        assert cli.resolve_config(args).features.format is TableFormat.PARQUET
    assert cli.resolve_config(cli.build_parser().parse_args(["features"])).features.format is TableFormat.CSV
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["segment", "--format", "parquet"])
    assert cli.main(["features", "--format", "xlsx", "--out", str(tmp_path / "run")]) == 2
    assert "key 'features.format': 'xlsx' is not allowed; allowed: 'csv', 'parquet'" in capsys.readouterr().err


@pytest.mark.slow
def test_features_with_format_parquet_writes_every_table_twice(tmp_path):
    base = make_cnmc_tree(tmp_path / "data")
    run = tmp_path / "run"
    assert cli.main(["features", "--data", str(base), "--out", str(run), "--quiet", "--jobs", "1",
                     "--backbones", "none", "--format", "parquet"]) == 0
    features = run / "features"
    handcrafted = pd.read_parquet(features / "handcrafted.parquet")
    assert len(handcrafted) > 0 and read_dictionary(features / "handcrafted.parquet") is not None
    pd.testing.assert_frame_equal(handcrafted, read_features(features / "handcrafted.csv"), check_exact=True)
    for name in ("subjects", "univariate"):
        pd.testing.assert_frame_equal(read_table(features / f"{name}.parquet"), read_table(features / f"{name}.csv"))
    info = json.loads((run / "run.json").read_text())
    assert info["stages"] == ["segmentation", "handcrafted", "statistics"] and info["status"] == "ok"

"""The statistics stage on hand-made handcrafted.csv files: tables, qc rule, Parquet, record, report section."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.features.surround import SURROUND_COLUMNS
from leukoscope.features.univariate import CELL_LEVEL_NOTE
from leukoscope.pipeline import graph
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.graph import plan, run_stages
from leukoscope.pipeline.layout import Stage
from leukoscope.pipeline.report import to_markdown
from leukoscope.pipeline.report_statistics import GLOSSARY, statistics_section, top_features
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.statistics import STAGE, run_statistics
from leukoscope.pipeline.statistics_record import FIGURES, outputs, read_record
from leukoscope.pipeline.tables import read_dictionary, read_table, table_path
from tests.features.cell_tables import PLANTED, demo_like_cells, dominated_cells

FAST = {"features.statistics_bootstrap": 200, "run.quiet": True}


def _run(tmp_path, cells: pd.DataFrame) -> RunDir:
    """A run directory with the handcrafted stage's tables: ``cells`` and a surround table."""
    run = RunDir(tmp_path / "run")
    run.stage_dir(Stage.HANDCRAFTED)
    cells.to_csv(run.handcrafted_table, index=False)
    rng = np.random.default_rng(0)
    surround = cells[["sample_id", "subject", "label", "split"]]
    surround = surround.assign(**{c: rng.normal(size=len(cells)) for c in SURROUND_COLUMNS})
    surround.to_csv(run.surround_table, index=False)
    return run


def _config(run: RunDir, **overrides) -> Config:
    return Config().with_overrides({"run.out": str(run.path), **FAST, **overrides})


def _flagged_cells() -> pd.DataFrame:
    """Demo-like cells; subject 1's first 5 cells flagged, with the planted feature undefined on 2 of them."""
    cells = demo_like_cells(subjects=4, cells=10)
    cells.loc[:4, "qc_flag"] = "morph:nucleus:empty"
    cells.loc[:1, PLANTED] = np.nan
    return cells


@pytest.mark.parametrize(("qc", "n_cells", "planted_cells"), [("keep", 10, 8), ("drop_flagged", 5, 5)])
def test_tables_follow_the_qc_rule_and_state_it(tmp_path, qc, n_cells, planted_cells):
    run = _run(tmp_path, _flagged_cells())
    config = _config(run, **{"compare.qc": qc})
    run_statistics(config, run, pd.DataFrame())
    subjects = read_table(run.subjects_table)
    first = subjects.iloc[0]
    assert (first["subject"], first["n_cells"], first["n_cells_flagged"]) == ("1", n_cells, 5)
    assert (subjects["n_cells"].iloc[1:] == 10).all()
    univariate = read_table(run.univariate_table).set_index("feature")
    assert univariate.loc[PLANTED, "n_cells_all"] == 40 - 10 + planted_cells
    described = read_dictionary(run.subjects_table).set_index("name")["description"]
    assert f"qc rule '{qc}'" in described["n_cells"] and f"qc rule '{qc}'" in described[f"{PLANTED}__median"]
    blocks = statistics_section(run, run.path / "compare")
    assert f"QC rule '{qc}'" in to_markdown(blocks)
    assert read_record(run)["qc"] == qc


@pytest.mark.slow
def test_every_file_is_written_and_the_parquet_copies_equal_the_csv(tmp_path):
    run = _run(tmp_path, _flagged_cells())
    config = _config(run, **{"features.format": "parquet"})
    assert not STAGE.done(config, run)
    run_statistics(config, run, pd.DataFrame())
    assert all(path.stat().st_size > 0 for path in outputs(run, "parquet", univariate=True))
    for csv in (run.subjects_table, run.univariate_table):
        parquet = table_path(csv, "parquet")
        pd.testing.assert_frame_equal(read_table(parquet), read_table(csv), check_exact=True)
        pd.testing.assert_frame_equal(read_dictionary(parquet), read_dictionary(csv))
    record = read_record(run)
    assert record["univariate"] and list(record["figures"]) == list(FIGURES)
    assert record["counts"] == {"features": 32, "subjects_all": 4, "subjects_hem": 4, "cells_all": 40,
                                "cells_hem": 40}
    assert STAGE.done(config, run) and STAGE.done(_config(run), run)
    table_path(run.univariate_table, "parquet").unlink()
    assert not STAGE.done(config, run) and STAGE.done(_config(run), run)  # csv needs no copy
    run_statistics(_config(run), run, pd.DataFrame())  # csv now: the stale Parquet copies go
    assert not table_path(run.subjects_table, "parquet").exists()


def test_its_settings_are_the_qc_rule_the_replicates_and_the_seed():
    config = Config()
    base = STAGE.settings(config)
    for key, value in (("compare.qc", "drop_flagged"), ("features.statistics_bootstrap", 10), ("run.seed", 3)):
        assert STAGE.settings(config.with_overrides({key: value})) != base, key
    for key, value in (("run.jobs", 2), ("features.format", "parquet"), ("compare.models", "knn")):
        assert STAGE.settings(config.with_overrides({key: value})) == base, key


def test_one_dominant_subject_the_report_shows_the_mixed_p_not_the_cell_t_test(tmp_path):
    """No class difference; one ALL subject, 2 SD high, has 300 of 355 cells (tests/features/cell_tables.py)."""
    cells = dominated_cells()
    feature = "intensity_mean_cell_gray"
    is_all = cells["label"] == "ALL"
    cell_p = stats.ttest_ind(cells.loc[is_all, feature], cells.loc[~is_all, feature]).pvalue
    run = _run(tmp_path, cells)
    config = _config(run)
    run_statistics(config, run, pd.DataFrame())
    row = read_table(run.univariate_table).iloc[0]
    assert cell_p < 1e-20 and row["mixed_p"] > 0.1 and row["mw_p"] > 0.1
    assert row["mixed_p"] > 1e15 * cell_p
    table = next(b.table for b in statistics_section(run, run.path / "compare") if b.kind == "table")
    assert table["mixed p"].tolist() == [f"{row['mixed_p']:.3g}"]
    assert f"{cell_p:.3g}" not in to_markdown(statistics_section(run, run.path / "compare"))


def test_cell_level_data_carry_the_warning_once(tmp_path):
    cells = demo_like_cells(subjects=5, cells=1).assign(subject="")
    run = _run(tmp_path, cells)
    config = _config(run)
    run_statistics(config, run, pd.DataFrame())
    markdown = to_markdown(statistics_section(run, run.path / "compare"))
    assert markdown.count(CELL_LEVEL_NOTE) == 1 and "| note |" not in markdown
    assert (read_table(run.univariate_table)["level"] == "cell").all()


def test_unlabelled_cells_give_the_subject_table_only(tmp_path):
    run = _run(tmp_path, demo_like_cells(subjects=2, cells=3).assign(label=""))
    config = _config(run)
    run_statistics(config, run, pd.DataFrame())
    assert read_table(run.subjects_table)["label"].tolist() == [""] * 4
    assert not run.univariate_table.exists() and not run.statistics_figure("volcano").exists()
    record = read_record(run)
    assert not record["univariate"] and "both labels ALL and HEM" in record["skipped"]
    assert STAGE.done(config, run)
    markdown = to_markdown(statistics_section(run, run.path / "compare"))
    assert "No univariate statistics: the cells need both labels" in markdown and "univariate.csv" not in markdown


def test_a_subject_with_two_labels_or_no_csv_is_a_user_error(tmp_path):
    cells = demo_like_cells(subjects=2, cells=3)
    cells.loc[0, "label"] = "HEM"
    run = _run(tmp_path, cells)
    with pytest.raises(EvaluationError, match=r"handcrafted.csv: 1 subjects have cells with different labels: '1'"):
        run_statistics(_config(run), run, pd.DataFrame())
    run.handcrafted_table.unlink()
    with pytest.raises(EvaluationError, match="handcrafted.csv' is missing.*rejected.csv.*leukoscope features"):
        run_statistics(_config(run), run, pd.DataFrame())


def test_the_graph_runs_it_for_features_and_before_compare_and_again_when_stale(tmp_path, monkeypatch):
    assert Stage.STATISTICS in graph.COMMANDS["features"]
    run = _run(tmp_path, demo_like_cells(subjects=4, cells=5))
    samples = pd.DataFrame()
    config = _config(run, **{"compare.feature_sets": "handcrafted", "features.backbones": "none"})
    run.stage_dir(Stage.SEGMENTATION)
    run.segmentation_table.write_text("sample_id\n")
    for stage in (Stage.SEGMENTATION, Stage.HANDCRAFTED):  # as finished stages leave them
        graph.mark_done(stage, config, run, samples)
    assert Stage.STATISTICS in graph.STAGES[Stage.COMPARE].needs(config)
    assert Stage.STATISTICS not in graph.STAGES[Stage.COMPARE].needs(_config(run, **{"compare.feature_sets": "cnn"}))
    assert not graph.STAGES[Stage.STATISTICS].active(_config(run, **{"features.families": "none"}))

    def planned(**overrides) -> list[Stage]:
        return [s.name for s in plan(graph.COMMANDS["compare"], config.with_overrides(overrides), run, samples)]

    assert planned() == [Stage.STATISTICS, Stage.COMPARE]
    calls = []
    monkeypatch.setitem(graph.STAGES, Stage.COMPARE, dataclasses.replace(
        graph.STAGES[Stage.COMPARE], check=None, run=lambda *args: calls.append("compare")))
    run_stages("compare", config, run, samples)
    assert calls == ["compare"] and read_record(run) is not None
    assert planned() == planned(**{"run.jobs": 2}) == [Stage.COMPARE]
    for key, value in (("compare.qc", "drop_flagged"), ("features.statistics_bootstrap", 100)):
        assert planned(**{key: value}) == [Stage.STATISTICS, Stage.COMPARE], key
    both = [Stage.HANDCRAFTED, Stage.STATISTICS, Stage.COMPARE]
    assert planned(**{"features.format": "parquet"}) == both  # their Parquet copies are missing
    assert planned(**{"features.families": "morphology"}) == both  # new handcrafted features


@pytest.mark.slow
def test_the_compare_report_ends_with_the_section_and_its_figures(tmp_path):
    samples = demo_like_cells(subjects=6, cells=10)
    cells = samples.assign(**{PLANTED: samples[PLANTED] + 3 * (samples["label"] == "ALL")})
    run = _run(tmp_path, cells)
    samples = cells[["sample_id", "subject", "label", "split"]].assign(path=cells["sample_id"], sha256="")
    config = _config(run, **{"compare.feature_sets": "handcrafted", "compare.models": "knn", "compare.folds": 3,
                             "compare.inner_folds": 2, "compare.bootstrap": 50, "features.backbones": "none"})
    graph.mark_done(Stage.HANDCRAFTED, config, run, samples)
    assert run_stages("compare", config, run, samples) == ["statistics", "compare"]
    report = (run.path / "compare" / "report.md").read_text()
    section = report[report.index("## Handcrafted features one by one"):]
    for name in FIGURES:
        assert f"](../features/{name}.png)" in section
    assert section.count(f"| {PLANTED} |") == 1
    html = (run.path / "compare" / "report.html").read_text()
    for name in FIGURES:
        assert base64.b64encode(run.statistics_figure(name).read_bytes()).decode() in html
    glossary = section[section.index("## Glossary"):]
    for column in top_features(read_table(run.univariate_table)).columns:
        assert f"| {column} | {GLOSSARY[column]} |".replace("(1 | subject)", "(1 \\| subject)") in glossary
    info = json.loads(run.info_path.read_text())
    assert info["statistics"]["qc"] == "keep" and info["statistics"]["counts"]["subjects_all"] == 6


def test_top_features_sorts_by_mixed_q():
    univariate = pd.DataFrame({
        "feature": ["a", "b", "c"], "n_subjects_all": 3, "n_subjects_hem": 3, "n_cells_all": 9, "n_cells_hem": 9,
        "cliffs_delta": [0.1, -0.9, 0.5], "cliffs_delta_low": 0.0, "cliffs_delta_high": 1.0,
        "hedges_g": 1.0, "hedges_g_low": 0.0, "hedges_g_high": 2.0, "mw_p": 0.5, "mw_q": 0.5,
        "mixed_estimate": 1.0, "mixed_se": 0.5, "mixed_p": [0.2, 0.001, np.nan], "mixed_q": [0.3, 0.003, np.nan],
        "mixed_icc": 0.1, "note": ["", "", "constant over the cells, or too few cells: no mixed model"],
    })
    shown = top_features(univariate, top=3)
    assert shown["feature"].tolist() == ["b", "a", "c"]
    assert shown["mixed q"].tolist() == ["0.003", "0.3", "n/a"]
    assert shown["Cliff's delta [CI]"].iloc[0] == "-0.9 [0, 1]"
    assert shown["note"].tolist() == ["", "", "constant over the cells, or too few cells: no mixed model"]

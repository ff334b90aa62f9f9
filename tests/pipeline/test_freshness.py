"""Stage records: what a stage's outputs were computed from, and how the graph plans with them."""

from __future__ import annotations

import pandas as pd

from leukoscope.pipeline import graph
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import samples_digest, settings_of, stage_key
from leukoscope.pipeline.layout import Stage
from leukoscope.pipeline.rundir import RunDir

SAMPLES = pd.DataFrame({
    "sample_id": ["a", "b"], "path": ["/d/a.bmp", "/d/b.bmp"], "label": ["ALL", "HEM"],
    "subject": ["", ""], "split": ["", ""], "sha256": ["1" * 64, "2" * 64],
})
SETTINGS = {Stage.SEGMENTATION: settings_of("segmentation"), Stage.HANDCRAFTED: settings_of("features.families")}
NEEDS = {Stage.SEGMENTATION: lambda config: (), Stage.HANDCRAFTED: lambda config: (Stage.SEGMENTATION,)}


def _key(stage: Stage, config: Config, samples: pd.DataFrame = SAMPLES) -> str:
    return stage_key(stage, config, samples_digest(samples), settings=SETTINGS, needs=NEEDS)


def test_samples_digest_ignores_row_order_and_extra_columns_but_sees_every_manifest_field():
    digest = samples_digest(SAMPLES)
    assert samples_digest(SAMPLES.iloc[::-1].assign(extra=1)) == digest
    for column in SAMPLES.columns:
        changed = SAMPLES.copy()
        changed.loc[0, column] = "x"
        assert samples_digest(changed) != digest, column
    assert samples_digest(SAMPLES.iloc[:1]) != digest  # a removed sample


def test_settings_of_picks_sections_and_keys():
    config = Config().with_overrides({"run.seed": 3, "segmentation.min_size": 10})
    picked = settings_of("segmentation", "run.seed")(config)
    assert picked["run.seed"] == 3 and picked["segmentation"]["min_size"] == 10
    assert set(picked) == {"segmentation", "run.seed"}


def test_a_whole_section_leaves_out_the_statistics_and_format_keys():
    """``--format parquet`` or another bootstrap count must not make the embeddings or heads stale."""
    config = Config()
    other = config.with_overrides({"features.format": "parquet", "features.statistics_bootstrap": 10})
    assert settings_of("features", "run.seed")(other) == settings_of("features", "run.seed")(config)
    named = settings_of("features.statistics_bootstrap", "features.format")
    assert named(other) == {"features.statistics_bootstrap": 10, "features.format": "parquet"} != named(config)


def test_a_stage_key_follows_its_settings_its_samples_and_its_upstream_only():
    config = Config()
    base = {stage: _key(stage, config) for stage in NEEDS}
    faster = config.with_overrides({"run.jobs": 2, "run.backend": "threading", "run.out": "elsewhere"})
    assert {stage: _key(stage, faster) for stage in NEEDS} == base
    fewer = config.with_overrides({"features.families": "morphology"})
    assert _key(Stage.SEGMENTATION, fewer) == base[Stage.SEGMENTATION]
    assert _key(Stage.HANDCRAFTED, fewer) != base[Stage.HANDCRAFTED]
    upstream = config.with_overrides({"segmentation.min_size": 10})
    assert _key(Stage.SEGMENTATION, upstream) != base[Stage.SEGMENTATION]
    assert _key(Stage.HANDCRAFTED, upstream) != base[Stage.HANDCRAFTED]  # a changed upstream output
    replaced = SAMPLES.assign(sha256=["3" * 64, "2" * 64])
    assert all(_key(stage, config, replaced) != base[stage] for stage in NEEDS)


def test_plan_reruns_an_upstream_stage_whose_record_is_stale_or_missing(tmp_path):
    config = Config().with_overrides({"features.backbones": "none"})
    run = RunDir(tmp_path / "run")
    run.stage_dir(Stage.SEGMENTATION)
    run.segmentation_table.write_text("sample_id\n")
    assert [s.name for s in graph.plan((Stage.HANDCRAFTED,), config, run, SAMPLES)] == [
        Stage.SEGMENTATION, Stage.HANDCRAFTED]  # outputs without a record
    graph.mark_done(Stage.SEGMENTATION, config, run, SAMPLES)
    assert [s.name for s in graph.plan((Stage.HANDCRAFTED,), config, run, SAMPLES)] == [Stage.HANDCRAFTED]
    replaced = SAMPLES.assign(sha256=["3" * 64, "2" * 64])
    assert [s.name for s in graph.plan((Stage.HANDCRAFTED,), config, run, replaced)] == [
        Stage.SEGMENTATION, Stage.HANDCRAFTED]
    run.segmentation_table.unlink()  # a record without its outputs
    assert [s.name for s in graph.plan((Stage.HANDCRAFTED,), config, run, SAMPLES)] == [
        Stage.SEGMENTATION, Stage.HANDCRAFTED]

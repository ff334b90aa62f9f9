"""Fixtures of the killed-run and repeatability tests: the demo config and a reference run."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.demo import generate_demo

from .demo_runs import CONFIG, DEMO


@pytest.fixture(scope="session")
def demo_config(tmp_path_factory) -> Path:
    """A TOML config over a freshly generated 24-cell demo dataset."""
    root = tmp_path_factory.mktemp("demo")
    generate_demo(root / "data", **DEMO)
    config = root / "demo.toml"
    config.write_text(CONFIG.format(data=(root / "data").as_posix()), encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def reference_run(demo_config, tmp_path_factory) -> Path:
    """An uninterrupted ``leukoscope features`` run (segmentation, handcrafted, VGG16), --jobs 2."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(["features", "--config", str(demo_config), "--out", str(out)]) == 0
    return out

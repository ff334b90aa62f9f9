"""The scripts in examples/ run on the demo data and write only into their output folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation import segment_cell

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_folder_to_model_fits_saves_and_plots(tmp_path, capsys):
    top = generate_demo(tmp_path / "demo", subjects=4, cells=24)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    load_example("folder_to_model").main([str(top / "training_data"), str(out)])

    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert sorted(set(written) - set(before)) == [Path("out"), Path("out/model.joblib"), Path("out/model.png")]
    assert (out / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the demo's training folders hold one ALL and one HEM subject (the others are the test set)
    printed = capsys.readouterr().out
    assert "12 cells: 6 ALL, 6 HEM, 2 subjects" in printed
    assert "subject-held-out" not in printed

    model = joblib.load(out / "model.joblib")
    test_cell = read_image(next((top / "validation_data").rglob("*.bmp")))
    scores = model.predict_proba([(test_cell, segment_cell(test_cell).labels)])
    assert scores.shape == (1, 2) and np.isclose(scores.sum(), 1.0)


def test_cross_validation_holds_subjects_out_and_needs_two_per_class():
    example = load_example("folder_to_model")
    rng = np.random.default_rng(0)
    y = np.repeat([1, 1, 0, 0], 5)
    x = rng.normal(size=(20, 3)) + y[:, None]
    model = make_pipeline(StandardScaler(), LogisticRegression())
    scores = example.cross_validate(model, x, y, np.repeat(["1", "2", "H1", "H2"], 5))
    assert scores.shape == (20,) and ((scores >= 0) & (scores <= 1)).all()
    assert example.cross_validate(model, x, y, np.repeat(["1", "1", "H1", "H1"], 5)) is None


def test_folder_without_class_folders_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_example("folder_to_model").main([str(tmp_path), str(tmp_path / "out")])
    assert "no images in folders named 'all' or 'hem'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

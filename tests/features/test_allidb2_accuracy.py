"""Classification sanity on real cells: the handcrafted features separate ALL-IDB2 blasts.

The evaluation lives in bench/features_allidb2.py, so the number in docs/features.md and the
floor asserted here come from the same code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "features_allidb2.py"
FLOOR = 0.95


def _bench_module():
    spec = importlib.util.spec_from_file_location("features_allidb2", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("masks", ["expert", "leukoscope"])
def test_rbf_svm_accuracy_floor_on_allidb2(shared_data, masks):
    result = _bench_module().evaluate(shared_data, masks=masks, jobs=2)
    assert result["images"] == 260
    assert result["accuracy"] >= FLOOR, result

"""Shared fixtures: the expert-labelled data folder, skipped with a reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$LEUKOSCOPE_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("LEUKOSCOPE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder (ALL-IDB2, Zheng WBC); skips the test when it is absent."""
    root = shared_data_dir()
    if not (root / "all-idb2").is_dir():
        pytest.skip(
            f"real data not found at {root}: set LEUKOSCOPE_SHARED_DATA or place the shared "
            "data folder beside the repository"
        )
    return root

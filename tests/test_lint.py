"""``make lint`` as part of ``make test`` (what CI runs): ruff and mypy, both configured in
pyproject.toml, find nothing. Each is skipped with a reason where it is not installed (it is in
the ``test`` extra and requirements-lock.txt)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(("tool", "args"), [
    ("ruff", ["check", "."]),
    pytest.param("mypy", [], marks=pytest.mark.slow),
])
def test_the_linter_finds_nothing(tool, args):
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed: pip install -e '.[test]'")
    found = subprocess.run([sys.executable, "-m", tool, *args], cwd=REPO, capture_output=True, text=True)
    assert found.returncode == 0, f"{tool} {' '.join(args)}:\n{found.stdout[-6000:]}{found.stderr[-2000:]}"

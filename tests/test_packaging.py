"""The wheel holds the shipped configs, the refiner model and py.typed, and works once installed.

The wheel is built by pip (``pip wheel --no-deps``; the build backend comes from PyPI like any
``pip install``) and installed into a fresh virtual environment that reuses this environment's
packages instead of downloading them, so the check costs seconds, not a 1 GB download.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    """This environment without PYTHONPATH, so nothing is imported from the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The built wheel and pip's output (verbose, so the build backend's warnings show)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose", "-w", str(out), str(REPO)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("leukoscope-*.whl")
    return path, done.stdout + done.stderr


def test_wheel_holds_configs_data_and_py_typed(wheel):
    path, log = wheel
    names = set(zipfile.ZipFile(path).namelist())
    shipped = [p.relative_to(REPO).as_posix() for pattern in ("configs/*.toml", "data/*")
               for p in (REPO / "leukoscope").glob(pattern)]
    assert {"leukoscope/configs/demo.toml", "leukoscope/configs/cnmc.toml", "leukoscope/configs/allidb2.toml",
            "leukoscope/data/refiner.keras", "leukoscope/py.typed"} <= names
    assert set(shipped) <= names
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(path).read(info).decode()
    assert "License-Expression: BSD-3-Clause" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "SetuptoolsDeprecationWarning" not in log and "SetuptoolsWarning" not in log


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    reused = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "reuse-test-environment.pth").write_text("\n".join(sorted(reused)) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel[0])], check=True, env=_env(), timeout=300)

    def run(*args: str) -> str:
        done = subprocess.run(list(args), cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "segment" in run(str(venv / "bin" / "leukoscope"), "--help")
    where = run(str(python), "-c", "import leukoscope.segmentation, leukoscope; print(leukoscope.__file__)")
    assert Path(where.strip()).is_relative_to(venv)
    names = run(str(python), "-c", "from leukoscope.pipeline.config import config_names, load_config; "
                                   "print(*config_names(), load_config('demo').data.path)")
    assert names.split() == ["allidb2", "cnmc", "demo", "data/demo"]

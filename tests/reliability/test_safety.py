"""Safety: nothing a dataset holds can make leukoscope run code or write outside the run folder.

- Source checks (AST): every ``np.load`` passes ``allow_pickle=False``, every Keras
  ``load_model`` passes ``safe_mode=True``, and no module unpickles (``pickle``, ``joblib.load``,
  ``pandas.read_pickle``...) or keeps a ``joblib.Memory`` cache.
- Behaviour: a cache entry replaced by a pickled object array is refused and recomputed, never
  unpickled; a manifest whose rows use ``..`` or absolute paths outside its folder leaves every
  file outside the run folder untouched through ``segment``, ``features`` and ``compare``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import leukoscope
from leukoscope.pipeline import cli
from leukoscope.pipeline.datasets import make_sample_id
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.rundir import RunDir

from .integrity_data import write_config

PACKAGE = Path(leukoscope.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
UNPICKLING_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "shelve", "marshal"}
#: attribute calls that unpickle whatever file they are given
UNPICKLING_CALLS = {("joblib", "load"), ("pd", "read_pickle"), ("pandas", "read_pickle"), ("torch", "load")}
SAFE_ID = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"


def _calls(tree: ast.AST) -> list[tuple[str, str, ast.Call]]:
    """``(owner, attribute, call)`` of every ``owner.attribute(...)`` call (owner "" when not a name)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            owner = value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else ""
            found.append((owner, node.func.attr, node))
    return found


def _keyword_is(call: ast.Call, name: str, value: bool) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.AST]:
    return {str(path.relative_to(PACKAGE.parent)): ast.parse(path.read_text(encoding="utf-8")) for path in SOURCES}


def test_every_np_load_refuses_pickles(trees):
    loads = [(name, call) for name, tree in trees.items() for owner, attr, call in _calls(tree)
             if owner in ("np", "numpy") and attr == "load"]
    assert loads, "no np.load found: the check looks at the wrong package"
    bad = [f"{name}:{call.lineno}" for name, call in loads if not _keyword_is(call, "allow_pickle", False)]
    assert not bad, f"np.load without allow_pickle=False at {bad}"


def test_every_keras_model_loads_in_safe_mode(trees):
    loads = [(name, call) for name, tree in trees.items() for _, attr, call in _calls(tree) if attr == "load_model"]
    assert loads, "no load_model found: the check looks at the wrong package"
    bad = [f"{name}:{call.lineno}" for name, call in loads if not _keyword_is(call, "safe_mode", True)]
    assert not bad, f"load_model without safe_mode=True at {bad}"


def test_nothing_unpickles_files(trees):
    bad = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bad += [f"{name}:{node.lineno} import {a.name}" for a in node.names if a.name in UNPICKLING_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "") in UNPICKLING_MODULES:
                bad.append(f"{name}:{node.lineno} from {node.module}")
        bad += [f"{name}:{call.lineno} {owner}.{attr}" for owner, attr, call in _calls(tree)
                if (owner, attr) in UNPICKLING_CALLS or attr == "Memory"]
    assert not bad, f"code that unpickles files or caches with joblib.Memory: {bad}"


@pytest.mark.parametrize("relative", [
    "a/b/c.bmp", "../../etc/x.bmp", "/abs/path/x.tif", "日本.bmp", "a/日本/x.png", "...bmp", ".hidden.bmp",
    "back\\slash.bmp", "sp ace/ü.bmp",
])
def test_sample_id_never_holds_a_path_separator(relative):
    sample_id = make_sample_id(relative)
    assert re.fullmatch(SAFE_ID, sample_id), sample_id
    assert os.sep not in sample_id and "/" not in sample_id and sample_id not in (".", "..")


class _Evil:
    """Unpickling this object creates the folder ``_Evil.marker``."""

    marker = ""

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime)`` of every file and folder below ``root`` outside ``skip``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath) / d != skip]
        for name in dirnames + filenames:
            stat = os.lstat(Path(dirpath) / name)
            found[str((Path(dirpath) / name).relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def manifest_run(tmp_path_factory):
    """A demo subset listed in a manifest with ``..``, absolute and missing rows, run end to end."""
    root = tmp_path_factory.mktemp("safety")
    top = generate_demo(root / "demo", subjects=4, cells=16, seed=5)
    images = sorted(top.rglob("UID_*.bmp"))
    data, outside = root / "data", root / "outside"
    for folder in (data / "imgs", outside):
        folder.mkdir(parents=True)
    rows = []
    for i, image in enumerate(images):
        label = "ALL" if image.stem.endswith("all") else "HEM"
        if i % 4 == 3:  # a quarter of the images sit outside the manifest's folder
            target = outside / image.name
            shutil.copyfile(image, target)
            rows.append((str(target), label))
        else:
            shutil.copyfile(image, data / "imgs" / image.name)
            rows.append((f"imgs/{image.name}", label))
    rows += [(f"../outside/{images[3].name}", "ALL"), ("imgs/missing.bmp", "HEM")]
    manifest = data / "labels.csv"
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(manifest, index=False)
    write_config(root / "config.toml")
    out = root / "run"
    before = _snapshot(root, out)
    codes = [cli.main([command, "--config", str(root / "config.toml"), "--data", str(manifest), "--out", str(out)])
             for command in ("segment", "features", "compare")]
    return root, RunDir(out), before, codes, len(images)


@pytest.mark.slow
def test_outputs_stay_in_the_run_folder(manifest_run):
    root, run, before, codes, n_images = manifest_run
    assert codes == [0, 0, 0]
    assert _snapshot(root, run.path) == before  # nothing outside the run folder was created or touched
    assert len(run.read_manifest()) == n_images
    assert run.read_manifest()["sample_id"].str.fullmatch(SAFE_ID).all()
    assert (run.path / "compare" / "results.csv").exists()


@pytest.mark.slow
def test_dotdot_and_missing_rows_are_rejected_and_not_followed(manifest_run):
    _, run, _, _, n_images = manifest_run
    rejected = run.read_rejected()
    dotdot = rejected[rejected["path"].str.startswith("../")]
    assert len(dotdot) == 1 and f"row {n_images + 2} of manifest 'labels.csv'" in dotdot["reason"].iloc[0]
    assert "contains '..'" in dotdot["reason"].iloc[0]
    missing = rejected[rejected["path"].str.endswith("missing.bmp")]
    assert len(missing) == 1 and "file does not exist" in missing["reason"].iloc[0]
    assert len(rejected) == 2
    # the '..' row's file is listed once, through its absolute row, never through '..'
    assert not run.read_manifest()["path"].str.contains(r"\.\.").any()


@pytest.mark.slow
def test_pickled_cache_entry_is_refused_and_recomputed(manifest_run):
    root, run, _, _, _ = manifest_run
    entries = sorted(run.path.glob("features/cache/handcrafted-*/*.npz"))
    assert entries
    handcrafted = (run.path / "features" / "handcrafted.csv").read_bytes()
    _Evil.marker = str(root / "unpickled")
    np.savez(entries[0], values=np.array([_Evil()], dtype=object), qc_flag=np.array(""))
    assert cli.main(["features", "--config", str(root / "config.toml"), "--data", str(root / "data" / "labels.csv"),
                     "--out", str(run.path)]) == 0
    assert not Path(_Evil.marker).exists(), "the pickled cache entry was unpickled"
    with np.load(entries[0], allow_pickle=False) as entry:  # recomputed as a plain array
        assert entry["values"].dtype == np.float64
    assert (run.path / "features" / "handcrafted.csv").read_bytes() == handcrafted
    assert run.read_info()["features"]["handcrafted"]["computed"] == 1

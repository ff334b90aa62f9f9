"""The model folder: digests, version check, skops/Keras safe loading, and no pickle anywhere."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from leukoscope import __version__
from leukoscope.classifiers.models import build_pipeline
from leukoscope.pipeline.atomic import TMP_MARK
from leukoscope.pipeline.layout import ModelLayout
from leukoscope.pipeline.model_folder import (
    FORMAT,
    ModelFolderError,
    digest_lines,
    dump_estimator,
    load_estimator,
    load_head,
    major_version,
    open_model_folder,
    remove_staging,
    write_model_folder,
)


def holds_pickle(data: bytes) -> bool:
    """Whether bytes are (or, for ZIP archives, hold at any depth) a pickle stream or a pickled
    NumPy array: a protocol 2-5 pickle starts with the PROTO opcode 0x80 and its protocol number;
    a ``.npy`` with an object dtype is pickled (``np.load(allow_pickle=False)`` refuses it)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if data.startswith(b"\x93NUMPY"):
        try:
            np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            return True
        return False
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(holds_pickle(archive.read(name)) for name in archive.namelist())
    return False


def assert_no_pickle(folder: Path) -> None:
    for path in folder.iterdir():
        assert not holds_pickle(path.read_bytes()), path


def card(**extra) -> dict:
    return {"format": FORMAT, "versions": {"leukoscope": __version__}, "name": "demo", **extra}


def fitted(name: str = "logreg"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    return build_pipeline(name).fit(x, (x[:, 0] > 0).astype(int)), x


def write(folder: Path, estimator=None, **card_fields) -> Path:
    payload = dump_estimator(estimator if estimator is not None else fitted()[0])
    write_model_folder(folder, {ModelLayout.CARD: json.dumps(card(**card_fields)).encode(),
                                ModelLayout.ESTIMATOR: payload})
    return folder


def reseal(folder: Path) -> None:
    """Rewrite SHA256SUMS after an edit, as someone forging a folder would."""
    names = [p.name for p in folder.iterdir() if p.name != ModelLayout.DIGESTS]
    (folder / ModelLayout.DIGESTS).write_text(digest_lines(folder, names), encoding="utf-8")


def test_a_written_folder_opens_and_lists_every_file(tmp_path):
    folder = write(tmp_path / "m", kind="classifier")
    opened = open_model_folder(folder)
    assert opened.card["kind"] == "classifier"
    assert sorted(opened.digests) == [ModelLayout.CARD, ModelLayout.ESTIMATOR]
    lines = (folder / ModelLayout.DIGESTS).read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == sorted(opened.digests)  # sha256sum -c format


@pytest.mark.parametrize("name", ["svm", "logreg", "rf", "knn", "xgboost"])
def test_every_model_round_trips_exactly_without_pickle(tmp_path, name):
    estimator, x = fitted(name)
    folder = write(tmp_path / name, estimator)
    assert_no_pickle(folder)
    loaded = load_estimator(open_model_folder(folder))
    np.testing.assert_array_equal(loaded.predict_proba(x), estimator.predict_proba(x))


def test_the_pickle_scan_finds_pickles_at_any_depth():
    import pickle

    assert holds_pickle(pickle.dumps({"a": 1}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner.npy", _npy(np.array([{"x": 1}], dtype=object)))
    assert holds_pickle(buffer.getvalue())
    assert not holds_pickle(_npy(np.arange(3.0)))


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def test_one_changed_byte_in_any_file_is_refused(tmp_path):
    folder = write(tmp_path / "m")
    for path in sorted(folder.iterdir()):
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(ModelFolderError, match="refused|not '<sha256>|is missing|not listed"):
            open_model_folder(folder)
        path.write_bytes(original)
    open_model_folder(folder)


def test_a_missing_or_an_extra_file_is_refused(tmp_path):
    folder = write(tmp_path / "m")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelFolderError, match="'notes.txt' is not listed"):
        open_model_folder(folder)
    (folder / "notes.txt").unlink()
    (folder / ModelLayout.ESTIMATOR).unlink()
    with pytest.raises(ModelFolderError, match="'model.skops' listed in SHA256SUMS is missing"):
        open_model_folder(folder)


def test_no_folder_or_no_digests_is_refused_with_what_to_pass(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist; pass --model"):
        open_model_folder(tmp_path / "absent")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelFolderError, match="has no SHA256SUMS"):
        open_model_folder(tmp_path / "plain")


def test_another_major_version_is_refused_even_when_resealed(tmp_path):
    folder = write(tmp_path / "m")
    data = json.loads((folder / ModelLayout.CARD).read_text())
    data["versions"]["leukoscope"] = f"{major_version(__version__) + 1}.0.0"
    (folder / ModelLayout.CARD).write_text(json.dumps(data))
    reseal(folder)
    with pytest.raises(ModelFolderError, match=r"written by leukoscope \d+\.0\.0.*another major version"):
        open_model_folder(folder)


def test_a_card_of_another_format_is_refused(tmp_path):
    folder = write(tmp_path / "m")
    (folder / ModelLayout.CARD).write_text(json.dumps({"format": "other"}))
    reseal(folder)
    with pytest.raises(ModelFolderError, match="not a leukoscope model card"):
        open_model_folder(folder)


def test_a_skops_payload_that_would_run_code_is_refused(tmp_path):
    folder = write(tmp_path / "m")
    crafted = make_pipeline(FunctionTransformer(os.system), LogisticRegression())  # would run a shell command
    import skops.io as sio

    (folder / ModelLayout.ESTIMATOR).write_bytes(sio.dumps(crafted))
    reseal(folder)  # digests alone cannot tell a forged folder: the loader must refuse the type
    with pytest.raises(ModelFolderError, match=r"refused: it holds type\(s\) \['(posix|nt|os)\.system'\]"):
        load_estimator(open_model_folder(folder))


def test_a_file_that_is_not_skops_is_refused(tmp_path):
    folder = write(tmp_path / "m")
    (folder / ModelLayout.ESTIMATOR).write_bytes(b"not a zip")
    reseal(folder)
    with pytest.raises(ModelFolderError, match="is not a skops file"):
        load_estimator(open_model_folder(folder))


def test_dump_refuses_an_estimator_with_untrusted_types():
    with pytest.raises(TypeError, match="outside model_folder.TRUSTED_TYPES"):
        dump_estimator(make_pipeline(FunctionTransformer(os.system), LogisticRegression()))


@pytest.mark.slow
def test_a_keras_payload_with_code_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    target = tmp_path / "lambda.keras"
    model.save(target)
    folder = tmp_path / "m"
    write_model_folder(folder, {ModelLayout.CARD: json.dumps(card(kind="head")).encode(),
                                ModelLayout.HEAD: target.read_bytes()})
    with pytest.raises(ModelFolderError, match="cannot be loaded safely"):
        load_head(open_model_folder(folder))


def test_rewriting_a_folder_replaces_it_whole_and_leftovers_are_removed(tmp_path):
    folder = write(tmp_path / "m", kind="first")
    write(folder, kind="second")
    assert open_model_folder(folder).card["kind"] == "second"
    leftover = tmp_path / f".m{TMP_MARK}{os.getpid() + 1}"
    leftover.mkdir()
    (leftover / "model.json").write_text("{}")
    remove_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

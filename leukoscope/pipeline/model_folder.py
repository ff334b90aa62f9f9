"""The model folder: written whole with a digest of every file, opened only when nothing changed.

A model folder (files named by :class:`~leukoscope.pipeline.layout.ModelLayout`) holds no pickle:

- a scikit-learn pipeline is stored with **skops** (``model.skops``), whose loader builds only
  the types it is told to trust. skops was chosen over ONNX because it stores the fitted
  scikit-learn objects themselves, so a loaded model gives bit-identical probabilities (an ONNX
  graph computes in float32 and would not reproduce ``compare``'s numbers within 1e-6), and it
  covers every model leukoscope fits (SVM with Platt scaling, forests, k-NN, XGBoost) without
  per-model converters. Loading refuses any type outside scikit-learn/NumPy's own and the
  short list :data:`TRUSTED_TYPES`; an XGBoost booster inside is held as XGBoost's own UBJSON
  model bytes (``Booster.save_raw``), never as pickle.
- a sigmoid head is stored as ``model.keras`` and loaded with ``safe_mode=True``, which refuses
  Lambda layers and any other serialized Python code.

``SHA256SUMS`` lists the SHA-256 of every other file; :func:`open_model_folder` refuses a folder
with a changed, missing or extra file, an unknown format, or a card written by another major
version of leukoscope.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope import __version__
from leukoscope.pipeline.atomic import TMP_MARK
from leukoscope.pipeline.console import import_keras
from leukoscope.pipeline.layout import ModelLayout, sha256_file

log = logging.getLogger(__name__)

FORMAT = "leukoscope-model/1"
#: the types a ``model.skops`` may hold besides those skops trusts by default (scikit-learn's
#: estimators, NumPy and SciPy containers): what the models of
#: :mod:`leukoscope.classifiers.models` are made of
TRUSTED_TYPES = (
    "leukoscope.classifiers.models.PlattSVC",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)


class ModelFolderError(ValueError):
    """A model folder that cannot be used: missing, edited, of another version, unsafe, or not
    matching the features computed now; the message says why and what to do."""


def major_version(version: str) -> int:
    """The major number of a version string (``"1.2.3"`` -> 1)."""
    head = version.split(".", 1)[0]
    if not head.isdigit():
        raise ModelFolderError(f"version {version!r} has no major number")
    return int(head)


# -- writing --------------------------------------------------------------------------------
def dump_estimator(estimator: Any) -> bytes:
    """The skops bytes of a fitted scikit-learn estimator.

    Raises
    ------
    TypeError
        The estimator holds a type outside :data:`TRUSTED_TYPES` (a leukoscope bug: a new model
        type must be added there, after checking that loading it runs no code).
    """
    import skops.io as sio

    data = sio.dumps(estimator)
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if unknown:
        raise TypeError(f"the estimator holds types outside model_folder.TRUSTED_TYPES: {unknown}")
    return data


def digest_lines(folder: Path, names: list[str]) -> str:
    """``SHA256SUMS`` text for the files ``names`` of ``folder`` (the ``sha256sum`` format)."""
    return "".join(f"{sha256_file(folder / name)}  {name}\n" for name in sorted(names))


def write_model_folder(target: str | Path, files: dict[str, bytes | Callable[[Path], None]]) -> str:
    """Write a model folder whole: the files, then ``SHA256SUMS``; return the digest of ``SHA256SUMS``.

    The folder is assembled beside ``target`` and renamed into place, so a reader never sees a
    half-written model; an earlier folder of that name is replaced.

    Parameters
    ----------
    target : str or Path
        The model folder.
    files : dict
        File name -> its bytes, or a callable that writes the file at the path it is given.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, content in files.items():
            if callable(content):
                content(staging / name)
            else:
                (staging / name).write_bytes(content)
        layout = ModelLayout(staging)
        layout.digests_path.write_text(digest_lines(staging, list(files)), encoding="utf-8")
        old = target.with_name(f".{target.name}.old{TMP_MARK}{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sha256_file(ModelLayout(target).digests_path)


def remove_staging(folder: str | Path) -> None:
    """Delete the half-written model folders a killed ``train`` left in ``folder``."""
    for leftover in Path(folder).glob(f".*{TMP_MARK}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


# -- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFolder:
    """A verified model folder.

    Attributes
    ----------
    layout : ModelLayout
    card : dict
        ``model.json``.
    digest : str
        SHA-256 of ``SHA256SUMS``: one number for the whole folder.
    digests : dict of str to str
        File name -> SHA-256, as listed in ``SHA256SUMS`` (and checked).
    """

    layout: ModelLayout
    card: dict[str, Any]
    digest: str
    digests: dict[str, str]

    @property
    def path(self) -> Path:
        return self.layout.path


def _read_digests(layout: ModelLayout) -> dict[str, str]:
    path = layout.digests_path
    if not path.is_file():
        raise ModelFolderError(f"'{layout.path}' has no {layout.DIGESTS}: it is not a model folder written by "
                               "'leukoscope train'; pass a folder RUN/models/<name>")
    listed = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or "/" in name:
            raise ModelFolderError(f"line {number} of '{path}' is not '<sha256>  <file name>': the folder was "
                                   "edited; retrain the model or copy the folder again from where it was trained")
        listed[name] = digest
    return listed


def _check_files(layout: ModelLayout, listed: dict[str, str]) -> None:
    present = {p.name for p in layout.path.iterdir()} - {layout.DIGESTS}
    for name in sorted(set(listed) | present):
        if name not in present:
            problem = f"the file '{name}' listed in {layout.DIGESTS} is missing"
        elif name not in listed:
            problem = f"'{name}' is not listed in {layout.DIGESTS} (a model folder holds only the files it lists)"
        elif sha256_file(layout.file(name)) != listed[name]:
            problem = f"'{name}' differs from the file it was trained with (SHA-256 mismatch)"
        else:
            continue
        raise ModelFolderError(f"model folder '{layout.path}' refused: {problem}; retrain the model or copy the "
                               "folder again from where it was trained")


def open_model_folder(path: str | Path) -> ModelFolder:
    """Verify a model folder and read its card.

    Parameters
    ----------
    path : str or Path
        The model folder (``RUN/models/<name>``).

    Returns
    -------
    ModelFolder

    Raises
    ------
    ModelFolderError
        The folder is missing; a file was changed, removed or added since training (digest
        check); the card is not of this format; or it was written by another major version of
        leukoscope.
    """
    layout = ModelLayout(path)
    if not layout.path.is_dir():
        raise ModelFolderError(f"model folder '{layout.path}' does not exist; pass --model with a folder written by "
                               "'leukoscope train' (RUN/models/<name>)")
    digests = _read_digests(layout)
    _check_files(layout, digests)
    try:
        card = json.loads(layout.card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f"'{layout.card_path}' cannot be read as JSON ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFolderError(f"'{layout.card_path}' is not a leukoscope model card of format {FORMAT!r}")
    trained = str(card.get("versions", {}).get("leukoscope", ""))
    if not trained:
        raise ModelFolderError(f"'{layout.card_path}' does not record the leukoscope version that wrote it")
    if major_version(trained) != major_version(__version__):
        raise ModelFolderError(
            f"model folder '{layout.path}' was written by leukoscope {trained}, this is leukoscope {__version__}: "
            "another major version may compute features differently; retrain the model with this version "
            f"or predict with leukoscope {major_version(trained)}.x")
    return ModelFolder(layout, card, sha256_file(layout.digests_path), digests)


def load_estimator(folder: ModelFolder) -> Any:
    """The scikit-learn pipeline of a model folder, loaded by skops without untrusted types.

    Raises
    ------
    ModelFolderError
        The file names a type outside skops' defaults and :data:`TRUSTED_TYPES` (it could run
        code when loaded), or is not a skops file.
    """
    import skops.io as sio

    path = folder.layout.file(ModelLayout.ESTIMATOR)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile, JSON and key errors on files it cannot read
        raise ModelFolderError(f"'{path}' is not a skops file ({type(exc).__name__}: {exc})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelFolderError(
            f"'{path}' refused: it holds type(s) {refused} that leukoscope does not trust (loading them could run "
            "code); only models written by 'leukoscope train' can be loaded")
    return sio.load(path, trusted=list(TRUSTED_TYPES))


def load_head(folder: ModelFolder) -> Any:
    """The Keras head model of a model folder, loaded with ``safe_mode=True``.

    Raises
    ------
    ModelFolderError
        The file holds serialized Python code (e.g. a Lambda layer) or is not a Keras model.
    """
    keras = import_keras()
    path = folder.layout.file(ModelLayout.HEAD)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError... on unsafe or broken files
        raise ModelFolderError(f"'{path}' refused: it cannot be loaded safely ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); only models written by "
                               "'leukoscope train' can be loaded") from None


__all__ = ["FORMAT", "ModelFolder", "ModelFolderError", "TRUSTED_TYPES", "digest_lines", "dump_estimator",
           "load_estimator", "load_head", "major_version", "open_model_folder", "remove_staging",
           "write_model_folder"]

"""Find the weights a backbone is built with: ImageNet (Keras cache or a folder) or random.

``--weights`` (``features.weights``) takes:

``imagenet``
    The official Keras no-top file from Keras' cache (``$KERAS_HOME/models``, default
    ``~/.keras/models``), downloaded there when missing and the machine is online.
``DIR``
    A folder holding the official no-top ``.h5`` files under their official names (for
    machines without internet: copy them from a machine that has them).
``random``
    Untrained networks of the same architecture (tests, offline smoke runs). Their numbers
    say nothing about ImageNet transfer.
``auto``
    ``imagenet`` when it can be had, otherwise ``random`` with a warning.

What was used is recorded as a label (``imagenet``, ``random`` or ``file:<path>`` for a file
that is not the official one) in run.json, every embeddings file and every predictions row.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.features.backbones import BackboneSpec
from leukoscope.pipeline.console import first_time, import_keras, warn_once
from leukoscope.pipeline.layout import sha256_file

log = logging.getLogger("leukoscope")

AUTO = "auto"
IMAGENET = "imagenet"
RANDOM = "random"


class WeightsUnavailableError(ValueError):
    """ImageNet weights were asked for but cannot be had; the message says which file and where."""


@dataclass(frozen=True)
class ResolvedWeights:
    """The weights one backbone is built with.

    Attributes
    ----------
    label : str
        ``imagenet`` (a file matching the official checksum), ``random``, or ``file:<path>``
        (a weights file that is not the official one).
    path : str or None
        The weights file, ``None`` for random weights.
    source : str
        ``keras-cache``, ``folder`` or ``random``.
    sha256 : str
        SHA-256 of the file ("" for random weights).
    """

    label: str
    path: str | None
    source: str
    sha256: str = ""

    def info(self) -> dict[str, Any]:
        """JSON-serialisable record for run.json."""
        return {"label": self.label, "source": self.source, "path": self.path, "sha256": self.sha256}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded application weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home) / "models"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _from_file(spec: BackboneSpec, path: Path, source: str) -> ResolvedWeights:
    official = _md5(path) == spec.weights_md5
    label = IMAGENET if official else f"file:{path.resolve()}"
    if not official:
        log.warning("%s: '%s' is not the official ImageNet file (checksum differs); its results are "
                    "labelled %s", spec.name.value, path, label)
    return ResolvedWeights(label=label, path=str(path.resolve()), source=source, sha256=sha256_file(path))


def _missing_message(spec: BackboneSpec, reason: str) -> str:
    return (
        f"ImageNet weights for {spec.name.value} are not available: {reason}. Download "
        f"'{spec.weights_file}' from {spec.weights_url} on a machine with internet and put it "
        f"in {keras_cache_dir()} (Keras' cache; set KERAS_HOME to move it) or in a folder you "
        f"pass as --weights DIR; or use --weights random for untrained networks (their results "
        f"are labelled 'random' and say nothing about ImageNet transfer)"
    )


def _imagenet(spec: BackboneSpec) -> ResolvedWeights:
    cached = keras_cache_dir() / spec.weights_file
    if cached.is_file() and _md5(cached) == spec.weights_md5:
        return _from_file(spec, cached, "keras-cache")
    keras = import_keras()
    if first_time(f"download:{spec.name.value}"):
        log.info("%s: downloading its ImageNet weights '%s' into %s", spec.name.value, spec.weights_file,
                 keras_cache_dir())
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' own "Downloading data from" line and bar
            path = keras.utils.get_file(spec.weights_file, spec.weights_url, cache_subdir="models",
                                        cache_dir=str(keras_cache_dir().parent), file_hash=spec.weights_md5)
    except Exception as exc:  # keras.utils.get_file raises a bare Exception when offline
        raise WeightsUnavailableError(
            _missing_message(spec, f"'{spec.weights_file}' is not in {keras_cache_dir()} and could "
                                   f"not be downloaded ({exc})")
        ) from exc
    return _from_file(spec, Path(path), "keras-cache")


def _folder(spec: BackboneSpec, folder: Path) -> ResolvedWeights:
    path = folder / spec.weights_file
    if not path.is_file():
        raise WeightsUnavailableError(_missing_message(spec, f"the weights folder '{folder}' has no "
                                                             f"file '{spec.weights_file}'"))
    return _from_file(spec, path, "folder")


def resolve_weights(spec: BackboneSpec, weights: str) -> ResolvedWeights:
    """Decide which weights file (if any) ``spec`` is built with.

    Parameters
    ----------
    spec : BackboneSpec
        The backbone.
    weights : str
        ``auto``, ``imagenet``, ``random``, or a folder of official no-top ``.h5`` files.

    Returns
    -------
    ResolvedWeights

    Raises
    ------
    WeightsUnavailableError
        ``imagenet`` or a folder was asked for and the file is missing and cannot be
        downloaded; the message names the file, its URL and where to put it.
        Also when ``weights`` is none of the keywords and no existing folder.
    """
    if weights == RANDOM:
        return ResolvedWeights(label=RANDOM, path=None, source=RANDOM)
    if weights == IMAGENET:
        return _imagenet(spec)
    if weights == AUTO:
        try:
            return _imagenet(spec)
        except WeightsUnavailableError as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            warn_once(f"random:{spec.name.value}",
                      "weights 'auto': falling back to RANDOM weights for %s, whose ImageNet weights cannot be had "
                      "(%s); its results say nothing about ImageNet transfer: put '%s' in %s or pass --weights DIR",
                      spec.name.value, str(cause).replace(f" on {spec.weights_url}", "").splitlines()[0][:200],
                      spec.weights_file, keras_cache_dir())
            return ResolvedWeights(label=RANDOM, path=None, source=RANDOM)
    folder = Path(weights).expanduser()
    if not folder.is_dir():
        raise WeightsUnavailableError(
            f"weights {weights!r} is none of 'auto', 'imagenet', 'random' and no existing folder; "
            f"pass one of those words or a folder holding official Keras no-top .h5 files "
            f"(e.g. '{spec.weights_file}')"
        )
    return _folder(spec, folder)


__all__ = [
    "AUTO",
    "IMAGENET",
    "RANDOM",
    "ResolvedWeights",
    "WeightsUnavailableError",
    "keras_cache_dir",
    "resolve_weights",
]

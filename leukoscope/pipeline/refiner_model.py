"""Load a refiner model and apply it in the segment stage (``--refiner unet``).

:func:`load_refiner` loads a ``.keras`` file with Keras safe mode and refuses, with the reason,
a file that is not a refiner or whose input is not the refiner's; :func:`refine_segmentation`
is what the segment stage's workers call for every image.
"""

from __future__ import annotations

import functools
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.console import import_keras
from leukoscope.pipeline.layout import sha256_file
from leukoscope.segmentation.choices import Refiner
from leukoscope.segmentation.domain import TrainingDomain, image_signature

#: The refiner shipped inside the package (``--refiner unet`` without ``--refiner-model``).
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "refiner.keras"
#: outline colours (cell, nucleus) of the threshold labels in the overlays of a refined run
THRESHOLD_COLOURS = ((255, 0, 255), (255, 128, 0))


class RefinerModelError(ValueError):
    """A model file cannot be used as a refiner; the message names the file and the reason."""


def sidecar(model_path: str | Path, suffix: str) -> Path:
    """A file written beside a model: ``refiner.keras`` -> ``refiner.json``, ``refiner.log.csv``..."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + suffix)


def load_refiner(path: str | Path = "", *, side: int | None = None) -> Any:
    """Load a refiner model with Keras safe mode and check that it is one.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` file written by ``leukoscope train-refiner``; empty for the shipped
        model (:data:`SHIPPED_MODEL`).
    side : int, optional
        The input side the caller expects; the model must have been trained for it.

    Returns
    -------
    keras.Model
        Not compiled (inference only).

    Raises
    ------
    RefinerModelError
        The file is missing, is not a Keras model file, holds another kind of model, or takes
        inputs other than ``(side, side, 5)`` (or the ``side`` asked for).
    """
    path = Path(path) if str(path) else SHIPPED_MODEL
    if not path.is_file():
        raise RefinerModelError(
            f"refiner model '{path}' does not exist; train one with `leukoscope train-refiner --data PATH "
            "--masks PATH --out MODEL.keras`, or leave --refiner-model empty for the shipped refiner"
        )
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise RefinerModelError(f"refiner model '{path.name}' is not a Keras .keras model file")
    keras = import_keras()

    from leukoscope.segmentation.unet import INPUT_CHANNELS, MODEL_NAME, N_CLASSES

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for foreign or damaged archives
        raise RefinerModelError(f"refiner model '{path.name}' cannot be loaded ({type(exc).__name__}: {exc})") from exc
    if model.name != MODEL_NAME and model.name.startswith(MODEL_NAME.rsplit("_", 1)[0]):
        raise RefinerModelError(
            f"'{path.name}' is a refiner of an earlier leukoscope ('{model.name}') that reads its input "
            f"another way; this version needs '{MODEL_NAME}': retrain it with `leukoscope train-refiner` "
            "(the command is in its .json record)"
        )
    if model.name != MODEL_NAME:
        raise RefinerModelError(
            f"'{path.name}' holds the Keras model '{model.name}', not a leukoscope refiner ('{MODEL_NAME}'); "
            "train one with `leukoscope train-refiner`"
        )
    shape_in, shape_out = tuple(model.input_shape), tuple(model.output_shape)
    trained = shape_in[1]
    if (len(shape_in) != 4 or shape_in[3] != INPUT_CHANNELS or shape_in[1] != shape_in[2] or trained is None
            or shape_out != (None, trained, trained, N_CLASSES)):
        raise RefinerModelError(
            f"refiner model '{path.name}' takes {shape_in[1:]} and returns {shape_out[1:]}; a refiner takes "
            f"(side, side, {INPUT_CHANNELS}) and returns (side, side, {N_CLASSES})"
        )
    if side is not None and trained != side:
        raise RefinerModelError(
            f"refiner model '{path.name}' was trained for {trained}x{trained} inputs, not {side}x{side}; "
            f"use a model trained with --side {side}"
        )
    return model


def refiner_model_path(segmentation: SegmentationConfig) -> str:
    """The refiner file of a run (``refiner_model``, or the shipped one), checked by loading it once.

    Returns
    -------
    str
        Absolute path, or ``""`` when ``refiner`` is ``none``.

    Raises
    ------
    RefinerModelError
        The refiner is on and its model file is unusable (see :func:`load_refiner`).
    """
    if segmentation.refiner is Refiner.NONE:
        return ""
    path = Path(segmentation.refiner_model) if segmentation.refiner_model else SHIPPED_MODEL
    load_refiner(path)
    return str(path.resolve())


def refiner_info(path: str) -> dict[str, Any]:
    """What run.json records of a refiner: file, SHA-256, whether its record has the training
    images' signatures (``domain``), and its training record's SHA-256, command and data."""
    info: dict[str, Any] = {"model": path, "sha256": sha256_file(path), "domain": trained_domain(path) is not None}
    record = sidecar(path, ".json")
    if record.is_file():
        recorded = json.loads(record.read_text(encoding="utf-8"))
        info.update(record_sha256=sha256_file(record), command=recorded.get("command", ""),
                    data=[s.get("data") for s in recorded.get("data", [])])
    return info


@functools.lru_cache(maxsize=2)
def cached_refiner(path: str) -> Any:
    """:func:`load_refiner` once per process (the segment workers call it for every image)."""
    return load_refiner(path)


@functools.lru_cache(maxsize=2)
def trained_backgrounds(path: str) -> frozenset[str]:
    """The surrounds (``smear``, ``black``) of the images a refiner was trained on, from its record
    (``MODEL.json`` key ``backgrounds``); a record without the key is from a refiner trained on
    smear crops only (every refiner before that key existed, the shipped one included)."""
    record = sidecar(path, ".json")
    recorded = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    return frozenset(recorded.get("backgrounds", ["smear"]))


@functools.lru_cache(maxsize=2)
def trained_domain(path: str) -> TrainingDomain | None:
    """The colour and size signatures of a refiner's training images, from its record (``MODEL.json``
    key ``domain``); ``None`` for a record without it (refiners trained before the key existed):
    then no image is judged unlike them.

    Raises
    ------
    RefinerModelError
        The record's ``domain`` cannot be read.
    """
    record = sidecar(path, ".json")
    recorded = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    if "domain" not in recorded:
        return None
    try:
        return TrainingDomain.from_dict(recorded["domain"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RefinerModelError(f"the 'domain' of the refiner record '{record}' cannot be read ({exc}); "
                                "retrain the refiner with `leukoscope train-refiner`") from None


def refine_segmentation(path: str, image: np.ndarray, result: Any, *, min_size: int,
                        flips: bool = False) -> tuple[Any, np.ndarray, str]:
    """Refine one threshold segmentation with the refiner in ``path`` (``flips``: test-time flips).

    Returns
    -------
    result : SegmentationResult
        With the refined labels and their ``qc_flag``; or the threshold labels flagged
        ``refiner_skipped`` where the image's surround is not one the refiner was trained on
        (:func:`trained_backgrounds`), its colours and cell size are unlike those of the training
        images (:func:`trained_domain`), or the guard doubts the refined labels
        (:func:`~leukoscope.segmentation.refine.refine_result`).
    picture : (H, W, 3) uint8 ndarray
        The image with the threshold outlines drawn in :data:`THRESHOLD_COLOURS` (magenta
        cell, orange nucleus) inside the refined cell's overlay window, as wide as the refined
        outlines the overlay draws on top, so that only disagreements stay visible.
    reason : str
        Why the refiner was skipped, ``""`` when its labels were used.
    """
    from leukoscope.segmentation.overlay import cell_window, draw_overlay
    from leukoscope.segmentation.refine import refine_result, skip_refiner

    if result.background not in trained_backgrounds(path):  # unlike every image the refiner was trained on
        return skip_refiner(result), image, (
            f"the refiner was not trained on a {getattr(result.background, 'value', result.background)} surround")
    domain = trained_domain(path)
    unlike = domain.unlike(image_signature(image, result.labels)) if domain is not None else ""
    if unlike:
        return skip_refiner(result), image, unlike
    refined, reason = refine_result(cached_refiner(path), image, result, min_size=min_size, flips=flips)
    if reason or np.array_equal(refined.labels, result.labels):  # no change: nothing to show under the outlines
        return refined, image, reason
    window = cell_window(refined.labels)
    picture = image.copy()
    picture[window] = draw_overlay(image[window], result.labels[window], colours=THRESHOLD_COLOURS)
    return refined, picture, ""


__all__ = [
    "RefinerModelError", "SHIPPED_MODEL", "THRESHOLD_COLOURS", "cached_refiner", "load_refiner",
    "refine_segmentation", "refiner_info", "refiner_model_path", "sidecar", "trained_backgrounds", "trained_domain",
]

"""Train, save and load the refiner U-Net: ``leukoscope train-refiner``.

Training reads image/expert-mask pairs from one or several ``--data PATH --masks PATH``
sources (ALL-IDB2 colour TIFF masks, Zheng single-channel PNG masks; matched by file stem by
:func:`leukoscope.pipeline.groundtruth.match_masks`), thresholds every image with the
configured segmentation, holds out a validation part of each source, trains
:func:`leukoscope.segmentation.unet.build_unet` with augmentation and early stopping on the
validation loss (the best epoch's weights are kept), and writes next to ``MODEL.keras``::

    MODEL.keras                 the model (loaded with Keras safe mode)
    MODEL.json                  command, data (file counts and digest), seed, settings,
                                segmentation settings, versions, validation Dice, timings
    MODEL.log.csv               one row per epoch: loss, val_loss, validation Dice at the model side
    MODEL.learning_curve.png    the log as a figure

:func:`load_refiner` loads a model file and refuses, with the reason, a file that is not a
refiner or whose input is not the refiner's.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import shlex
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import write_csv, write_json, write_png
from leukoscope.pipeline.config import SegmentationConfig, load_config
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.groundtruth import ExpertMaskError, match_masks, read_expert_mask
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import package_versions, sha256_file
from leukoscope.segmentation.choices import Refiner

log = logging.getLogger(__name__)

#: The refiner shipped inside the package (``--refiner unet`` without ``--refiner-model``).
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "refiner.keras"
LOG_COLUMNS = ["epoch", "loss", "val_loss", "val_dice_cell", "val_dice_nucleus", "learning_rate", "seconds"]
#: outline colours (cell, nucleus) of the threshold labels in the overlays of a refined run
THRESHOLD_COLOURS = ((255, 0, 255), (255, 128, 0))
SCORE_COLUMNS = ["image", "method", "dice_cell", "dice_nucleus", "iou_cell", "iou_nucleus"]


class RefinerModelError(ValueError):
    """A model file cannot be used as a refiner; the message names the file and the reason."""


class RefinerTrainingError(ValueError):
    """Training cannot start: no usable image/mask pairs, or impossible settings."""


@dataclass(frozen=True)
class TrainingSettings:
    """How the refiner is trained (the ``train-refiner`` flags).

    Attributes
    ----------
    side : int
        Input side of the U-Net (a multiple of ``2 ** depth``).
    depth, width : int
        U-Net levels below full resolution, filters of the first level.
    epochs : int
        Most passes over the training images.
    patience : int
        Epochs without a lower validation loss before training stops (the learning rate is
        halved after ``patience // 2`` such epochs, down to a sixteenth).
    batch_size : int
        Images per step.
    learning_rate : float
        Adam step size.
    validation_fraction : float
        Share of each source held out for validation (at least one image per source).
    limit : int
        Use at most this many pairs of each source (0: all); for quick checks.
    seed : int
        Seed of the split, the weights and the augmentation.
    """

    side: int = 128
    depth: int = 4
    width: int = 8
    epochs: int = 25
    patience: int = 6
    batch_size: int = 16
    learning_rate: float = 0.002
    validation_fraction: float = 0.15
    limit: int = 0
    seed: int = 0


@dataclass(frozen=True)
class _Pair:
    source: int
    image: str
    mask: str
    keep_full: bool


def sidecar(model_path: str | Path, suffix: str) -> Path:
    """A file written beside a model: ``refiner.keras`` -> ``refiner.json``, ``refiner.log.csv``..."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + suffix)


# -------------------------------------------------------------------------------- data
def find_pairs(data: str | Path, masks: str | Path) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Images of a dataset and their expert masks, matched by file stem.

    When the masks sit beside the images (Zheng: ``001.bmp`` and its mask ``001.png``), each
    file of such a couple is the other's candidate; the one that reads as an RGB image is the
    image, the other its mask.

    Parameters
    ----------
    data : str or Path
        Dataset folder (any layout :func:`~leukoscope.pipeline.datasets.load_dataset` reads).
    masks : str or Path
        Folder of the expert masks (may be ``data`` itself).

    Returns
    -------
    pairs : DataFrame
        ``image, mask`` absolute paths, sorted by image path.
    rejected : list of dict
        ``path, stage, reason`` of images without a usable mask.

    Raises
    ------
    RefinerTrainingError
        No image has a mask.
    """
    samples = load_dataset(data).samples
    matches = match_masks(list(samples["path"]), masks)
    mask_files = {m.path for m in matches if m.path}
    rows, rejected = [], []
    for image, match in zip(samples["path"], matches):
        if image in mask_files and not _reads_as_rgb(image):
            continue
        if match.problem:
            reason = f"no expert mask with its file stem in '{masks}'" if match.problem == "missing" else match.problem
            rejected.append({"path": image, "stage": "train-refiner", "reason": reason})
        else:
            rows.append({"image": image, "mask": match.path})
    if not rows:
        raise RefinerTrainingError(
            f"none of the {len(samples)} images in '{data}' has an expert mask in '{masks}' (matched by "
            "file stem, e.g. Im001_1.tif -> Im001_1.tif, 001.bmp -> 001.png); check --data and --masks"
        )
    return pd.DataFrame(rows).sort_values("image", ignore_index=True), rejected


def _reads_as_rgb(path: str) -> bool:
    try:
        read_image(path)
    except ImageReadError:
        return False
    return True


def _split(counts: Sequence[int], *, fraction: float, limit: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per source: (training, validation) positions after an optional limit; >= 1 validation image."""
    rng = np.random.default_rng(seed)
    parts = []
    for count in counts:
        order = rng.permutation(count)
        if limit:
            order = order[:limit]
        held = min(len(order) - 1, max(1, round(fraction * len(order))))
        parts.append((np.sort(order[held:]), np.sort(order[:held])))
    return parts


def _read_pair(paths: tuple[str, str], *, options: dict[str, Any]) -> dict[str, Any]:
    """Image, expert labels and threshold labels of one (image, mask) pair, or why it is unusable."""
    from leukoscope.segmentation.cell import segment_cell

    image_path, mask_path = paths
    try:
        image = read_image(image_path)
        expert = read_expert_mask(mask_path, image_shape=image.shape)
    except (ImageReadError, ExpertMaskError) as exc:
        return {"reason": str(exc)}
    return {"reason": "", "image": image, "expert": expert, "threshold": segment_cell(image, **options).labels}


def _load_pair(pair: _Pair, *, side: int, options: dict[str, Any]) -> dict[str, Any]:
    """Encoded input and target of one pair (plus the full-size arrays for validation), or a reason."""
    from leukoscope.segmentation.unet import encode_input, encode_target

    sample = {"pair": pair, **_read_pair((pair.image, pair.mask), options=options)}
    if sample["reason"]:
        return sample
    inputs, window = encode_input(sample["image"], sample["threshold"], side=side)
    sample.update(input=inputs, target=encode_target(sample["expert"], window, side=side))
    if not pair.keep_full:
        for key in ("image", "expert", "threshold"):
            del sample[key]
    return sample


def load_training_data(
    sources: Sequence[tuple[str | Path, str | Path]],
    *,
    settings: TrainingSettings,
    segmentation: SegmentationConfig,
    jobs: int = 1,
    quiet: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, str]], list[dict[str, Any]]]:
    """Read, threshold and encode every pair; split each source into training and validation.

    Returns
    -------
    training, validation : list of dict
        Samples with ``input`` (side, side, 5) and ``target`` (side, side); validation samples
        also hold the full-size ``image``, ``expert`` and ``threshold`` labels.
    rejected : list of dict
        ``path, stage, reason`` rows.
    described : list of dict
        One per source: ``data``, ``masks``, ``pairs``, ``training``, ``validation`` counts and
        ``sha256`` (digest of the sorted image and mask file hashes).
    """
    from leukoscope.pipeline.segment import segmentation_options  # segment imports this module

    tables, rejected = [], []
    for data, masks in sources:
        table, lost = find_pairs(data, masks)
        tables.append(table)
        rejected += lost
    parts = _split([len(t) for t in tables], fraction=settings.validation_fraction,
                   limit=settings.limit, seed=settings.seed)
    pairs = []
    for index, (table, (train, held)) in enumerate(zip(tables, parts)):
        for position, keep_full in [(p, False) for p in train] + [(p, True) for p in held]:
            pairs.append(_Pair(index, table["image"][position], table["mask"][position], keep_full))
    loader = functools.partial(_load_pair, side=settings.side, options=segmentation_options(segmentation))
    samples = list(parallel_map(loader, pairs, jobs=jobs, desc="reading pairs", quiet=quiet))
    rejected += [{"path": s["pair"].image, "stage": "train-refiner", "reason": s["reason"]} for s in samples if s["reason"]]
    usable = [s for s in samples if not s["reason"]]
    described = []
    for index, (data, masks) in enumerate(sources):
        mine = sorted((s for s in usable if s["pair"].source == index), key=lambda s: s["pair"].image)
        digest = hashlib.sha256()
        for s in mine:
            digest.update(f"{sha256_file(s['pair'].image)} {sha256_file(s['pair'].mask)}\n".encode())
        described.append({
            "data": str(data), "masks": str(masks), "pairs": len(mine),
            "training": sum(not s["pair"].keep_full for s in mine),
            "validation": sum(s["pair"].keep_full for s in mine), "sha256": digest.hexdigest(),
        })
    training = [s for s in usable if not s["pair"].keep_full]
    validation = [s for s in usable if s["pair"].keep_full]
    if len(training) < settings.batch_size or not validation:
        raise RefinerTrainingError(
            f"only {len(training)} training and {len(validation)} validation pairs could be read "
            f"({len(rejected)} rejected); training needs at least one batch ({settings.batch_size}) and one "
            "validation image: add data, lower --batch-size or --validation-fraction"
        )
    return training, validation, rejected, described


# -------------------------------------------------------------------------------- training
def _batches(inputs: np.ndarray, targets: np.ndarray, *, batch_size: int, seed: int) -> Any:
    """A Keras dataset of augmented batches; epoch ``e`` batch ``i`` is the same on every run."""
    import keras

    from leukoscope.segmentation.unet import augment_batch

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(inputs))

        def __len__(self) -> int:
            return len(inputs) // batch_size

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            rng = np.random.default_rng([seed, self.epoch, index])
            return augment_batch(inputs[rows], targets[rows], rng=rng)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(inputs))

    return AugmentedBatches()


def _mean_dice(predicted: np.ndarray, expected: np.ndarray, first_class: int) -> float:
    from leukoscope.segmentation.metrics import dice

    return float(np.nanmean([dice(p >= first_class, e >= first_class) for p, e in zip(predicted, expected)]))


def _epoch_logger(inputs: np.ndarray, targets: np.ndarray, rows: list[dict[str, float]]) -> Any:
    """Callback validating once per epoch: ``val_loss`` for the other callbacks and one log row.

    One forward pass over the validation images gives both the validation loss (put in the
    epoch's logs, which Keras hands on to early stopping and the learning-rate schedule, so it
    must come first in the callback list) and the validation Dice at the model side.
    """
    import keras

    from leukoscope.segmentation.unet import DiceCrossEntropy

    loss = DiceCrossEntropy()

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            probabilities = self.model.predict(inputs, batch_size=32, verbose=0)
            logs["val_loss"] = float(keras.ops.convert_to_numpy(loss(targets, probabilities)))
            predicted = np.argmax(probabilities, axis=-1)
            rows.append({
                "epoch": epoch + 1, "loss": float(logs["loss"]), "val_loss": logs["val_loss"],
                "val_dice_cell": _mean_dice(predicted, targets, 1),
                "val_dice_nucleus": _mean_dice(predicted, targets, 2),
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": time.perf_counter() - self.started,
            })

    return EpochLog()


def learning_curve(history: pd.DataFrame, title: str) -> np.ndarray:
    """Training and validation loss, and validation Dice, per epoch.

    Parameters
    ----------
    history : DataFrame
        The training log (:data:`LOG_COLUMNS`).
    title : str
        Figure title.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The rendered figure.
    """
    from matplotlib.figure import Figure

    from leukoscope.pipeline.figures import figure_to_array

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    loss_axis = fig.add_subplot()
    loss_axis.plot(history["epoch"], history["loss"], marker="o", ms=3, label="training loss")
    loss_axis.plot(history["epoch"], history["val_loss"], marker="o", ms=3, label="validation loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("cross-entropy + Dice loss")
    dice_axis = loss_axis.twinx()
    dice_axis.plot(history["epoch"], history["val_dice_cell"], ls="--", color="tab:green", label="validation Dice, cell")
    dice_axis.plot(history["epoch"], history["val_dice_nucleus"], ls="--", color="tab:red", label="validation Dice, nucleus")
    dice_axis.set_ylabel("Dice (model side)")
    handles = loss_axis.get_legend_handles_labels()[0] + dice_axis.get_legend_handles_labels()[0]
    loss_axis.legend(handles=handles, fontsize=7, loc="center right")
    loss_axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


def _score(model: Any, named: Iterable[tuple[str, dict[str, Any]]], *, min_size: int, batch_size: int = 32) -> pd.DataFrame:
    """Score rows (:data:`SCORE_COLUMNS`) of (name, sample with image/expert/threshold) items."""
    from leukoscope.segmentation.metrics import label_scores
    from leukoscope.segmentation.refine import refine_labels

    rows: list[dict[str, Any]] = []
    items = iter(named)
    while chunk := list(itertools.islice(items, batch_size)):
        refined = refine_labels(model, [s["image"] for _, s in chunk], [s["threshold"] for _, s in chunk],
                                min_size=min_size, batch_size=batch_size)
        for (name, sample), labels in zip(chunk, refined):
            for method, predicted in (("threshold", sample["threshold"]), ("refined", labels)):
                rows.append({"image": name, "method": method, **label_scores(predicted, sample["expert"])})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def mean_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Mean Dice of the thresholding and of the refiner: ``threshold_dice_cell``... (4 decimals)."""
    return {
        f"{method}_{key}": round(float(scores.loc[scores["method"] == method, key].mean()), 4)
        for method in ("threshold", "refined") for key in ("dice_cell", "dice_nucleus")
    }


def train_refiner(
    sources: Sequence[tuple[str | Path, str | Path]],
    out: str | Path,
    *,
    settings: TrainingSettings = TrainingSettings(),
    segmentation: SegmentationConfig = SegmentationConfig(),
    command: str = "",
    jobs: int = 1,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a refiner on expert masks and write it with its log, curve and record.

    Parameters
    ----------
    sources : sequence of (data, masks)
        Dataset folders and their expert-mask folders.
    out : str or Path
        The ``.keras`` file to write; its sidecars go beside it (see the module docstring).
    settings : TrainingSettings
        Model and training settings.
    segmentation : SegmentationConfig
        Thresholding whose labels the refiner learns to correct (use the same at inference).
    command : str
        The command line, recorded in ``MODEL.json``.
    jobs : int
        Parallel workers for reading and thresholding the images.
    quiet : bool
        No progress output.

    Returns
    -------
    dict
        The record written to ``MODEL.json``.

    Raises
    ------
    RefinerTrainingError
        ``out`` does not end in ``.keras``, or there is too little usable data.
    """
    import keras

    from leukoscope.pipeline.heads import save_keras
    from leukoscope.pipeline.segment import segmentation_options  # segment imports this module
    from leukoscope.segmentation.unet import DiceCrossEntropy, build_unet

    out = Path(out)
    if out.suffix != ".keras":
        raise RefinerTrainingError(f"--out '{out}' must end in .keras (Keras' model file format)")
    started, cpu_started = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(settings.seed)
    model = build_unet(side=settings.side, depth=settings.depth, width=settings.width, seed=settings.seed)
    training, validation, rejected, described = load_training_data(
        sources, settings=settings, segmentation=segmentation, jobs=jobs, quiet=quiet)
    for row in rejected:
        log.warning("skipped %s: %s", row["path"], row["reason"])
    # XLA: 1.7x faster training steps on a CPU with TensorFlow; JAX compiles anyway, and
    # torch.compile (what jit_compile means on PyTorch) is left to Keras' own choice.
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=DiceCrossEntropy(),
                  jit_compile=True if keras.backend.backend() in ("tensorflow", "jax") else "auto")
    val_inputs = np.stack([s["input"] for s in validation])
    val_targets = np.stack([s["target"] for s in validation])
    rows: list[dict[str, float]] = []
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
    slower = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, settings.patience // 2),
                                               min_lr=settings.learning_rate / 16)
    model.fit(
        _batches(np.stack([s["input"] for s in training]), np.stack([s["target"] for s in training]),
                 batch_size=settings.batch_size, seed=settings.seed),
        epochs=settings.epochs,
        callbacks=[_epoch_logger(val_inputs, val_targets, rows), stopper, slower], verbose=0 if quiet else 2,
    )
    history = pd.DataFrame(rows, columns=LOG_COLUMNS)
    save_keras(keras.Model(model.inputs, model.outputs, name=model.name), out)  # without the optimizer state
    write_csv(history, sidecar(out, ".log.csv"))
    names = " + ".join("/".join(Path(d).parts[-2:]) for d, _ in sources)
    write_png(learning_curve(history, f"refiner U-Net trained on {names}"), sidecar(out, ".learning_curve.png"))
    scores = _score(model, ((s["pair"].image, s) for s in validation), min_size=segmentation.min_size)
    for index, source in enumerate(described):
        mine = {s["pair"].image for s in validation if s["pair"].source == index}
        source["validation_scores"] = mean_scores(scores[scores["image"].isin(mine)])
    record = {
        "command": command,
        "data": described,
        "rejected": rejected,
        "seed": settings.seed,
        "settings": dataclasses.asdict(settings),
        "segmentation": {k: getattr(v, "value", v) for k, v in segmentation_options(segmentation).items()},
        "epochs_run": len(history),
        "best_epoch": int(stopper.best_epoch) + 1,
        "parameters": int(model.count_params()),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "model_sha256": sha256_file(out),
        "model_bytes": out.stat().st_size,
        "backend": keras.backend.backend(),
        "versions": package_versions(),
    }
    write_json(record, sidecar(out, ".json"))
    return record


# -------------------------------------------------------------------------------- scoring
def score_refiner(
    model: Any,
    data: str | Path,
    masks: str | Path,
    *,
    segmentation: SegmentationConfig = SegmentationConfig(),
    jobs: int = 1,
    quiet: bool = True,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Dice and IoU of the thresholding and of the refined labels on every image with a mask.

    Parameters
    ----------
    model : keras.Model
        A refiner (:func:`load_refiner`).
    data, masks : str or Path
        Dataset folder and expert-mask folder (as for ``train-refiner``).
    segmentation : SegmentationConfig
        The thresholding that is refined.
    jobs : int
        Parallel workers for reading and thresholding.
    quiet : bool
        No progress bar.
    batch_size : int
        Images per refiner forward pass (and read at a time).

    Returns
    -------
    DataFrame
        One row per image and method (``threshold``, ``refined``): :data:`SCORE_COLUMNS`.
        Unreadable pairs are left out.
    """
    from leukoscope.pipeline.segment import segmentation_options  # segment imports this module

    pairs, _ = find_pairs(data, masks)
    items = list(zip(pairs["image"], pairs["mask"]))
    reader = functools.partial(_read_pair, options=segmentation_options(segmentation))
    read = zip(pairs["image"], parallel_map(reader, items, jobs=jobs, desc=f"scoring {Path(data).name}", quiet=quiet))
    return _score(model, ((path, sample) for path, sample in read if not sample["reason"]),
                  min_size=segmentation.min_size, batch_size=batch_size)


# -------------------------------------------------------------------------------- loading
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
    import keras

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


# -------------------------------------------------------------------------------- segment stage
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
    """What run.json records of a refiner: file, SHA-256 and its training record's command and data."""
    info: dict[str, Any] = {"model": path, "sha256": sha256_file(path)}
    record = sidecar(path, ".json")
    if record.is_file():
        recorded = json.loads(record.read_text(encoding="utf-8"))
        info.update(command=recorded.get("command", ""), data=[s.get("data") for s in recorded.get("data", [])])
    return info


@functools.lru_cache(maxsize=2)
def cached_refiner(path: str) -> Any:
    """:func:`load_refiner` once per process (the segment workers call it for every image)."""
    return load_refiner(path)


def refine_segmentation(path: str, image: np.ndarray, result: Any, *, min_size: int) -> tuple[Any, np.ndarray]:
    """Refine one threshold segmentation with the refiner in ``path``.

    Returns
    -------
    result : SegmentationResult
        With the refined labels and their ``qc_flag``
        (:func:`~leukoscope.segmentation.refine.refine_result`).
    picture : (H, W, 3) uint8 ndarray
        The image with the threshold outlines drawn in :data:`THRESHOLD_COLOURS` (magenta
        cell, orange nucleus) inside the refined cell's overlay window, as wide as the refined
        outlines the overlay draws on top, so that only disagreements stay visible.
    """
    from leukoscope.segmentation.overlay import cell_window, draw_overlay
    from leukoscope.segmentation.refine import refine_result

    refined = refine_result(cached_refiner(path), image, result, min_size=min_size)
    window = cell_window(refined.labels)
    picture = image.copy()
    picture[window] = draw_overlay(image[window], result.labels[window], colours=THRESHOLD_COLOURS)
    return refined, picture


# -------------------------------------------------------------------------------- command line
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train-refiner`` subcommand to the ``leukoscope`` command line."""
    defaults = TrainingSettings()
    parser = subparsers.add_parser(
        "train-refiner", help="train the U-Net mask refiner on images with expert masks",
        description="Train the U-Net that corrects the threshold masks, on one or several datasets with "
                    "expert masks (pairs of --data and --masks, matched by file stem).")
    parser.add_argument("--data", action="append", required=True, type=Path, help="dataset folder (repeatable)")
    parser.add_argument("--masks", action="append", required=True, type=Path,
                        help="its expert-mask folder (one per --data, in the same order)")
    parser.add_argument("--out", required=True, type=Path, help="model file to write (MODEL.keras)")
    parser.add_argument("--config", type=Path, help="TOML file whose [segmentation] thresholding is refined")
    for name, text in (("side", "input side of the U-Net"), ("depth", "U-Net levels"),
                       ("width", "filters of the first level"), ("epochs", "most epochs"),
                       ("patience", "early-stopping patience (epochs)"), ("batch_size", "images per step"),
                       ("learning_rate", "Adam learning rate"),
                       ("validation_fraction", "share of each source held out for validation"),
                       ("limit", "use at most this many pairs of each source (0: all)"), ("seed", "random seed")):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(default), default=default,
                            help=f"{text} (default {default})")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers for reading the images")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def run_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run ``leukoscope train-refiner`` from its parsed arguments; return the exit code.

    ``argv`` (the arguments after ``leukoscope``; ``sys.argv[1:]`` when omitted) is recorded
    as the training command.
    """
    if len(args.data) != len(args.masks):
        raise RefinerTrainingError(
            f"got {len(args.data)} --data but {len(args.masks)} --masks; give one --masks after each --data")
    settings = TrainingSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingSettings)})
    record = train_refiner(
        list(zip(args.data, args.masks)), args.out, settings=settings,
        segmentation=load_config(args.config).segmentation,
        command=shlex.join(["leukoscope", *(sys.argv[1:] if argv is None else argv)]),
        jobs=args.jobs, quiet=args.quiet)
    print(f"refiner written to {args.out} ({record['epochs_run']} epochs, best {record['best_epoch']}); "
          f"record in {sidecar(args.out, '.json')}")
    return 0


__all__ = [
    "RefinerModelError",
    "RefinerTrainingError",
    "SHIPPED_MODEL",
    "TrainingSettings",
    "THRESHOLD_COLOURS",
    "add_parser",
    "cached_refiner",
    "find_pairs",
    "learning_curve",
    "load_refiner",
    "load_training_data",
    "mean_scores",
    "refine_segmentation",
    "refiner_info",
    "refiner_model_path",
    "run_from_args",
    "score_refiner",
    "sidecar",
    "train_refiner",
]

"""Image / expert-mask pairs for the refiner: find, read, threshold, encode, split and score them.

Pairs come from one or several ``--data PATH --masks PATH`` sources (ALL-IDB2 colour TIFF masks,
Zheng single-channel PNG masks; matched by file stem by
:func:`leukoscope.pipeline.groundtruth.match_masks`); each source is split into a training and a
validation part.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.groundtruth import ExpertMaskError, match_masks, read_expert_mask
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.unet_encoding import encode_input, encode_target

#: one row per image and method (``threshold``, ``refined``) of :func:`score_pairs`
REFINER_SCORE_COLUMNS = ["image", "method", "dice_cell", "dice_nucleus", "iou_cell", "iou_nucleus"]


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
    result = segment_cell(image, **options)
    return {"reason": "", "image": image, "expert": expert, "threshold": result.labels,
            "background": result.background.value}


def _load_pair(pair: _Pair, *, side: int, options: dict[str, Any]) -> dict[str, Any]:
    """Encoded input and target of one pair (plus the full-size arrays for validation), or a reason."""
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


def score_pairs(model: Any, named: Iterable[tuple[str, dict[str, Any]]], *, min_size: int, batch_size: int = 32) -> pd.DataFrame:
    """Score rows (:data:`REFINER_SCORE_COLUMNS`) of (name, sample with image/expert/threshold) items."""
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
    return pd.DataFrame(rows, columns=REFINER_SCORE_COLUMNS)


def mean_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Mean Dice of the thresholding and of the refiner: ``threshold_dice_cell``... (4 decimals)."""
    return {
        f"{method}_{key}": round(float(scores.loc[scores["method"] == method, key].mean()), 4)
        for method in ("threshold", "refined") for key in ("dice_cell", "dice_nucleus")
    }


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
        One row per image and method (``threshold``, ``refined``): :data:`REFINER_SCORE_COLUMNS`.
        Unreadable pairs are left out.
    """
    pairs, _ = find_pairs(data, masks)
    items = list(zip(pairs["image"], pairs["mask"]))
    reader = functools.partial(_read_pair, options=segmentation_options(segmentation))
    read = zip(pairs["image"], parallel_map(reader, items, jobs=jobs, desc=f"scoring {Path(data).name}", quiet=quiet))
    return score_pairs(model, ((path, sample) for path, sample in read if not sample["reason"]),
                  min_size=segmentation.min_size, batch_size=batch_size)


__all__ = [
    "REFINER_SCORE_COLUMNS", "RefinerTrainingError", "TrainingSettings", "find_pairs", "load_training_data",
    "mean_scores", "score_pairs", "score_refiner",
]

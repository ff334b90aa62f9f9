"""Dice of a refiner against expert masks: per image, thresholding vs refined, on smear crops or cut-outs.

``threshold`` is the thresholding the refiner starts from, ``unguarded`` the refiner's labels as
they are (with the threshold's cell outline on a black surround,
:func:`~leukoscope.segmentation.refine.keep_outline`), ``refined`` what ``segment --refiner unet``
keeps: those labels, or the threshold labels where the image is unlike the refiner's training
images (:class:`~leukoscope.segmentation.domain.TrainingDomain`) or
:func:`~leukoscope.segmentation.refine.refiner_doubt` objects.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from typing import Any

import pandas as pd

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.refiner_data import read_pair
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.domain import TrainingDomain

#: one row per image and method (:data:`METHODS`) of :func:`score_pairs`
REFINER_SCORE_COLUMNS = ["image", "method", "dice_cell", "dice_nucleus", "iou_cell", "iou_nucleus",
                         "confidence", "skipped"]
#: the labels scored for every image
METHODS = ("threshold", "unguarded", "refined")


def score_pairs(model: Any, named: Iterable[tuple[str, dict[str, Any]]], *, min_size: int, batch_size: int = 32,
                flips: bool = False, domain: TrainingDomain | None = None) -> pd.DataFrame:
    """Score rows (:data:`REFINER_SCORE_COLUMNS`) of (name, sample with image/expert/threshold/signature) items.

    ``confidence`` is the refiner's (:class:`~leukoscope.segmentation.refine.Refinement`),
    ``skipped`` whether the guard kept the threshold labels: the image is unlike the training
    images of ``domain`` (the refiner's, :func:`~leukoscope.pipeline.refiner_model.trained_domain`;
    ``None`` judges no image so), or :func:`~leukoscope.segmentation.refine.refiner_doubt` objects.
    """
    from leukoscope.segmentation.metrics import label_scores
    from leukoscope.segmentation.refine import refine_cells, refiner_doubt

    rows: list[dict[str, Any]] = []
    items = iter(named)
    while chunk := list(itertools.islice(items, batch_size)):
        refined = refine_cells(model, [s["image"] for _, s in chunk], [s["threshold"] for _, s in chunk],
                               min_size=min_size, batch_size=batch_size, flips=flips,
                               black=[s["background"] == "black" for _, s in chunk])
        for (name, sample), cell in zip(chunk, refined):
            unlike = domain.unlike(sample["signature"]) if domain is not None else ""
            skipped = bool(unlike or refiner_doubt(sample["threshold"], cell.labels, cell.confidence))
            kept = sample["threshold"] if skipped else cell.labels
            for method, predicted in zip(METHODS, (sample["threshold"], cell.labels, kept)):
                rows.append({"image": name, "method": method, **label_scores(predicted, sample["expert"]),
                             "confidence": cell.confidence, "skipped": skipped})
    return pd.DataFrame(rows, columns=REFINER_SCORE_COLUMNS)


def mean_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Mean Dice of each method (``threshold_dice_cell``, ``refined_dice_nucleus``...; 4 decimals),
    and ``skipped``, the number of images whose refined labels the guard replaced."""
    means = {
        f"{method}_{key}": round(float(scores.loc[scores["method"] == method, key].mean()), 4)
        for method in METHODS for key in ("dice_cell", "dice_nucleus")
    }
    return {**means, "skipped": int(scores.loc[scores["method"] == "refined", "skipped"].sum())}


def score_refiner(
    model: Any,
    pairs: pd.DataFrame,
    *,
    segmentation: SegmentationConfig = SegmentationConfig(),
    margin: int | None = None,
    jobs: int = 1,
    quiet: bool = True,
    batch_size: int = 32,
    flips: bool = False,
    domain: TrainingDomain | None = None,
) -> pd.DataFrame:
    """Dice and IoU of the thresholding and of the refined labels on image/expert-mask pairs.

    Parameters
    ----------
    model : keras.Model
        A refiner (:func:`~leukoscope.pipeline.refiner_model.load_refiner`).
    pairs : DataFrame
        ``image``, ``mask`` paths (:func:`~leukoscope.pipeline.refiner_data.find_pairs`).
    segmentation : SegmentationConfig
        The thresholding that is refined.
    margin : int, optional
        Score C-NMC-like cut-outs of the images with this margin instead of the images
        (:func:`~leukoscope.pipeline.refiner_data.read_pair`).
    jobs : int
        Parallel workers for reading and thresholding.
    quiet : bool
        No progress bar.
    batch_size : int
        Images per refiner forward pass (and read at a time).
    flips : bool
        Test-time flips (:func:`~leukoscope.segmentation.refine.refine_cells`).
    domain : TrainingDomain, optional
        The refiner's training images: those unlike them keep the threshold labels.

    Returns
    -------
    DataFrame
        One row per image and method (:data:`METHODS`): :data:`REFINER_SCORE_COLUMNS`.
        Unreadable pairs are left out.
    """
    items = list(zip(pairs["image"], pairs["mask"]))
    reader = functools.partial(read_pair, options=segmentation_options(segmentation), margin=margin)
    read = zip(pairs["image"], parallel_map(reader, items, jobs=jobs, desc="scoring", quiet=quiet))
    return score_pairs(model, ((path, sample) for path, sample in read if not sample["reason"]),
                       min_size=segmentation.min_size, batch_size=batch_size, flips=flips, domain=domain)


__all__ = ["METHODS", "REFINER_SCORE_COLUMNS", "mean_scores", "score_pairs", "score_refiner"]

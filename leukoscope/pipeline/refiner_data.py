"""Image / expert-mask pairs for the refiner: find, read, threshold, encode, split and score them.

Pairs come from one or several ``--data PATH --masks PATH`` sources (ALL-IDB2 colour TIFF masks,
Zheng single-channel PNG masks; matched by file stem by
:func:`leukoscope.pipeline.groundtruth.match_masks`); each source is split into a training and a
validation part that chooses the best epoch, and a test part that training never sees
(:func:`split_pairs`; by subject where the dataset names subjects, else by image). Each image is
also read as a C-NMC-like cut-out (:func:`~leukoscope.segmentation.cutout.expert_cutout`, a
margin of 0 to :data:`MAX_MARGIN` pixels drawn per image) thresholded as it is at inference.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Sequence
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
from leukoscope.segmentation.cutout import expert_cutout
from leukoscope.segmentation.unet_encoding import encode_input, encode_target

#: largest margin (pixels round the expert cell) of a training cut-out
MAX_MARGIN = 20
#: share of the training cut-outs with margin 0
TIGHT_CUTOUTS = 1 / 3
#: the parts of a source (:func:`split_pairs`)
PARTS = ("training", "validation", "test")


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
        Most passes over the training images, unless ``min_steps`` needs more.
    min_steps : int
        Fewest optimiser steps: where ``epochs`` passes make fewer (a small training set), the
        schedule is stretched to make at least this many: more epochs, and the patience
        stretched by the same factor (:meth:`planned_epochs`, :meth:`planned_patience`). With
        70 training images, 20 epochs are 160 steps, and the refiner hardly moved from the
        thresholding (docs/refiner.md).
    patience : int
        Epochs without a lower validation loss before training stops (the learning rate falls
        along a cosine to a sixteenth over ``epochs``).
    batch_size : int
        Images per step.
    learning_rate : float
        Adam step size.
    validation_fraction : float
        Share of each source held out for early stopping (at least one image per source).
    test_fraction : float
        Share of each source held out for the test scores, never used in training (0: none).
    cutouts : float
        Probability that a training image is shown as its C-NMC-like cut-out in an epoch
        (0: smear crops only).
    limit : int
        Use at most this many pairs of each source (0: all); for quick checks.
    seed : int
        Seed of the split, the weights and the augmentation.
    """

    side: int = 128
    depth: int = 4
    width: int = 8
    epochs: int = 20
    min_steps: int = 800
    patience: int = 6
    batch_size: int = 8
    learning_rate: float = 0.002
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    cutouts: float = 0.3
    limit: int = 0
    seed: int = 0


    def planned_epochs(self, training: int) -> int:
        """Most epochs for ``training`` images: ``epochs``, or enough for ``min_steps`` steps of
        ``training // batch_size`` each."""
        steps = max(1, training // self.batch_size)
        return max(self.epochs, -(-self.min_steps // steps))

    def planned_patience(self, training: int) -> int:
        """Early-stopping patience for ``training`` images: ``patience`` stretched as the epochs are
        (:meth:`planned_epochs`), so that a small set waits as many steps as one of
        ``min_steps / epochs * batch_size`` images would."""
        return -(-self.patience * self.planned_epochs(training) // self.epochs)


@dataclass(frozen=True)
class _Pair:
    source: int
    image: str
    mask: str
    part: str


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
        ``image, mask`` absolute paths and ``subject`` (``""`` when unknown), sorted by image path.
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
    for image, subject, match in zip(samples["path"], samples["subject"], matches):
        if image in mask_files and not _reads_as_rgb(image):
            continue
        if match.problem:
            reason = f"no expert mask with its file stem in '{masks}'" if match.problem == "missing" else match.problem
            rejected.append({"path": image, "stage": "train-refiner", "reason": reason})
        else:
            rows.append({"image": image, "mask": match.path, "subject": str(subject or "")})
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


def split_pairs(pairs: pd.DataFrame, *, settings: TrainingSettings) -> pd.Series:
    """The part of every pair of one source: ``training``, ``validation`` or ``test``.

    Pairs of one subject stay together (an image is its own group when the subject is unknown).
    The groups are shuffled with a generator seeded by ``settings.seed`` and the group names,
    so a source's split is the same whichever sources it is trained with; ``settings.limit``
    keeps the first ``limit`` groups of that order. The test part takes ``test_fraction`` of
    the groups, the validation part ``validation_fraction`` (at least one group each when the
    fraction is above 0, and at least one group is left for training).

    Parameters
    ----------
    pairs : DataFrame
        :func:`find_pairs` rows (``image``, ``subject``).
    settings : TrainingSettings

    Returns
    -------
    Series of str
        Aligned with ``pairs``; ``""`` for pairs beyond ``limit``.
    """
    groups = [subject or image for image, subject in zip(pairs["image"], pairs["subject"])]
    names = sorted(set(groups))
    key = zlib.crc32("\n".join(Path(name).name for name in names).encode())
    order = [names[i] for i in np.random.default_rng([settings.seed, key]).permutation(len(names))]
    if settings.limit:
        order = order[: settings.limit]
    sizes: list[int] = []
    for fraction in (settings.test_fraction, settings.validation_fraction):
        size = max(1, round(fraction * len(order))) if fraction > 0 else 0
        sizes.append(max(0, min(size, len(order) - 1 - sum(sizes))))
    part = {name: "test" for name in order[: sizes[0]]}
    part.update({name: "validation" for name in order[sizes[0] : sizes[0] + sizes[1]]})
    part.update({name: "training" for name in order[sizes[0] + sizes[1] :]})
    return pd.Series([part.get(group, "") for group in groups], index=pairs.index, dtype=str)


def cutout_margin(image: str, *, seed: int) -> int:
    """The margin of an image's training cut-out, fixed by its file name and the seed.

    0 (the cell exactly, as a tight segmentation cuts it) with probability
    :data:`TIGHT_CUTOUTS`, else 1 to :data:`MAX_MARGIN` pixels, each as likely: a refiner shown
    only the uniform 0-20 learnt to shave a ring off every cut-out, also off the tight ones
    that have none (``bench/refiner.py``, docs/refiner.md).
    """
    rng = np.random.default_rng([seed, zlib.crc32(Path(image).name.encode())])
    return 0 if rng.random() < TIGHT_CUTOUTS else int(rng.integers(1, MAX_MARGIN + 1))


def read_pair(paths: tuple[str, str], *, options: dict[str, Any], margin: int | None = None) -> dict[str, Any]:
    """Image, expert labels, threshold labels, surround and colour signature
    (:func:`~leukoscope.segmentation.domain.image_signature`, ``None`` without a threshold
    nucleus) of one (image, mask) pair, or why it is unusable.

    With ``margin`` the image is first cut out on black along the expert cell dilated by
    ``margin`` pixels (:func:`~leukoscope.segmentation.cutout.expert_cutout`) and the cut-out is
    thresholded, as a C-NMC cell is at inference.
    """
    from leukoscope.segmentation.cell import segment_cell
    from leukoscope.segmentation.domain import image_signature

    image_path, mask_path = paths
    try:
        image = read_image(image_path)
        expert = read_expert_mask(mask_path, image_shape=image.shape)
    except (ImageReadError, ExpertMaskError) as exc:
        return {"reason": str(exc)}
    if margin is not None:
        image = expert_cutout(image, expert, margin=margin)
    result = segment_cell(image, **options)
    return {"reason": "", "image": image, "expert": expert, "threshold": result.labels,
            "background": result.background.value, "signature": image_signature(image, result.labels)}


def _load_pair(pair: _Pair, *, side: int, options: dict[str, Any], cutouts: bool, seed: int) -> dict[str, Any]:
    """Encoded input and target of one pair and of its cut-out (``cutout``), with the full-size
    arrays (``image``, ``expert``, ``threshold``) outside the training part, or a ``reason``."""
    margins = [None, cutout_margin(pair.image, seed=seed)] if cutouts else [None]
    views = []
    for margin in margins:
        view = read_pair((pair.image, pair.mask), options=options, margin=margin)
        if view["reason"]:
            return {"pair": pair, "reason": view["reason"]}
        view["input"], window = encode_input(view["image"], view["threshold"], side=side)
        view["target"] = encode_target(view["expert"], window, side=side)
        if pair.part == "training":
            for key in ("image", "expert", "threshold"):
                del view[key]
        views.append(view)
    return {"pair": pair, **views[0], "cutout": views[1] if cutouts else None}


def load_training_data(
    sources: Sequence[tuple[str | Path, str | Path]],
    *,
    settings: TrainingSettings,
    segmentation: SegmentationConfig,
    jobs: int = 1,
    quiet: bool = False,
    memo: dict | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, str]], list[dict[str, Any]]]:
    """Read, threshold and encode every pair (and its cut-out); split each source in three parts.

    Parameters
    ----------
    sources : sequence of (data, masks)
    settings : TrainingSettings
    segmentation : SegmentationConfig
        The thresholding that is refined.
    jobs : int
        Parallel workers.
    quiet : bool
        No progress bar.
    memo : dict, optional
        Pairs already read with the same settings (a benchmark training several models fills
        and reuses it).

    Returns
    -------
    parts : dict of list of dict
        ``training``, ``validation``, ``test`` samples: ``pair``, ``input`` (side, side, 5),
        ``target`` (side, side), ``background``, ``signature``, ``cutout`` (the same keys for its cut-out, or
        None when ``settings.cutouts`` is 0); outside the training part also the full-size
        ``image``, ``expert`` and ``threshold`` labels.
    rejected : list of dict
        ``path, stage, reason`` rows.
    described : list of dict
        One per source: ``data``, ``masks``, ``pairs``, the count of each part, ``sha256``
        (digest of the sorted image and mask file hashes) and ``test_sha256`` (of the test part's).

    Raises
    ------
    RefinerTrainingError
        Fewer training pairs than one batch, or no validation pair.
    """
    rejected: list[dict[str, str]] = []
    pairs = []
    for index, (data, masks) in enumerate(sources):
        table, lost = find_pairs(data, masks)
        rejected += lost
        for image, mask, part in zip(table["image"], table["mask"], split_pairs(table, settings=settings)):
            if part:
                pairs.append(_Pair(index, image, mask, part))
    options = segmentation_options(segmentation)
    memo = {} if memo is None else memo
    keys = {pair: (pair.image, pair.mask, pair.part, settings.side, settings.cutouts > 0, settings.seed,
                   repr(sorted(options.items()))) for pair in pairs}
    loader = functools.partial(_load_pair, side=settings.side, options=options, cutouts=settings.cutouts > 0,
                               seed=settings.seed)
    todo = [pair for pair in pairs if keys[pair] not in memo]
    for pair, sample in zip(todo, parallel_map(loader, todo, jobs=jobs, desc="reading pairs", quiet=quiet)):
        memo[keys[pair]] = sample
    samples = [{**memo[keys[pair]], "pair": pair} for pair in pairs]
    rejected += [{"path": s["pair"].image, "stage": "train-refiner", "reason": s["reason"]} for s in samples if s["reason"]]
    usable = [s for s in samples if not s["reason"]]
    described = []
    for index, (data, masks) in enumerate(sources):
        mine = sorted((s for s in usable if s["pair"].source == index), key=lambda s: s["pair"].image)
        described.append({"data": str(data), "masks": str(masks), "pairs": len(mine),
                          **{part: sum(s["pair"].part == part for s in mine) for part in PARTS},
                          "sha256": _digest(mine),
                          "test_sha256": _digest([s for s in mine if s["pair"].part == "test"])})
    parts = {part: [s for s in usable if s["pair"].part == part] for part in PARTS}
    if len(parts["training"]) < settings.batch_size or not parts["validation"]:
        raise RefinerTrainingError(
            f"only {len(parts['training'])} training and {len(parts['validation'])} validation pairs could be "
            f"read ({len(rejected)} rejected); training needs at least one batch ({settings.batch_size}) and one "
            "validation image: add data, lower --batch-size, --validation-fraction or --test-fraction"
        )
    return parts, rejected, described


def _digest(samples: Sequence[dict[str, Any]]) -> str:
    """SHA-256 of the sorted pairs' image and mask file hashes."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(f"{sha256_file(s['pair'].image)} {sha256_file(s['pair'].mask)}\n".encode())
    return digest.hexdigest()


__all__ = [
    "MAX_MARGIN", "PARTS", "TIGHT_CUTOUTS", "RefinerTrainingError", "TrainingSettings", "cutout_margin", "find_pairs",
    "load_training_data", "read_pair", "split_pairs",
]

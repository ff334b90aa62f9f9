"""``leukoscope train-refiner``: train the refiner U-Net on expert masks and write it with its record.

Reads image/expert-mask pairs (:mod:`leukoscope.pipeline.refiner_data`), thresholds every image
and its C-NMC-like cut-out with the configured segmentation, splits each source into training,
validation (early stopping) and test parts, trains
:func:`leukoscope.segmentation.unet.build_unet` (:func:`leukoscope.segmentation.unet_training.fit_unet`),
and writes next to ``MODEL.keras``::

    MODEL.keras                 the model (loaded with Keras safe mode)
    MODEL.json                  command, data (file counts and digests, test images), seed, settings,
                                segmentation settings, versions, test-part Dice, timings, the
                                surrounds and colour/size signatures of the training images
                                (``backgrounds``, ``domain``: what the segment stage's guard compares with)
    MODEL.log.csv               one row per epoch: loss, val_loss, validation Dice at the model side
    MODEL.learning_curve.png    the log as a figure
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.pipeline.atomic import save_keras, write_csv, write_json, write_png
from leukoscope.pipeline.config import SegmentationConfig, load_config
from leukoscope.pipeline.console import import_keras
from leukoscope.pipeline.figures import learning_curve
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.refiner_data import RefinerTrainingError, TrainingSettings, load_training_data
from leukoscope.pipeline.refiner_model import sidecar
from leukoscope.pipeline.refiner_scores import mean_scores, score_pairs
from leukoscope.pipeline.rundir import package_versions
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.domain import TrainingDomain

log = logging.getLogger(__name__)


def training_domain(training: Sequence[dict[str, Any]]) -> TrainingDomain:
    """The :class:`~leukoscope.segmentation.domain.TrainingDomain` of the training part's samples
    (:func:`~leukoscope.pipeline.refiner_data.load_training_data`): the signature of every image
    and of its cut-out, those without a threshold nucleus left out.

    Raises
    ------
    RefinerTrainingError
        Too few of them have a signature.
    """
    views = [v for s in training for v in (s, s["cutout"]) if v and v.get("signature") is not None]
    try:
        return TrainingDomain.fit(np.stack([v["signature"] for v in views]) if views else np.empty((0, 7)))
    except ValueError as exc:
        raise RefinerTrainingError(f"{exc}: the thresholding found a nucleus in too few training images") from None


def train_refiner(
    sources: Sequence[tuple[str | Path, str | Path]],
    out: str | Path,
    *,
    settings: TrainingSettings = TrainingSettings(),
    segmentation: SegmentationConfig = SegmentationConfig(),
    command: str = "",
    jobs: int = 1,
    quiet: bool = False,
    memo: dict | None = None,
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
    memo : dict, optional
        Pairs read by an earlier call with the same settings (see
        :func:`~leukoscope.pipeline.refiner_data.load_training_data`).

    Returns
    -------
    dict
        The record written to ``MODEL.json``.

    Raises
    ------
    RefinerTrainingError
        ``out`` does not end in ``.keras``, or there is too little usable data.
    """
    keras = import_keras()

    from leukoscope.segmentation.unet import build_unet
    from leukoscope.segmentation.unet_training import fit_unet

    out = Path(out)
    if out.suffix != ".keras":
        raise RefinerTrainingError(f"--out '{out}' must end in .keras (Keras' model file format)")
    started, cpu_started = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(settings.seed)
    try:
        model = build_unet(side=settings.side, depth=settings.depth, width=settings.width, seed=settings.seed)
    except ValueError as exc:  # --side, --depth or --width the U-Net cannot have
        raise RefinerTrainingError(str(exc)) from None
    parts, rejected, described = load_training_data(
        sources, settings=settings, segmentation=segmentation, jobs=jobs, quiet=quiet, memo=memo)
    for row in rejected:
        log.warning("skipped %s: %s", row["path"], row["reason"])
    training, validation = parts["training"], parts["validation"]
    views = [validation, [s["cutout"] for s in validation if s["cutout"]]]
    alternatives = None
    if settings.cutouts > 0:
        alternatives = (np.stack([s["cutout"]["input"] for s in training]),
                        np.stack([s["cutout"]["target"] for s in training]))
    history, best_epoch = fit_unet(
        model, np.stack([s["input"] for s in training]), np.stack([s["target"] for s in training]),
        np.stack([v["input"] for part in views for v in part]), np.stack([v["target"] for part in views for v in part]),
        epochs=settings.planned_epochs(len(training)), patience=settings.planned_patience(len(training)),
        batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=settings.seed,
        alternatives=alternatives, share=settings.cutouts, quiet=quiet)
    save_keras(keras.Model(model.inputs, model.outputs, name=model.name), out)  # without the optimizer state
    write_csv(history, sidecar(out, ".log.csv"))
    names = " + ".join("/".join(Path(d).parts[-2:]) for d, _ in sources)
    curve = learning_curve(history, title=f"refiner U-Net trained on {names}", ylabel="cross-entropy + Dice loss",
                           secondary=[("val_dice_cell", "validation Dice, cell", "tab:green"),
                                      ("val_dice_nucleus", "validation Dice, nucleus", "tab:red")],
                           secondary_label="Dice (model side)")
    write_png(curve, sidecar(out, ".learning_curve.png"))
    domain = training_domain(training)
    for index, source in enumerate(described):  # the Dice of the test part, which training never saw
        test = [s for s in parts["test"] if s["pair"].source == index]
        source["test_images"] = sorted(Path(s["pair"].image).name for s in test)
        scored = {"test_scores": [(s["pair"].image, s) for s in test],
                  "test_cutout_scores": [(s["pair"].image, s["cutout"]) for s in test if s["cutout"]]}
        for key, named in scored.items():
            if named:
                source[key] = mean_scores(score_pairs(model, named, min_size=segmentation.min_size, domain=domain))
    backgrounds = {v["background"] for s in training for v in (s, s["cutout"]) if v}
    record = {
        "command": command,
        "data": described,
        "rejected": rejected,
        "seed": settings.seed,
        "backgrounds": sorted(backgrounds),
        "domain": domain.to_dict(),
        "settings": dataclasses.asdict(settings),
        "segmentation": {k: getattr(v, "value", v) for k, v in segmentation_options(segmentation).items()},
        "epochs_planned": settings.planned_epochs(len(training)),
        "patience_planned": settings.planned_patience(len(training)),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
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



__all__ = ["run_from_args", "train_refiner", "training_domain"]

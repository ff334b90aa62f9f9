"""The ``heads`` stage: sigmoid heads trained on frozen backbones (the paper's fine-tuning).

``run_heads(config, run, samples)`` trains, for each backbone in ``config.heads.backbones``,
the head of :mod:`leukoscope.classifiers.heads` on every training part of the evaluation
protocol (``compare.protocol``, ``compare.folds``, ``run.seed``: the same splits as the
classical models), with EarlyStopping on a subject-disjoint validation part carved from the
training part (never from the test part), predicts the test part, and writes::

    RUN/heads/<backbone>/model.keras          the full image -> P(ALL) model (safe_mode loadable)
    RUN/heads/<backbone>/head.json            input size, preprocessing, weights, classes, recipe
    RUN/heads/<backbone>/history.csv          fold, phase, epoch, loss, accuracy, val_loss, val_accuracy
    RUN/heads/<backbone>/learning_curve.png
    RUN/heads/predictions.csv                 the predictions format plus ``weights`` and both sigmoid
                                              outputs ``out_hem``, ``out_all`` (the paper's Keras
                                              metrics count them; y_score = P(ALL) made from them)

The frozen backbone's max-pooled features of every image and of its mirror image are computed
once (cached like the embeddings) and the head is trained on them, which is the paper's training
(frozen backbone in inference mode, random horizontal flips) without running the backbone in
every epoch. With ``heads.unfreeze_top > 0`` a second phase fine-tunes the top layers of the
backbone end to end on images streamed from disk. ``model.keras`` is the model of the single
split (official protocol) or, under cross-validation, a final model trained the same way on all
labelled samples; the per-fold models give the predictions and are not kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.heads import (
    CLASSES,
    balanced_sample_weights,
    build_head,
    compile_head,
    copy_head,
    fit_head,
    fit_pooled_head,
    head_scores,
    mirror_pairs,
    one_hot,
    predict_outputs,
    unfreeze_top,
)
from leukoscope.classifiers.metrics import predict_labels
from leukoscope.classifiers.splits import encode_labels, iter_splits, resolve_protocol, with_subject_strings
from leukoscope.pipeline.atomic import save_keras, write_csv, write_json, write_png
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.console import import_keras
from leukoscope.pipeline.embedding_stream import (
    EmbeddingJob,
    NetworkCache,
    build_network,
    check_backbones,
    embedding_job,
    iter_pooled,
    set_keras_threads,
)
from leukoscope.pipeline.figures import learning_curve
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import (
    HEAD_OUTPUT_COLUMNS,
    PREDICTION_COLUMNS,
    WEIGHTS_COLUMN,
    RunLayout,
    Stage,
    head_name,
)
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec

log = logging.getLogger(__name__)

HEAD_MODEL = "sigmoid_head"
#: heads/predictions.csv: the predictions format, the weights, and both sigmoid outputs (NaN in rows of
#: heads trained before they were kept)
PREDICTION_FILE_COLUMNS = [*PREDICTION_COLUMNS, WEIGHTS_COLUMN, *HEAD_OUTPUT_COLUMNS]
HISTORY_COLUMNS = ["fold", "phase", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
FINAL_FOLD = "final"
TRAINING_LOSS_NOTE = ("Training loss is measured with dropout on and on flipped images, validation loss without "
                      "either, so training can sit above validation without anything being wrong.")


@dataclasses.dataclass(frozen=True)
class TrainingPart:
    """Row positions (into the samples table) of one head's fitting and validation parts."""

    fit: np.ndarray
    validation: np.ndarray


def carve_validation(samples: pd.DataFrame, train: np.ndarray, *, fraction: float, seed: int) -> TrainingPart:
    """Split a training part into a fitting part and a validation part, by subject when known.

    The validation part is one fold of a ``k``-fold split of the training part with
    ``k = round(1 / fraction)``, lowered to the number of subjects (or images) of the rarer class;
    :func:`~leukoscope.classifiers.splits.iter_splits` makes it, so the validation part never
    shares a subject with the fitting part.

    Parameters
    ----------
    samples : DataFrame
        The samples table.
    train : (n,) int ndarray
        Row positions of the training part.
    fraction : float
        Wanted share of the validation part (``heads.validation_fraction``).
    seed : int

    Returns
    -------
    TrainingPart
        Row positions into ``samples``.

    Raises
    ------
    EvaluationError
        The training part has fewer than 2 subjects (or images) of some class.
    """
    table = samples.iloc[train].assign(split="").reset_index(drop=True)
    protocol = resolve_protocol(table, Protocol.AUTO)
    if protocol is Protocol.GROUP_CV:
        units = int(table.groupby("label")["subject"].nunique().min())
    else:
        units = int(table["label"].value_counts().min())
    folds = min(max(2, round(1.0 / fraction)), units)
    if folds < 2:
        raise EvaluationError(
            f"the training part has only {units} subject(s) or image(s) of one class; the heads' "
            "validation part needs at least 2 per class: add data or lower compare.folds"
        )
    part = next(iter_splits(table, protocol=protocol, folds=folds, seed=seed))
    return TrainingPart(fit=train[part.train], validation=train[part.test])


def _collect(job: EmbeddingJob, run: RunDir, samples: pd.DataFrame, *, quiet: bool,
             networks: NetworkCache) -> dict[int, np.ndarray]:
    """Max-pooled features of every usable sample, by row position."""
    features: dict[int, np.ndarray] = {}
    for positions, pooled in iter_pooled(job, run, samples, quiet=quiet, networks=networks):
        features.update(zip(positions.tolist(), pooled["max"]))
    return features


@contextlib.contextmanager
def _dtype_policy(mixed_precision: bool) -> Iterator[None]:
    """Build and train under ``mixed_float16`` when asked (GPUs), restoring the policy after."""
    keras = import_keras()
    before = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


class _HeadTrainer:
    """Trains one backbone's heads on the pooled features and, optionally, fine-tunes end to end."""

    def __init__(self, config: Config, run: RunDir, samples: pd.DataFrame, job: EmbeddingJob,
                 pooled: np.ndarray, mirrored: np.ndarray, networks: NetworkCache) -> None:
        self.samples, self.job, self.networks = samples, job, networks
        self.heads = config.heads
        self.pooled, self.mirrored = pooled, mirrored
        self.y = encode_labels(samples["label"])
        self.layout = RunLayout(run.path)

    def _images(self, rows: np.ndarray, *, training: bool = False, seed: int = 0) -> Any:
        from leukoscope.pipeline.image_batches import ImageBatches  # imports Keras

        sample_ids = self.samples["sample_id"].to_numpy()[rows]
        weights = balanced_sample_weights(self.y[rows]) if training and self.heads.class_weight else None
        return ImageBatches(
            self.samples["path"].to_numpy()[rows], size=self.job.size, preprocess=self.job.spec.preprocess,
            mask_paths=[str(self.layout.mask_path(s)) for s in sample_ids] if self.job.mask_background else None,
            targets=one_hot(self.y[rows]), sample_weight=weights,
            batch_size=self.heads.batch_size, shuffle=training, seed=seed,
        )

    def full_model(self, pooled_head: Any) -> Any:
        """The image -> P(ALL) model holding ``pooled_head``'s trained output layer, compiled."""
        model = build_head(self.networks.backbone(self.job), dropout=self.heads.dropout, seed=self.job.seed)
        copy_head(pooled_head, model)
        return compile_head(model, learning_rate=self.heads.learning_rate)

    def train(self, part: TrainingPart, seed: int) -> tuple[Any, pd.DataFrame, bool]:
        """Train on ``part``; return the model to predict with, its history, and whether it is the full model."""
        heads = self.heads
        head, history = fit_pooled_head(
            self.pooled[part.fit], self.mirrored[part.fit], self.y[part.fit],
            (self.pooled[part.validation], self.y[part.validation]),
            dropout=heads.dropout, learning_rate=heads.learning_rate, batch_size=heads.batch_size,
            epochs=heads.epochs, patience=heads.patience, restore_best_weights=heads.restore_best_weights,
            class_weight=heads.class_weight, seed=seed,
        )
        history.insert(0, "phase", "head")
        if heads.unfreeze_top == 0:
            return head, history, False
        model = build_head(build_network(self.job), dropout=heads.dropout, seed=seed)
        copy_head(head, model)
        unfreeze_top(model, heads.unfreeze_top)
        compile_head(model, learning_rate=heads.fine_tune_learning_rate)
        tuned = fit_head(model, self._images(part.fit, training=True, seed=seed), None,
                         self._images(part.validation), epochs=heads.fine_tune_epochs,
                         patience=heads.patience, restore_best_weights=heads.restore_best_weights)
        tuned.insert(0, "phase", "fine_tune")
        return model, pd.concat([history, tuned], ignore_index=True), True

    def outputs(self, model: Any, is_full: bool, rows: np.ndarray) -> np.ndarray:
        """(N, 2) sigmoid outputs (HEM, ALL) of the samples at ``rows``."""
        if is_full:
            return predict_outputs(model, self._images(rows))
        return predict_outputs(model, mirror_pairs(self.pooled[rows]), batch_size=self.heads.batch_size)


def _usable(split_rows: np.ndarray, usable: np.ndarray) -> np.ndarray:
    return split_rows[usable[split_rows]]


def train_backbone(config: Config, run: RunDir, samples: pd.DataFrame, backbone: str,
                   splits: list[Any], protocol: Protocol) -> pd.DataFrame:
    """Train, save and evaluate one backbone's heads; return its prediction rows."""
    heads = config.heads
    job = embedding_job(config, backbone, size=heads.input_size, mask_background=heads.mask_background)
    name = job.spec.name.value
    run.update_info(weights={name: job.weights.info()})
    networks = NetworkCache()
    features = _collect(job, run, samples, quiet=config.run.quiet, networks=networks)
    mirrored = _collect(dataclasses.replace(job, mirror=True), run, samples, quiet=config.run.quiet,
                        networks=networks)
    width = job.spec.embedding_size
    pooled_all = np.zeros((len(samples), width), dtype=np.float32)
    mirrored_all = np.zeros_like(pooled_all)
    usable = np.zeros(len(samples), dtype=bool)
    for position, vector in features.items():
        if position in mirrored:
            pooled_all[position], mirrored_all[position], usable[position] = vector, mirrored[position], True
    trainer = _HeadTrainer(config, run, samples, job, pooled_all, mirrored_all, networks)

    rows, histories = [], []
    for index, split in enumerate(splits):
        train, test = _usable(split.train, usable), _usable(split.test, usable)
        seed = config.run.seed + index
        model, history, is_full = trainer.train(
            carve_validation(samples, train, fraction=heads.validation_fraction, seed=seed), seed)
        histories.append(history.assign(fold=split.fold))
        outputs = trainer.outputs(model, is_full, test)
        score = head_scores(outputs)
        rows.append(pd.DataFrame({
            "sample_id": samples["sample_id"].to_numpy()[test], "subject": samples["subject"].to_numpy()[test],
            "protocol": protocol.value, "fold": split.fold, "model": HEAD_MODEL, "feature_set": head_name(name),
            "y_true": trainer.y[test], "y_score": score, "y_pred": predict_labels(score),
            WEIGHTS_COLUMN: job.weights.label, **dict(zip(HEAD_OUTPUT_COLUMNS, outputs.T)),
        }))
    if len(splits) > 1:  # cross-validation: the saved model is trained on every labelled sample
        labelled = np.flatnonzero((trainer.y >= 0) & usable)
        model, history, is_full = trainer.train(
            carve_validation(samples, labelled, fraction=heads.validation_fraction, seed=config.run.seed),
            config.run.seed)
        histories.append(history.assign(fold=FINAL_FOLD))
    _save(run, job, model if is_full else trainer.full_model(model), pd.concat(histories, ignore_index=True),
          config)
    return pd.concat(rows, ignore_index=True)


def _save(run: RunDir, job: EmbeddingJob, model: Any, history: pd.DataFrame, config: Config) -> None:
    name = job.spec.name.value
    folder = run.head_dir(name)
    save_keras(model, folder / "model.keras")
    history = history[HISTORY_COLUMNS]
    write_csv(history, folder / "history.csv")
    write_png(learning_curve(history, title=f"{name} sigmoid head on the frozen backbone ({job.weights.label} weights)",
                             ylabel="binary cross-entropy", groups=("fold", "phase"), note=TRAINING_LOSS_NOTE),
              folder / "learning_curve.png")
    write_json({
        "backbone": name, "input_size": job.size, "weights": job.weights.info(),
        "preprocess": f"keras.applications.{job.spec.module}.preprocess_input",
        "mask_background": job.mask_background, "classes": list(CLASSES),
        "score": "P(ALL) = s_ALL / (s_ALL + s_HEM) of the two sigmoid outputs",
        "recipe": {k: v for k, v in config.to_dict()["heads"].items() if k != "backbones"},
    }, folder / "head.json")


def run_heads(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """The ``heads`` stage (see the module docstring), on the samples no earlier stage rejected.

    Parameters
    ----------
    config : Config
        ``heads`` (backbones and recipe), ``features.weights``, ``features.batch_size`` and
        ``features.threads``, ``compare.protocol`` and ``compare.folds``, ``run.seed`` and
        ``run.quiet``.
    run : RunDir
    samples : DataFrame
        The samples table (``sample_id, path, label, subject, split, sha256``).

    Raises
    ------
    EvaluationError
        The data cannot be split as asked (one class, too few subjects, leakage).
    WeightsUnavailableError
        ImageNet weights were asked for and cannot be had.
    """
    if not config.heads.backbones:
        return
    set_keras_threads(config.features.threads)
    samples = run.kept(samples)
    samples = with_subject_strings(samples).reset_index(drop=True)
    protocol = resolve_protocol(samples, config.compare.protocol)
    splits = list(iter_splits(samples, protocol=protocol, folds=config.compare.folds, seed=config.run.seed,
                              block_size=config.compare.block_size))
    run.stage_dir(Stage.HEADS)
    target = run.head_predictions
    frames = []
    if target.exists():
        previous = pd.read_csv(target, dtype=str, keep_default_na=False)
        wanted = {head_name(b.value) for b in config.heads.backbones}
        frames.append(previous[~previous["feature_set"].isin(wanted)])
    for backbone in config.heads.backbones:
        with _dtype_policy(config.heads.mixed_precision):
            frames.append(train_backbone(config, run, samples, backbone.value, splits, protocol))
        log.info("%s trained on %d split(s); predictions in %s", head_name(backbone.value), len(splits), target)
    write_csv(pd.concat(frames, ignore_index=True).reindex(columns=PREDICTION_FILE_COLUMNS), target)
    run.update_info(heads={"protocol": protocol.value, "splits": [s.fold for s in splits],
                           "backbones": [b.value for b in config.heads.backbones]})


def missing_heads(config: Config, layout: RunLayout) -> list[str]:
    """The configured heads (``head_<backbone>``) without predictions in ``RUN/heads/predictions.csv``."""
    wanted = [head_name(b.value) for b in config.heads.backbones]
    path = layout.head_predictions
    if not wanted or not path.exists():
        return wanted
    have = set(pd.read_csv(path, dtype=str, usecols=lambda c: c == "feature_set").get("feature_set", []))
    return [name for name in wanted if name not in have]


def _check(config: Config, samples: pd.DataFrame) -> None:
    check_backbones(config.heads.backbones, weights=config.features.weights)
    resolve_protocol(with_subject_strings(samples), config.compare.protocol)


STAGE = StageSpec(
    name=Stage.HEADS,
    run=run_heads,
    needs=lambda config: (Stage.SEGMENTATION,) if config.heads.mask_background else (),
    active=lambda config: bool(config.heads.backbones),
    done=lambda config, layout: not missing_heads(config, layout),
    settings=settings_of("heads", "features", "compare.protocol", "compare.folds", "compare.block_size", "run.seed"),
    check=_check,
)

__all__ = ["STAGE", "TrainingPart", "carve_validation", "missing_heads", "run_heads",
           "train_backbone"]

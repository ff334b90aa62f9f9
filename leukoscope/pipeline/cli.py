"""The ``leukoscope`` command line: demo-data, fields, segment, features, compare, train, predict.

Every analysis subcommand reads ``--config FILE.toml`` and lets flags override it (``predict``
takes its settings from ``--model``'s card instead), loads the dataset, writes ``manifest.csv``,
``rejected.csv`` and ``run.json`` in the run directory, then runs its stage (and the stages it
needs that the run directory lacks). A dataset of whole smear fields is first cut into single
cells (:mod:`leukoscope.pipeline.fields_run`), which become the samples; ``fields`` runs that
step alone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from leukoscope import __version__
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.pipeline.atomic import remove_leftovers
from leukoscope.pipeline.choices import FIELD_KINDS, Backend
from leukoscope.pipeline.claim import claim_run, environment_error
from leukoscope.pipeline.config import Config, ConfigError, config_names, config_text, load_config
from leukoscope.pipeline.console import new_command
from leukoscope.pipeline.dask_cluster import DaskSchedulerError, check_cluster
from leukoscope.pipeline.datasets import DatasetError, load_dataset
from leukoscope.pipeline.fields_run import cut_out_fields, load_fields, resolve_field_dataset
from leukoscope.pipeline.graph import COMMANDS, run_targets
from leukoscope.pipeline.groundtruth import ExpertMaskError
from leukoscope.pipeline.inputs import hash_input, warn_about_copies
from leukoscope.pipeline.layout import Stage
from leukoscope.pipeline.model_card import prediction_config
from leukoscope.pipeline.model_folder import ModelFolderError, open_model_folder
from leukoscope.pipeline.parallel import capped_jobs, parallel_map
from leukoscope.pipeline.refiner_data import RefinerTrainingError
from leukoscope.pipeline.refiner_model import RefinerModelError
from leukoscope.pipeline.rundir import RunDir, RunDirError
from leukoscope.pipeline.train_refiner import add_parser as add_train_refiner_parser
from leukoscope.pipeline.train_refiner import run_from_args as train_refiner_from_args
from leukoscope.pipeline.weights import WeightsUnavailableError

log = logging.getLogger("leukoscope")

#: errors a user can fix (config, dataset, inputs, settings the data cannot satisfy): one line, exit 2;
#: anything else is a bug and keeps its traceback
USER_ERRORS = (ConfigError, DaskSchedulerError, DatasetError, EvaluationError, ExpertMaskError, ModelFolderError,
               RefinerModelError, RefinerTrainingError, RunDirError, WeightsUnavailableError)
#: command-line flag (argparse dest) -> config key it overrides
OVERRIDES = {
    "data": "data.path",
    "dataset": "data.dataset",
    "masks": "data.masks",
    "out": "run.out",
    "jobs": "run.jobs",
    "backend": "run.backend",
    "scheduler": "run.scheduler",
    "seed": "run.seed",
    "quiet": "run.quiet",
    "backbones": "features.backbones",
    "weights": "features.weights",
    "refiner": "segmentation.refiner",
    "refiner_model": "segmentation.refiner_model",
    "protocol": "compare.protocol",
    "folds": "compare.folds",
    "models": "compare.models",
    "feature_sets": "compare.feature_sets",
    "hybrid_pca": "compare.hybrid_pca",
    "bootstrap": "compare.bootstrap",
    "heads": "heads.backbones",
    "red_cell_diameter": "fields.red_cell_diameter",
    "boxes": "fields.boxes",
    "format": "features.format",
}
#: the keys ``predict`` takes from the command line (the rest comes from the model card)
PREDICT_OVERRIDES = ("data", "dataset", "out", "jobs", "backend", "scheduler", "quiet", "bootstrap", "refiner_model")


def _add_io_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Where the data are, where the run goes, and how the work is run (every analysis command)."""
    parser.add_argument("--data", required=required,
                        help="dataset folder, or a manifest CSV (path,label[,subject][,split])")
    parser.add_argument("--dataset", help="layout of --data: auto, cnmc, allidb2, folder, manifest; whole "
                                          "fields: allidb1, voc, fields")
    parser.add_argument("--out", required=required, help="run directory (default from the config: runs/demo)")
    parser.add_argument("--jobs", type=int, help="parallel workers (at most the cores available; -1: all cores)")
    parser.add_argument("--backend", help="joblib backend: loky, threading, dask")
    parser.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786 (implies --backend dask)")
    parser.add_argument("--quiet", action="store_true", default=None, help="warnings and errors only: no progress, no notes")
    parser.add_argument("--force", action="store_true",
                        help="reuse a run directory made from another dataset: delete its earlier results (caches are kept)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a shipped config's name (demo, cnmc, allidb2) or a .toml file")
    _add_io_options(parser)
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--masks", help="folder of expert masks to score the segmentation against")
    parser.add_argument("--refiner", help="mask refiner: none, unet")
    parser.add_argument("--refiner-model", dest="refiner_model", help="refiner .keras model file")
    parser.add_argument("--backbones", help="comma-separated CNN backbones, 'all' or 'none'")
    parser.add_argument("--weights", help="CNN weights: auto, imagenet, random, or a folder of .h5 files")
    parser.add_argument("--red-cell-diameter", dest="red_cell_diameter", type=float,
                        help="whole fields: the red cells' diameter in pixels (BCCD 100, ALL-IDB1 60)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leukoscope",
        description="Tell ALL blasts from normal white blood cells in microscope images.",
    )
    parser.add_argument("--version", action="version", version=f"leukoscope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo-data", help="write the synthetic demo dataset (C-NMC layout)")
    demo.add_argument("out_dir", type=Path, help="destination folder")
    demo.add_argument("--subjects", type=int, default=12, help="number of subjects (even, >= 4)")
    demo.add_argument("--cells", type=int, default=240, help="number of cells")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--jobs", type=int, default=1, help="parallel workers")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    helps = {
        "fields": "find the white cells of whole smear fields and cut each out as a C-NMC-style cell",
        "segment": "segment every cell (whole cell, nucleus, cytoplasm) with overlays",
        "features": "handcrafted features, their statistics per subject and per feature, and frozen-CNN "
                    "embeddings as CSV (and Parquet)",
        "compare": "classifiers on every feature set, evaluated without patient leakage, with a report",
    }
    helps["train"] = ("fit the chosen models on the labelled training data and write a model folder each "
                      "(RUN/models/<name>), after compare when its results are missing")
    for name, text in helps.items():
        _add_run_options(sub.add_parser(name, help=text, description=text))
    sub.choices["fields"].add_argument("--boxes", action="store_true", default=None,
                                       help="score the detection against the annotated boxes (voc)")
    for name in ("features", "compare"):
        sub.choices[name].add_argument(
            "--format", help="features tables: csv, or parquet for a typed Parquet copy beside every CSV")
    for name in ("compare", "train"):
        command = sub.choices[name]
        command.add_argument("--protocol", help="evaluation: auto, official, group-cv, stratified-cv, blocked-cv")
        command.add_argument("--folds", type=int, help="outer cross-validation folds")
        command.add_argument("--models", help="comma-separated: svm, logreg, rf, knn, xgboost")
        command.add_argument("--feature-sets", dest="feature_sets", help="comma-separated: handcrafted, cnn, hybrid, head")
        command.add_argument("--hybrid-pca", dest="hybrid_pca", type=int, help="PCA components of the embedding part of hybrid sets (0: none)")
        command.add_argument("--bootstrap", type=int, help="bootstrap resamples for the 95%% intervals")
        command.add_argument("--heads", help="backbones to train sigmoid heads on (frozen; the paper's fine-tuning): "
                                             "comma-separated, 'all' or 'none'")
    text = "apply a trained model folder to new cells (labelled or not): predictions per cell and per subject"
    predict = sub.add_parser("predict", help=text, description=text)
    predict.add_argument("--model", type=Path, required=True, help="model folder written by 'leukoscope train'")
    _add_io_options(predict, required=True)
    predict.add_argument("--bootstrap", type=int, help="bootstrap resamples for the 95%% intervals (labelled cells)")
    predict.add_argument("--refiner-model", dest="refiner_model",
                         help="the refiner .keras file the model was trained with, when it is elsewhere here")
    add_train_refiner_parser(sub)
    shown = sub.add_parser("config", help="list the shipped configs or print one",
                           description="List the configs shipped in the package, or print one to start your own from.")
    shown.add_argument("action", choices=["list", "show"], help="list the names, or show one config's TOML")
    shown.add_argument("name", nargs="?", help="config name for 'show' (e.g. demo)")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    """The config file's values with the command-line flags on top; for ``predict``, the model
    card's settings with the data and run flags on top."""
    overrides = {key: getattr(args, dest, None) for dest, key in OVERRIDES.items()}
    if getattr(args, "scheduler", None) and getattr(args, "backend", None) is None:
        overrides["run.backend"] = Backend.DASK.value  # --scheduler implies --backend dask
    if args.command == "predict":
        folder = open_model_folder(args.model)
        picked = {OVERRIDES[dest]: overrides[OVERRIDES[dest]] for dest in PREDICT_OVERRIDES}
        config = prediction_config(folder.card, folder.path, {**picked, "data.demo": False})
    else:
        config = load_config(args.config, overrides)
    return config.with_overrides({"run.jobs": capped_jobs(config.run.jobs)})


def prepare_run(config: Config, run: RunDir) -> pd.DataFrame:
    """Load the dataset (cutting whole fields into cells first), write manifest.csv and rejected.csv,
    record it in run.json; return the samples.

    Every listed file is hashed (only regular files of a plausible size are read); files that
    cannot be go to rejected.csv, and images listed twice are pointed out (:func:`warn_about_copies`).
    """
    data = Path(config.data.path)
    if config.data.dataset in FIELD_KINDS:  # whole smear fields: the samples are the cells cut out of them
        loaded = cut_out_fields(config, run, load_fields(config))
    else:
        loaded = load_dataset(data, config.data.dataset)
    samples = loaded.samples
    hashes = list(parallel_map(hash_input, list(samples["path"]), jobs=config.run.jobs,
                               backend="threading", desc="hashing", quiet=config.run.quiet))
    rejected = list(loaded.rejected) + [
        {"path": p, "stage": Stage.LOAD.value, "reason": reason} for p, (_, reason) in zip(samples["path"], hashes) if reason
    ]
    samples = samples.assign(sha256=[digest for digest, _ in hashes])[[not reason for _, reason in hashes]]
    samples = samples.reset_index(drop=True)
    copies = warn_about_copies(samples)
    run.write_manifest(samples)
    run.ensure_rejected()
    run.clear_rejected(Stage.LOAD.value)  # the dataset was scanned anew
    if rejected:
        run.reject(rejected)
        log.warning("%d files could not be matched or read; see %s", len(rejected), run.rejected_path)
    run.update_info(dataset={"path": str(data.resolve()), "kind": loaded.kind.value,
                             "samples": len(samples), "rejected_at_load": len(rejected), **copies})
    log.info("%s: %d samples (%s) from %s", loaded.kind.value, len(samples),
             ", ".join(f"{k or 'unlabelled'} {v}" for k, v in samples["label"].value_counts().items()), data)
    return samples


def _demo_data(config: Config) -> Path:
    """The data path, with the demo set written there first when the config asks for it."""
    data = Path(config.data.path)
    if config.data.demo and not data.exists():
        from leukoscope.pipeline.demo import generate_demo

        log.info("demo data missing: generating %d cells of %d subjects in %s",
                 config.data.demo_cells, config.data.demo_subjects, data)
        generate_demo(data, subjects=config.data.demo_subjects, cells=config.data.demo_cells,
                      seed=config.data.demo_seed, jobs=config.run.jobs, quiet=config.run.quiet)
    return data


def _record_end(run: RunDir, status: str, error: str = "") -> None:
    """run.json's status, when run.json can still be written (not on a full or read-only disk)."""
    with contextlib.suppress(OSError):
        run.finish(status, error=error)


def run_command(command: str, config: Config, *, force: bool = False) -> RunDir:
    """Run a subcommand's stages (and the stages they need whose outputs are missing or stale) on
    the configured dataset, holding the run directory (:func:`~leukoscope.pipeline.claim.claim_run`);
    run.json records the outcome (ok, interrupted, or failed with the error).

    Raises
    ------
    RunDirError
        The run directory cannot be used (see :mod:`leukoscope.pipeline.claim`), or writing failed
        for a reason outside leukoscope (read-only, disk full): one line naming the path and the fix.
    """
    new_command()
    config = resolve_field_dataset(config, command)
    data = _demo_data(config)
    with claim_run(config.run.out, command, data=data, force=force,
                   inputs={"--data": data, "--masks": config.data.masks}) as run:
        try:
            if leftovers := remove_leftovers(run.path):
                log.info("removed %d temporary files of an interrupted run in %s", leftovers, run.path)
            run.start(command, config.to_dict())
            samples = prepare_run(config, run)
            if config.run.backend is Backend.DASK and config.run.scheduler:
                check_cluster(config.run.scheduler, run.path)
            ran = run_targets(COMMANDS[command], config, run, samples) if command in COMMANDS else []
        except KeyboardInterrupt:
            _record_end(run, "interrupted")
            raise
        except BaseException as exc:
            _record_end(run, "failed", f"{type(exc).__name__}: {exc}")
            problem = environment_error(exc) if isinstance(exc, OSError) else None
            if problem is not None:
                raise problem from exc
            raise
        fields = [Stage.FIELDS.value] if config.data.dataset in FIELD_KINDS else []  # ran in prepare_run
        run.update_info(stages=fields + ran)
        run.finish("ok")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="leukoscope: %(message)s", stream=sys.stderr)
    try:
        if args.command == "demo-data":
            from leukoscope.pipeline.demo import generate_demo

            try:
                top = generate_demo(args.out_dir, subjects=args.subjects, cells=args.cells,
                                    seed=args.seed, jobs=args.jobs, quiet=args.quiet)
            except ValueError as exc:  # --subjects or --cells the demo cannot have
                parser.error(str(exc))
            print(f"demo dataset written to {top} (expert masks in {args.out_dir / 'masks'})")
            return 0
        if args.command == "config":
            if args.action == "list" or not args.name:
                print("\n".join(config_names()))
            else:
                print(config_text(args.name), end="")
            return 0
        if args.command == "train-refiner":
            return train_refiner_from_args(args, argv)
        if args.quiet:
            logging.getLogger().setLevel(logging.WARNING)
        config = resolve_config(args)
        if config.run.quiet:
            logging.getLogger().setLevel(logging.WARNING)
        run = run_command(args.command, config, force=args.force)
        print(f"done: results in {run.path}")
        if args.command == "compare":
            for name in ("report.html", "report.md", "results.csv"):
                print(f"  {run.compare_file(name)}")
        if args.command == "fields":
            for path in (run.cells_table, run.field_overlays_dir, run.fields_montage):
                print(f"  {path}")
        if args.command == "predict":
            for path in (run.predictions_table, run.predict_subjects_table):
                print(f"  {path}")
        return 0
    except USER_ERRORS as exc:
        print(f"leukoscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("leukoscope: interrupted; run the same command again to resume "
              "(finished samples are cached in the run directory)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``leukoscope`` command line: demo-data, fields, segment, features, compare.

Every analysis subcommand reads ``--config FILE.toml`` and lets flags override it, loads the
dataset, writes ``manifest.csv``, ``rejected.csv`` and ``run.json`` in the run directory, then
runs its stage (and the stages it needs that the run directory lacks). A dataset of whole smear
fields is first cut into single cells (:mod:`leukoscope.pipeline.fields_run`), which become the
samples; ``fields`` runs that step alone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from leukoscope import __version__
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.pipeline.atomic import remove_leftovers
from leukoscope.pipeline.choices import FIELD_KINDS
from leukoscope.pipeline.config import Config, ConfigError, config_names, config_text, load_config
from leukoscope.pipeline.datasets import DatasetError, load_dataset, missing_file_reason
from leukoscope.pipeline.fields_run import cut_out_fields, load_fields, resolve_field_dataset
from leukoscope.pipeline.graph import COMMANDS, run_targets
from leukoscope.pipeline.groundtruth import ExpertMaskError
from leukoscope.pipeline.layout import Stage, sha256_file
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.refiner_data import RefinerTrainingError
from leukoscope.pipeline.refiner_model import RefinerModelError
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.train_refiner import add_parser as add_train_refiner_parser
from leukoscope.pipeline.train_refiner import run_from_args as train_refiner_from_args
from leukoscope.pipeline.weights import WeightsUnavailableError

log = logging.getLogger("leukoscope")

#: errors a user can fix (config, dataset, inputs, settings the data cannot satisfy): one line, exit 2;
#: anything else is a bug and keeps its traceback
USER_ERRORS = (ConfigError, DatasetError, EvaluationError, ExpertMaskError, RefinerModelError,
               RefinerTrainingError, WeightsUnavailableError)
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


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a shipped config's name (demo, cnmc, allidb2) or a .toml file")
    parser.add_argument("--data", help="dataset folder, or a manifest CSV (path,label[,subject][,split])")
    parser.add_argument("--dataset", help="layout of --data: auto, cnmc, allidb2, folder, manifest; whole "
                                          "fields: allidb1, voc, fields")
    parser.add_argument("--out", help="run directory (default from the config: runs/demo)")
    parser.add_argument("--jobs", type=int, help="parallel workers")
    parser.add_argument("--backend", help="joblib backend: loky, threading, dask")
    parser.add_argument("--scheduler", help="address of a Dask scheduler (with --backend dask)")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--quiet", action="store_true", default=None, help="no progress bars")
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
    for name, text in helps.items():
        _add_run_options(sub.add_parser(name, help=text, description=text))
    sub.choices["fields"].add_argument("--boxes", action="store_true", default=None,
                                       help="score the detection against the annotated boxes (voc)")
    for name in ("features", "compare"):
        sub.choices[name].add_argument(
            "--format", help="features tables: csv, or parquet for a typed Parquet copy beside every CSV")
    compare = sub.choices["compare"]
    compare.add_argument("--protocol", help="evaluation: auto, official, group-cv, stratified-cv")
    compare.add_argument("--folds", type=int, help="outer cross-validation folds")
    compare.add_argument("--models", help="comma-separated: svm, logreg, rf, knn, xgboost")
    compare.add_argument("--feature-sets", dest="feature_sets", help="comma-separated: handcrafted, cnn, hybrid, head")
    compare.add_argument("--hybrid-pca", dest="hybrid_pca", type=int, help="PCA components of the embedding part of hybrid sets (0: none)")
    compare.add_argument("--bootstrap", type=int, help="bootstrap resamples for the 95%% intervals")
    compare.add_argument("--heads", help="backbones to fine-tune sigmoid heads for: comma-separated, 'all' or 'none'")
    add_train_refiner_parser(sub)
    shown = sub.add_parser("config", help="list the shipped configs or print one",
                           description="List the configs shipped in the package, or print one to start your own from.")
    shown.add_argument("action", choices=["list", "show"], help="list the names, or show one config's TOML")
    shown.add_argument("name", nargs="?", help="config name for 'show' (e.g. demo)")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    """The config file's values with the command-line flags on top."""
    return load_config(args.config, {key: getattr(args, dest, None) for dest, key in OVERRIDES.items()})


def _hash(path: str) -> tuple[str, str]:
    """SHA-256 of a file, or ``""`` and why it cannot be read."""
    try:
        return sha256_file(path), ""
    except OSError as exc:
        if not Path(path).exists():  # gone since loading, or a link that loops or leads nowhere
            return "", missing_file_reason(Path(path))
        return "", f"file cannot be read ({exc.strerror or exc}); check that you may read it"


@contextlib.contextmanager
def _recording(run: RunDir) -> Iterator[None]:
    """Record in run.json that the work inside failed (with the error) or was interrupted."""
    try:
        yield
    except KeyboardInterrupt:
        run.finish("interrupted")
        raise
    except BaseException as exc:
        run.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise


def prepare_run(config: Config, command: str) -> tuple[RunDir, pd.DataFrame]:
    """Load the dataset (cutting whole fields into cells first), write manifest.csv, rejected.csv
    and run.json; return the samples."""
    data = Path(config.data.path)
    if config.data.demo and not data.exists():
        from leukoscope.pipeline.demo import generate_demo

        log.info("demo data missing: generating %d cells of %d subjects in %s",
                 config.data.demo_cells, config.data.demo_subjects, data)
        generate_demo(data, subjects=config.data.demo_subjects, cells=config.data.demo_cells,
                      seed=config.data.demo_seed, jobs=config.run.jobs, quiet=config.run.quiet)
    fields = load_fields(config) if config.data.dataset in FIELD_KINDS else None
    if fields is None:
        loaded = load_dataset(data, config.data.dataset)
    run = RunDir(config.run.out)
    if leftovers := remove_leftovers(run.path):
        log.info("removed %d temporary files of an interrupted run in %s", leftovers, run.path)
    run.start(command, config.to_dict())
    if fields is not None:
        with _recording(run):
            loaded = cut_out_fields(config, run, fields)
    samples = loaded.samples
    hashes = list(parallel_map(_hash, list(samples["path"]), jobs=config.run.jobs,
                               backend="threading", desc="hashing", quiet=config.run.quiet))
    unreadable = [bool(reason) for _, reason in hashes]
    rejected = list(loaded.rejected) + [
        {"path": p, "stage": Stage.LOAD.value, "reason": reason} for p, (_, reason) in zip(samples["path"], hashes) if reason
    ]
    samples = samples.assign(sha256=[digest for digest, _ in hashes])[[not u for u in unreadable]]
    samples = samples.reset_index(drop=True)
    run.write_manifest(samples)
    run.ensure_rejected()
    run.clear_rejected(Stage.LOAD.value)  # the dataset was scanned anew
    if rejected:
        run.reject(rejected)
        log.warning("%d files could not be matched or read; see %s", len(rejected), run.rejected_path)
    run.update_info(dataset={"path": str(data.resolve()), "kind": loaded.kind.value,
                             "samples": len(samples), "rejected_at_load": len(rejected)})
    log.info("%s: %d samples (%s) from %s", loaded.kind.value, len(samples),
             ", ".join(f"{k or 'unlabelled'} {v}" for k, v in samples["label"].value_counts().items()), data)
    return run, samples


def run_command(command: str, config: Config) -> RunDir:
    """Run a subcommand's stages (and those they need that the run directory lacks) on the
    configured dataset; run.json records the outcome (ok, interrupted, or failed with the error)."""
    config = resolve_field_dataset(config, command)
    run, samples = prepare_run(config, command)
    with _recording(run):
        ran = run_targets(COMMANDS[command], config, run, samples) if command in COMMANDS else []
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
        config = resolve_config(args)
        if config.run.quiet:
            logging.getLogger().setLevel(logging.WARNING)
        run = run_command(args.command, config)
        print(f"done: results in {run.path}")
        if args.command == "compare":
            for name in ("report.html", "report.md", "results.csv"):
                print(f"  {run.path / 'compare' / name}")
        if args.command == "fields":
            for path in (run.cells_table, run.field_overlays_dir, run.fields_montage):
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

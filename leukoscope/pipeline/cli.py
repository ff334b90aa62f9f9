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

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.pipeline.atomic import remove_leftovers
from leukoscope.pipeline.choices import FIELD_KINDS, Backend
from leukoscope.pipeline.claim import claim_run, environment_error
from leukoscope.pipeline.cli_parser import OVERRIDES, PREDICT_OVERRIDES, build_parser
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
from leukoscope.pipeline.train_refiner import run_from_args as train_refiner_from_args
from leukoscope.pipeline.weights import WeightsUnavailableError

log = logging.getLogger("leukoscope")

#: errors a user can fix (config, dataset, inputs, settings the data cannot satisfy): one line, exit 2;
#: anything else is a bug and keeps its traceback
USER_ERRORS = (ConfigError, DaskSchedulerError, DatasetError, EvaluationError, ExpertMaskError, ModelFolderError,
               RefinerModelError, RefinerTrainingError, RunDirError, WeightsUnavailableError)


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

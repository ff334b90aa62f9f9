"""Throughput of the handcrafted-feature step against pyradiomics, on C-NMC-sized cells.

    .venv/bin/python bench/features.py [--cells 400] [--jobs 2] [--radiomics-cells 40]

Draws ``--cells`` synthetic 450x450 cells on black (the demo generator, C-NMC layout) into a
temporary folder, then times, on ``--jobs`` loky workers after a warm-up:

1. the whole handcrafted step per image: read the BMP, segment it
   (``leukoscope.segmentation.cell.segment_cell``, the segment stage's default settings) and
   compute all four families (``compute_features``) and the surround columns
   (``surround_features``), which the handcrafted stage writes too;
2. the features alone, on the masks of step 1 read from PNG;
3. the ``segment`` and ``handcrafted`` stages as ``leukoscope features`` runs them on a fresh run
   directory (masks, overlays, montages, QC gallery, CSVs, caches; hashing and dataset loading
   excluded; the handcrafted features fused into the segmentation workers), and its ratio to 1;
   then the ``statistics`` stage the command runs next (subject and univariate tables, figures:
   a cost per dataset, not per cell), and the ratio of the whole command to 1. The CPU time of 3
   is that of the main process and the workers together (``psutil``), so its ratio to 1's holds
   on a loaded machine, where the wall clock of either can be off by a factor of two; and, apart,
   the step of 1 with the two files per cell that 3 must write (overlay drawn, mask and overlay
   encoded and written), whose CPU time bounds the ratio 3 can reach, and the ratio of 3 to it
   (what the cache entries, QC pages, CSVs and scheduling cost);
4. pyradiomics (firstorder + GLCM + shape2D, 64 grey levels, the same three regions, the same
   masks, the same grey image, the same number of processes) on the first
   ``--radiomics-cells`` cells, in its own environment (``bench/requirements-radiomics.txt``).

Prints the wall-clock throughput of each, in images per second, the CPU time per image spent
in the workers (``time.process_time``) with the throughput it gives on ``--jobs`` otherwise
idle cores, and the ratios of 1 to 4. On a shared machine the wall clock depends on what else
runs; the CPU time much less so, and both ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from leukoscope.features.regions import to_gray
from leukoscope.features.registry import compute_features, feature_names
from leukoscope.features.surround import surround_features
from leukoscope.pipeline.atomic import write_png
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.graph import run_targets
from leukoscope.pipeline.imageio import read_image, read_label_mask
from leukoscope.pipeline.layout import Stage, sha256_file
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.overlay import cell_window, draw_overlay

BENCH = Path(__file__).resolve().parent
RADIOMICS_PYTHON = BENCH / ".venv-radiomics" / "bin" / "python"
SEGMENTATION = segmentation_options(Config().segmentation)  # what the segment stage uses


def _read_segment_measure(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read, segment and measure one image (the four families and the surround columns the
    handcrafted stage also writes); returns the image and its labels."""
    image = read_image(path)
    labels = segment_cell(image, **SEGMENTATION).labels
    compute_features(image, labels)
    surround_features(image, labels)
    return image, labels


def segment_and_measure(path: str) -> float:
    """The handcrafted step of one image (:func:`_read_segment_measure`); returns its CPU seconds."""
    start = time.process_time()
    _read_segment_measure(path)
    return time.process_time() - start


def step_with_files(paths: tuple[str, str]) -> tuple[float, float]:
    """The handcrafted step of one image (:func:`segment_and_measure`) and the two files the
    segment stage must write per cell: the overlay drawn (stretched, with its legend), mask and
    overlay encoded and written atomically (``paths``: the image, and the folder to write into).
    Returns the CPU seconds of the whole and of the two files alone."""
    start = time.process_time()
    image, labels = _read_segment_measure(paths[0])
    files = time.process_time()
    window = cell_window(labels)
    stem = Path(paths[1]) / Path(paths[0]).stem
    write_png(labels, f"{stem}_mask.png")
    write_png(draw_overlay(image[window], labels[window], stretch=True, legend=True), f"{stem}_overlay.png")
    end = time.process_time()
    return end - start, end - files


def measure_on_mask(paths: tuple[str, str]) -> float:
    """Features only, on a mask written before; returns the CPU seconds."""
    start = time.process_time()
    image = read_image(paths[0])
    labels = read_label_mask(paths[1], image_shape=image.shape[:2], image_name=Path(paths[0]).name)
    compute_features(image, labels)
    return time.process_time() - start


def segment(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Grey image and labels of one cell, for the masks both tools read."""
    image = read_image(path)
    return to_gray(image), segment_cell(image, **SEGMENTATION).labels


def throughput(func, items: list, *, jobs: int) -> tuple[float, Any]:
    """Images per second of ``func`` over ``items`` on ``jobs`` loky workers (after a warm-up),
    and the mean CPU seconds per image spent in the workers (what ``func`` returns: one number,
    or a tuple of them averaged element by element)."""
    list(parallel_map(func, items[: 2 * jobs], jobs=jobs, quiet=True))
    start = time.perf_counter()
    cpu = np.sum(list(parallel_map(func, items, jobs=jobs, quiet=True)), axis=0)
    return len(items) / (time.perf_counter() - start), cpu / len(items)


def report(name: str, wall: float, cpu: float | None, *, jobs: int) -> None:
    """One line: wall-clock throughput, CPU per image, and what ``jobs`` idle cores would give."""
    cpu_part = f"{cpu * 1e3:7.1f} ms CPU/image -> {jobs / cpu:6.1f} images/s on {jobs} idle cores" if cpu else ""
    print(f"{name:<48} {wall:7.1f} images/s  {cpu_part}")


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process, of its live children (the loky workers) and of
    its children that ended and were reaped (a worker loky replaced), so that no worker's time is
    lost whatever loky does with its pool."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    total += ended.ru_utime + ended.ru_stime
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:  # pragma: no cover - a worker that ended between listing and reading
            pass
    return total


def stage_throughput(data: Path, run_path: Path, *, jobs: int) -> tuple[float, float, float]:
    """Images per second of the ``segment`` and ``handcrafted`` stages on a fresh run directory
    (what ``leukoscope features`` does per cell; after a warm-up on a few cells, so that the
    workers run already, as for the step), their CPU seconds per image (main process and
    workers), and the seconds of the ``statistics`` stage the command runs after them (a
    per-dataset cost: subject tables, bootstrap, figures)."""
    config = Config().with_overrides({"data.path": str(data), "run.out": str(run_path), "run.jobs": jobs,
                                      "run.quiet": True})
    samples = load_dataset(data, config.data.dataset).samples
    samples = samples.assign(sha256=[sha256_file(p) for p in samples["path"]])
    # warm-up, as for the step: the stages' workers started (and their modules imported) on a few
    # cells in another run directory, a cost a command pays once whatever the number of cells
    warm = run_path.with_name(run_path.name + "-warm-up")
    run_targets((Stage.HANDCRAFTED,), config.with_overrides({"run.out": str(warm)}), RunDir(warm),
                samples.head(4 * jobs))
    run = RunDir(run_path)
    start, cpu = time.perf_counter(), cpu_seconds()
    run_targets((Stage.HANDCRAFTED,), config, run, samples)
    per_cell, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    start = time.perf_counter()
    run_targets((Stage.STATISTICS,), config, run, samples)
    return len(samples) / per_cell, cpu / len(samples), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=400, help="synthetic 450x450 cells (default 400)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--radiomics-cells", type=int, default=40, help="cells given to pyradiomics (default 40)")
    parser.add_argument("--radiomics-python", type=Path, default=RADIOMICS_PYTHON,
                        help="python of the pyradiomics environment (default bench/.venv-radiomics)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
        folder = Path(tmp)
        generate_demo(folder / "demo", subjects=4, cells=args.cells, jobs=args.jobs)
        paths = sorted(str(p) for p in (folder / "demo").rglob("*.bmp"))
        masks = []
        for i, (gray, labels) in enumerate(parallel_map(segment, paths, jobs=args.jobs, quiet=True)):
            stem = folder / "masks" / f"{i:05d}"
            write_png(labels, f"{stem}_labels.png")
            masks.append(f"{stem}_labels.png")
            if i < args.radiomics_cells:
                write_png(gray, folder / "radiomics" / f"{i:05d}_gray.png")
                write_png(labels, folder / "radiomics" / f"{i:05d}_labels.png")

        step, step_cpu = throughput(segment_and_measure, paths, jobs=args.jobs)
        features_only, features_cpu = throughput(measure_on_mask, list(zip(paths, masks)), jobs=args.jobs)
        targets = [(p, str(folder / "files")) for p in paths]
        with_files, (with_files_cpu, files_cpu) = throughput(step_with_files, targets, jobs=args.jobs)
        stages, stages_cpu, statistics = stage_throughput(folder / "demo", folder / "run", jobs=args.jobs)
        print(f"{len(paths)} synthetic 450x450 cells, {args.jobs} loky workers, "
              f"{len(feature_names())} leukoscope columns per cell; wall clock, then CPU time in the workers")
        report("leukoscope read + segment + features", step, step_cpu, jobs=args.jobs)
        report("leukoscope features on given masks", features_only, features_cpu, jobs=args.jobs)
        report("read + segment + features + both files", with_files, with_files_cpu, jobs=args.jobs)
        report("leukoscope segment + handcrafted stages (all files)", stages, stages_cpu, jobs=args.jobs)
        whole = len(paths) / (len(paths) / stages + statistics)
        print(f"{'then the statistics stage (once per dataset)':<48} {statistics:7.2f} s")
        report("leukoscope features command (both)", whole, None, jobs=args.jobs)
        print(f"ratio segment + handcrafted stages / read + segment + features step: wall {stages / step:.2f}, "
              f"CPU {step_cpu / stages_cpu:.2f} (target >= 0.8); the whole command (with the statistics stage), "
              f"wall: {whole / step:.2f}")
        print(f"the mask and overlay files alone (overlay drawn, both encoded and written): {files_cpu * 1e3:.1f} ms "
              f"CPU per cell; with them and nothing else the stages' CPU ratio would be at most "
              f"{step_cpu / (step_cpu + files_cpu):.2f}")
        print(f"ratio segment + handcrafted stages / the step with the mask and overlay files: wall "
              f"{stages / with_files:.2f}, CPU {with_files_cpu / stages_cpu:.2f} (the cost of the cache entries, QC "
              f"pages, CSVs and scheduling)")
        if not args.radiomics_python.exists():
            print(f"pyradiomics: not measured, {args.radiomics_python} missing "
                  "(see bench/requirements-radiomics.txt)")
            return
        reference = subprocess.run(
            [str(args.radiomics_python), str(BENCH / "radiomics_reference.py"), str(folder / "radiomics"),
             "--jobs", str(args.jobs)], check=True, capture_output=True, text=True)
        result = json.loads(reference.stdout.strip().splitlines()[-1])
        radiomics, radiomics_cpu = result["images"] / result["seconds"], result["cpu_per_image"]
        report(f"pyradiomics {result['pyradiomics']} ({result['features_per_image']} columns, "
               f"{result['images']} cells)", radiomics, radiomics_cpu, jobs=args.jobs)
        print(f"ratio leukoscope (read + segment + features) / pyradiomics: wall {step / radiomics:.1f}x, "
              f"CPU {radiomics_cpu / step_cpu:.1f}x")


if __name__ == "__main__":
    main()

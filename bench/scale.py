"""Time and peak memory of segmentation + handcrafted features as the dataset grows.

    .venv/bin/python bench/scale.py [--sizes 1000,4000,16000] [--jobs 2] [--distinct 500]
                                    [--workdir DIR]

The demo generator draws ``--distinct`` cells once (450x450 BMPs on black, 12 subjects; drawing
is slow, about 0.1 s a cell). For each size N, N files are made from them, cell ``i`` being
drawn cell ``i % distinct`` turned by one of the 8 rotations and flips and shifted by
``i // (8 * distinct)`` pixels: every file differs from every other (the caches, keyed by file
content, serve none), and each is as much work as a drawn cell. They are listed in a manifest
CSV with their cell's label and subject, and ``leukoscope features --config demo
--backbones none`` (segmentation + handcrafted features) runs on them in a fresh subprocess, so
each size has its own peak; the files and the run are deleted before the next size (the
largest needs about 0.7 MB of free disk per cell while it runs: 11 GB for 16,000). While the
run goes, the resident memory (RSS) of each of its workers (loky) is sampled every 0.1 s; the
main process's peak is read from the kernel (``getrusage``), which sees every spike.

Prints one row per size: cells, seconds of the command (load, hash, segment, features, from
inside the subprocess, imports excluded), cells/s, peak RSS of the main process and of the
largest worker (MB), and against the smallest size: the time ratio divided by the size ratio
(1.00 = linear) and each RSS ratio (1.00 = flat). Timings on a shared machine are noisy; run it
on an otherwise idle machine for the README table. Needs ``psutil`` (installed with
``leukoscope[dask]`` and ``leukoscope[test]``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil

from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.demo import generate_demo

SUBJECTS = 12
SAMPLE_EVERY = 0.1  # seconds between two RSS samples of the workers
MB = 1 << 20


def child(args: argparse.Namespace) -> None:
    """Run the command on one dataset in this process; print its seconds and peak RSS as JSON."""
    from leukoscope.pipeline import cli  # imports are not part of the measured time

    start = time.perf_counter()
    code = cli.main(["features", "--config", "demo", "--data", args.data,
                     "--dataset", "manifest", "--out", args.out, "--jobs", str(args.jobs), "--backbones", "none",
                     "--quiet"])
    seconds = time.perf_counter() - start
    if code:
        sys.exit(code)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    print(json.dumps({"seconds": seconds, "main_peak_mb": peak / MB}))


def variant(image: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th of the distinct variants of an image: a rotation or flip, then a shift."""
    turned = np.rot90(image, index % 4)
    if index // 4 % 2:
        turned = turned[:, ::-1]
    return np.roll(turned, index // 8, axis=(0, 1))


def write_cells(drawn: pd.DataFrame, cells: int, folder: Path) -> Path:
    """``cells`` distinct BMPs made from the drawn ones, and their manifest CSV (returned)."""
    folder.mkdir(parents=True)
    rows = []
    for i in range(cells):
        cell = drawn.iloc[i % len(drawn)]
        name = f"{i % len(drawn):05d}_v{i // len(drawn):03d}.bmp"
        image = cv2.imread(cell["path"], cv2.IMREAD_COLOR)
        assert image is not None, f"cannot read {cell['path']}"
        cv2.imwrite(str(folder / name), variant(image, i // len(drawn)))
        rows.append({"path": name, "label": cell["label"], "subject": cell["subject"], "split": cell["split"]})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def measure(drawn: pd.DataFrame, cells: int, jobs: int, workdir: Path) -> dict[str, float]:
    """Make ``cells`` files, run the child on them, sample its workers; delete the files after."""
    data, out = workdir / f"cells_{cells}", workdir / f"run_{cells}"
    try:
        manifest = write_cells(drawn, cells, data)
        process = subprocess.Popen([sys.executable, __file__, "--child", "--data", str(manifest), "--out", str(out),
                                    "--jobs", str(jobs)], stdout=subprocess.PIPE, text=True)
        main, worker = psutil.Process(process.pid), 0
        while process.poll() is None:
            try:
                children = main.children(recursive=True)
                worker = max([worker, *(c.memory_info().rss for c in children)])
            except psutil.NoSuchProcess:  # a worker ended between listing and reading
                pass
            time.sleep(SAMPLE_EVERY)
        stdout, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"the run on {cells} cells failed (exit code {process.returncode})")
        result = json.loads(stdout.strip().splitlines()[-1])
        return {"cells": cells, **result, "worker_peak_mb": worker / MB}
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,4000,16000", help="comma-separated cell counts")
    parser.add_argument("--jobs", type=int, default=2, help="workers of the run (default 2)")
    parser.add_argument("--distinct", type=int, default=500, help="cells drawn by the demo generator (default 500)")
    parser.add_argument("--workdir", type=Path, help="where to draw the cells (default: a temporary folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = sorted(int(v) for v in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="leukoscope-scale-", dir=args.workdir) as tmp:
        top = generate_demo(Path(tmp) / "drawn", subjects=SUBJECTS, cells=min(args.distinct, sizes[-1]), seed=0,
                            jobs=args.jobs, quiet=True)
        drawn = load_dataset(top).samples
        print(f"{'cells':>7} {'seconds':>8} {'cells/s':>8} {'main MB':>8} {'worker MB':>9} "
              f"{'time/linear':>11} {'main RSS x':>10} {'worker RSS x':>12}", flush=True)
        first = None
        for cells in sizes:
            row = measure(drawn, cells, args.jobs, Path(tmp))
            first = first or row
            linear = (row["seconds"] / first["seconds"]) / (cells / first["cells"])
            print(f"{cells:>7} {row['seconds']:>8.1f} {cells / row['seconds']:>8.1f} {row['main_peak_mb']:>8.0f} "
                  f"{row['worker_peak_mb']:>9.0f} {linear:>11.2f} {row['main_peak_mb'] / first['main_peak_mb']:>10.2f} "
                  f"{row['worker_peak_mb'] / first['worker_peak_mb']:>12.2f}", flush=True)


if __name__ == "__main__":
    main()

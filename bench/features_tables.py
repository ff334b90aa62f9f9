"""Memory and time at C-NMC size of the statistics stage and of the Parquet copies of the features CSVs.

    PYTHONPATH=$PWD .venv/bin/python bench/features_tables.py [--cells 15000] [--subjects 118]
        [--embedding 2048] [--folder /tmp/features-tables-bench]

Writes two synthetic features CSVs as the features stages do: ``RUN/features/handcrafted.csv``
(``--cells`` cells of ``--subjects`` subjects, the 389 handcrafted columns as unrounded float64 in
their shortest exact form: ``synthetic_cells`` of ``bench/univariate.py``) and
``cnn_resnet50.csv`` (``--embedding`` float32 columns as ``%.9g``; 2048 is ResNet50's size).
Then, each in a fresh process, prints the wall time, the resident memory (RSS) before the work
and its peak during the work (sampled every 5 ms), of:

- ``statistics``: the statistics stage with ``--format parquet`` (subject and univariate
  tables with 2000 bootstrap replicates, CSV and Parquet, three figures, record);
- ``stream``: :func:`leukoscope.pipeline.tables.csv_to_parquet` of each CSV (what
  ``--format parquet`` does), one 32 MB block of CSV at a time;
- ``pandas``: ``read_features`` (the whole table as a DataFrame) then ``write_table``, which
  converts it to one Arrow table: the table is in memory twice.

The two Parquet copies of each CSV are checked to read back equal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.statistics import run_statistics
from leukoscope.pipeline.tables import csv_to_parquet, read_features, table_path, write_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from univariate import synthetic_cells  # noqa: E402  (bench/univariate.py)


def write_csvs(run: Path, cells: int, subjects: int, embedding: int) -> list[Path]:
    """``handcrafted.csv`` and ``cnn_resnet50.csv`` in ``run/features`` (see the module docstring)."""
    table = synthetic_cells(cells, subjects)
    handcrafted = RunDir(run).handcrafted_table
    handcrafted.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(handcrafted, index=False, float_format=None, lineterminator="\n")
    cnn = RunDir(run).embeddings_table("resnet50")
    rng = np.random.default_rng(0)
    columns = [f"cnn_resnet50_{k:04d}" for k in range(embedding)]
    with open(cnn, "w", encoding="utf-8", newline="") as handle:
        for start in range(0, cells, 1000):
            meta = table.iloc[start:start + 1000][["sample_id", "subject", "label", "split"]].reset_index(drop=True)
            values = pd.DataFrame(rng.normal(size=(len(meta), embedding)).astype(np.float32), columns=columns)
            pd.concat([meta.assign(weights="random"), values], axis=1).to_csv(
                handle, header=start == 0, index=False, float_format="%.9g", lineterminator="\n")
    return [handcrafted, cnn]


def _rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(method: str, path: Path) -> None:
    """Run ``method`` on ``path`` (a CSV, or the run directory) here; print seconds and peak memory growth.

    The peak is sampled every 5 ms from a thread while the work runs (the kernel's own peak,
    ``ru_maxrss``, also counts the imports' transient peak, which is larger than a block).
    """
    before, peak, running = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not running.wait(0.005):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    if method == "statistics":
        run = RunDir(path)
        run_statistics(Config().with_overrides({"run.out": str(path), "features.format": "parquet"}), run,
                       pd.DataFrame())
        size = f"{run.handcrafted_table.stat().st_size / 2**20:6.0f} MiB of CSV summarised"
    else:
        if method == "stream":
            out = csv_to_parquet(path, float_type=pa.float32() if path.stem.startswith("cnn_") else pa.float64())
        else:
            out = write_table(read_features(path), path.with_name(path.stem + "_pandas"), format="parquet")
        size = f"CSV {path.stat().st_size / 2**20:6.0f} MiB -> Parquet {out.stat().st_size / 2**20:6.0f} MiB"
    seconds = time.perf_counter() - start
    running.set()
    sampler.join()
    print(f"{path.name:>18} {method:>10}: {seconds:6.1f} s, RSS {before:4.0f} MiB before, peak {peak[0]:5.0f} MiB "
          f"(+{peak[0] - before:4.0f}), {size}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=15000)
    parser.add_argument("--subjects", type=int, default=118)
    parser.add_argument("--embedding", type=int, default=2048)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/features-tables-bench"))
    parser.add_argument("--measure", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], Path(args.measure[1]))
        return
    paths = write_csvs(args.folder, args.cells, args.subjects, args.embedding)
    print(f"{args.cells} cells of {args.subjects} subjects in {args.folder}", flush=True)
    jobs = [("statistics", args.folder)] + [(method, p) for p in paths for method in ("stream", "pandas")]
    for method, path in jobs:
        subprocess.run([sys.executable, __file__, "--measure", method, str(path)], check=True)
    for path in paths:
        streamed = pd.read_parquet(table_path(path, "parquet"))
        whole = pd.read_parquet(path.with_name(path.stem + "_pandas.parquet"))  # numbers as float64
        pd.testing.assert_frame_equal(streamed, whole.astype(streamed.dtypes.to_dict()), check_exact=True)
    print("Parquet copies read back equal: yes")


if __name__ == "__main__":
    main()

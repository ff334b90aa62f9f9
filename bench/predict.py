"""Speed and peak memory of ``leukoscope predict`` against ``leukoscope features`` on the same cells.

    .venv/bin/python bench/predict.py [--cells 1000,10000] [--jobs 1] [--distinct 500]
                                      [--model MODEL_DIR] [--workdir DIR]

The demo generator draws ``--distinct`` cells (12 subjects, C-NMC layout). Without ``--model``,
``leukoscope train --models xgboost --feature-sets handcrafted`` (official protocol, no CNN)
trains the model on them first. For each size N, N distinct files are made from the drawn cells
exactly as ``bench/scale.py`` makes them (rotations, flips and shifts, listed in a manifest CSV
with their labels and subjects), and on the same files, each in a fresh subprocess and a fresh
run directory, one after the other:

- ``leukoscope features --config demo --backbones none`` (segmentation + handcrafted
  features: the stages the model needs), and
- ``leukoscope predict --model MODEL`` (the same stages with the model's settings, then the
  predictions, subject calls, shift check and, the cells being labelled, the metrics).

Prints one row per size: cells, seconds of each command (from inside the subprocess, imports
excluded), the speed ratio ``features seconds / predict seconds`` (target >= 0.8), the peak RSS
of predict's main process (``getrusage``) and of its largest worker (sampled every 0.1 s), and
predict's main RSS against the smallest size (target: within 1.2). The largest size needs about
0.7 MB of free disk per cell while it runs. Needs ``psutil``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scale import MB, add_shared_arguments, draw, sample_child, write_cells

DEMO = "demo"  # the shipped config


def child(args: argparse.Namespace) -> None:
    """Run one command in this process; print its seconds and peak RSS as JSON."""
    from leukoscope.pipeline import cli  # imports are not part of the measured time

    if args.child == "features":
        argv = ["features", "--config", DEMO, "--backbones", "none"]
    else:
        argv = ["predict", "--model", args.model]
    start = time.perf_counter()
    code = cli.main([*argv, "--data", args.data, "--dataset", "manifest", "--out", args.out, "--jobs", str(args.jobs),
                     "--quiet"])
    seconds = time.perf_counter() - start
    if code:
        sys.exit(code)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    print(json.dumps({"seconds": seconds, "main_peak_mb": peak / MB}))


def train(top: Path, out: Path, jobs: int) -> Path:
    """Train the benchmark's model on the drawn demo cells; return its folder."""
    from leukoscope.pipeline import cli

    code = cli.main(["train", "--config", DEMO, "--data", str(top), "--out", str(out), "--jobs", str(jobs),
                     "--backbones", "none", "--heads", "none", "--models", "xgboost", "--feature-sets", "handcrafted",
                     "--quiet"])
    if code:
        raise SystemExit(f"training the benchmark's model failed (exit code {code})")
    return out / "models" / "xgboost_handcrafted"


def run_both(manifest: Path, model: Path, jobs: int, workdir: Path, cells: int) -> dict[str, dict[str, float]]:
    rows = {}
    for command in ("features", "predict"):
        out = workdir / f"{command}_{cells}"
        try:
            rows[command] = sample_child([sys.executable, __file__, "--child", command, "--data", str(manifest),
                                          "--out", str(out), "--jobs", str(jobs), "--model", str(model)],
                                         f"{command} on {cells} cells")
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="1000,10000", help="comma-separated cell counts")
    parser.add_argument("--jobs", type=int, default=1, help="workers of each run (default 1)")
    parser.add_argument("--model", help="model folder to predict with (default: train one on the drawn cells)")
    parser.add_argument("--child", choices=("features", "predict"), help=argparse.SUPPRESS)
    add_shared_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = sorted(int(v) for v in args.cells.split(","))
    with tempfile.TemporaryDirectory(prefix="leukoscope-predict-", dir=args.workdir) as tmp:
        top, drawn = draw(Path(tmp), min(args.distinct, sizes[-1]), args.jobs)
        model = Path(args.model) if args.model else train(top, Path(tmp) / "train", args.jobs)
        print(f"model: {model}")
        print(f"{'cells':>7} {'features s':>10} {'predict s':>9} {'speed ratio':>11} {'main MB':>8} "
              f"{'worker MB':>9} {'main RSS x':>10}", flush=True)
        first = None
        for cells in sizes:
            data = Path(tmp) / f"cells_{cells}"
            try:
                rows = run_both(write_cells(drawn, cells, data), model, args.jobs, Path(tmp), cells)
            finally:
                shutil.rmtree(data, ignore_errors=True)
            predict = rows["predict"]
            first = first or predict
            print(f"{cells:>7} {rows['features']['seconds']:>10.1f} {predict['seconds']:>9.1f} "
                  f"{rows['features']['seconds'] / predict['seconds']:>11.2f} {predict['main_peak_mb']:>8.0f} "
                  f"{predict['worker_peak_mb']:>9.0f} {predict['main_peak_mb'] / first['main_peak_mb']:>10.2f}",
                  flush=True)


if __name__ == "__main__":
    main()

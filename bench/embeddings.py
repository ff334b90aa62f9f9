"""Throughput and memory of the frozen-CNN embedding step, against a bare Keras loop.

    .venv/bin/python bench/embeddings.py [--backbones all] [--size 128] [--images 128] [--seconds 5]
                                         [--batch 32] [--repeat 3] [--rss-backbone vgg16]
                                         [--rss-size 64] [--rss-images 200,2000]

Draws 64 synthetic 450x450 cells on black (the demo generator, C-NMC layout) into a temporary
folder. For each backbone (random weights, input ``--size`` px; 0 = each network's default,
224 or 299; smaller inputs make the reading and writing weigh more, so the ratio is a
conservative one), after a warm-up that builds and traces the network, it times in
alternation, ``--repeat`` times each, on ``--images`` samples, or more for fast networks so that
a run lasts about ``--seconds`` (the 64 files cycled, each sample with its own cache key):

1. ``pipeline``: the whole embedding step, ``write_embeddings`` -- read each BMP, pad, resize,
   preprocess, ``predict_on_batch``, cache entry and CSV row per image;
2. ``bare``: ``predict_on_batch`` over the same number of images already preprocessed in memory;
3. ``predict``: Keras ``model.predict`` on the same in-memory tensors (for the choice of 2).

and prints the median images/s of each and the median ratio of each pipeline run to the bare
run just before it (target >= 0.9).

Then it runs the whole step on ``--rss-images`` samples in fresh subprocesses (``--rss-backbone``
at ``--rss-size`` px) and prints each peak resident memory and their relative difference
(target < 15 %: memory does not grow with the dataset). Timings on a shared machine are noisy;
every ratio is measured within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.features.backbones import get_backbone
from leukoscope.features.choices import Backbone
from leukoscope.features.embeddings import embed_batch, prepare_batch
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.embeddings import EmbeddingJob, NetworkCache, write_embeddings
from leukoscope.pipeline.weights import RANDOM, ResolvedWeights

DISTINCT_CELLS = 64


def demo_files(folder: Path) -> list[str]:
    """The demo generator's cells (4 subjects) as a sorted list of BMP paths."""
    top = generate_demo(folder, subjects=4, cells=DISTINCT_CELLS, seed=0, jobs=2, quiet=True)
    return sorted(str(p) for p in top.rglob("*.bmp"))


def samples_table(files: list[str], n: int) -> pd.DataFrame:
    """``n`` samples cycling over ``files``, each with a distinct cache key."""
    return pd.DataFrame({
        "sample_id": [f"s{i:05d}" for i in range(n)],
        "path": [files[i % len(files)] for i in range(n)],
        "label": "", "subject": "", "split": "",
        "sha256": [hashlib.sha256(f"bench-{i}".encode()).hexdigest() for i in range(n)],
    })


def make_job(backbone: str, *, size: int, batch: int) -> EmbeddingJob:
    spec = get_backbone(backbone)
    return EmbeddingJob(spec=spec, weights=ResolvedWeights(label=RANDOM, path=None, source=RANDOM),
                        size=spec.check_input_size(size), mask_background=False, mirror=False,
                        batch_size=batch, seed=0)


def time_pipeline(job: EmbeddingJob, samples: pd.DataFrame, networks: NetworkCache, scratch: Path) -> float:
    run = RunDir(tempfile.mkdtemp(dir=scratch))
    start = time.perf_counter()
    write_embeddings(job, run, samples, quiet=True, networks=networks)
    return len(samples) / (time.perf_counter() - start)


def time_bare(extractor, tensors: np.ndarray, n: int, batch: int) -> float:
    start = time.perf_counter()
    for first in range(0, n, batch):
        embed_batch(extractor, tensors[: min(batch, n - first)], pad_to=batch)
    return n / (time.perf_counter() - start)


def time_predict(extractor, tensors: np.ndarray, n: int, batch: int) -> float:
    x = np.concatenate([tensors] * (n // len(tensors)) + [tensors[: n % len(tensors)]])
    start = time.perf_counter()
    extractor.predict(x, batch_size=batch, verbose=0)
    return n / (time.perf_counter() - start)


def throughput(backbone: str, files: list[str], args: argparse.Namespace, scratch: Path) -> dict[str, float]:
    job = make_job(backbone, size=args.size, batch=args.batch)
    networks = NetworkCache()
    time_pipeline(job, samples_table(files, args.batch), networks, scratch)  # build + trace
    extractor = networks.extractor(job)
    tensors = prepare_batch([read_image(f) for f in files[: args.batch]], size=job.size,
                            preprocess=job.spec.preprocess)
    extractor.predict(tensors, batch_size=args.batch, verbose=0)  # trace predict() too
    rate = time_bare(extractor, tensors, 2 * args.batch, args.batch)
    n = max(args.images, args.batch * math.ceil(rate * args.seconds / args.batch))
    samples = samples_table(files, n)
    runs: dict[str, list[float]] = {"pipeline": [], "bare": [], "predict": []}
    for _ in range(args.repeat):
        runs["bare"].append(time_bare(extractor, tensors, n, args.batch))
        runs["pipeline"].append(time_pipeline(job, samples, networks, scratch))
        runs["predict"].append(time_predict(extractor, tensors, n, args.batch))
    result = {name: statistics.median(values) for name, values in runs.items()}
    # each pipeline run against the bare run just before it: load changes between pairs cancel
    result["ratio"] = statistics.median(p / b for p, b in zip(runs["pipeline"], runs["bare"]))
    result["images"] = n
    return result


def rss_child(args: argparse.Namespace) -> None:
    """Run the whole step on ``--rss-child`` samples and print the peak RSS in MiB as JSON."""
    scratch = Path(args.scratch)
    files = sorted(str(p) for p in scratch.rglob("*.bmp"))
    job = make_job(args.rss_backbone, size=args.rss_size, batch=args.batch)
    run = RunDir(tempfile.mkdtemp(dir=scratch))
    write_embeddings(job, run, samples_table(files, args.rss_child), quiet=True)
    print(json.dumps({"images": args.rss_child,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="all",
                        help="comma-separated backbones, 'all' or 'none' (memory runs only) (default all)")
    parser.add_argument("--size", type=int, default=128, help="input side in px, 0 = each default (default 128)")
    parser.add_argument("--images", type=int, default=128, help="images per timed run, several batches (default 128)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32, the config default)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="more images for fast networks, so a timed run lasts about this long (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each kind (default 3)")
    parser.add_argument("--rss-backbone", default="vgg16", help="backbone of the memory runs (default vgg16)")
    parser.add_argument("--rss-size", type=int, default=64, help="input side of the memory runs (default 64)")
    parser.add_argument("--rss-images", default="200,2000",
                        help="sample counts of the memory runs, or 'none' (default 200,2000)")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args)
        return
    names = {"all": [b.value for b in Backbone], "none": []}.get(args.backbones, args.backbones.split(","))
    with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
        scratch = Path(tmp)
        files = demo_files(scratch / "data")
        print(f"{'backbone':<15} {'size':>4} {'images':>6} {'pipeline':>9} {'bare':>9} {'predict':>9} "
              f"{'ratio':>6}  (images/s)")
        for name in names:
            r = throughput(name, files, args, scratch)
            size = make_job(name, size=args.size, batch=args.batch).size
            print(f"{name:<15} {size:>4} {r['images']:>6} {r['pipeline']:>9.1f} {r['bare']:>9.1f} "
                  f"{r['predict']:>9.1f} {r['ratio']:>6.2f}", flush=True)
        if args.rss_images == "none":
            return
        peaks = []
        for n in (int(v) for v in args.rss_images.split(",")):
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--scratch", str(scratch),
                                  "--rss-backbone", args.rss_backbone, "--rss-size", str(args.rss_size),
                                  "--batch", str(args.batch)], check=True, capture_output=True, text=True)
            peaks.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"peak RSS, {args.rss_backbone} at {args.rss_size} px, {n} images: "
                  f"{peaks[-1]['peak_rss_mib']:.0f} MiB", flush=True)
        low, high = peaks[0]["peak_rss_mib"], peaks[-1]["peak_rss_mib"]
        print(f"peak RSS difference {peaks[0]['images']} -> {peaks[-1]['images']} images: "
              f"{100 * (high - low) / low:+.1f} %")


if __name__ == "__main__":
    main()

"""Training throughput of the paper's ResNet50 sigmoid head, against a bare Keras fit.

    .venv/bin/python bench/heads.py [--backbone resnet50] [--size 224] [--train 64] [--val 16]
                                    [--epochs 3] [--repeat 2]

Draws synthetic 450x450 cells on black (the demo generator, C-NMC layout) into a temporary
folder and trains the paper's head (frozen backbone with random weights -> GlobalMaxPooling2D
-> Dropout(0.5) -> Dense(2, sigmoid), Adamax 0.001, batch 40, horizontal flips) for
``--epochs`` epochs (EarlyStopping's patience set so that no run stops early) on ``--train``
images, validating on ``--val`` images, three ways, after a warm-up that builds and traces:

1. ``bare``: Keras ``fit`` of the full model on preprocessed tensors already in memory (the
   ``RandomFlip`` layer in the model);
2. ``streaming``: the same model trained by ``leukoscope.classifiers.heads.fit_head`` on
   ``ImageBatches`` that read, pad, resize and preprocess the BMP files every epoch (the
   stage's second, fine-tuning phase);
3. ``pooled``: what the stage does by default: the backbone's max-pooled features of every
   image and of its mirror image, read from the BMP files (``iter_pooled``), then
   ``fit_pooled_head``; the same training, the backbone run twice per image instead of once per
   image and epoch.

Prints the median training images/s (``train x epochs / seconds``) of each and the ratios to
``bare`` (target >= 0.9). Timings on a shared machine are noisy; the ratios are measured in
one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.classifiers.heads import build_head, compile_head, fit_head, fit_pooled_head, one_hot
from leukoscope.features.backbones import get_backbone
from leukoscope.features.embeddings import prepare_batch
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.image_batches import ImageBatches
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.embeddings import EmbeddingJob, NetworkCache, iter_pooled
from leukoscope.pipeline.weights import RANDOM, ResolvedWeights

BATCH = 40


def cells(folder: Path, n: int) -> pd.DataFrame:
    """``n`` demo cells (4 subjects, both classes) as a samples table."""
    top = generate_demo(folder, subjects=4, cells=n, seed=0, jobs=2, quiet=True)
    paths = sorted(top.rglob("*.bmp"))[:n]
    return pd.DataFrame({"sample_id": [p.stem for p in paths], "path": [str(p) for p in paths],
                         "label": ["ALL" if p.stem.endswith("all") else "HEM" for p in paths],
                         "subject": "", "split": "", "sha256": [sha256_file(p) for p in paths]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", help="backbone (default resnet50)")
    parser.add_argument("--size", type=int, default=224, help="input side in px (default 224, the paper's)")
    parser.add_argument("--train", type=int, default=64, help="training images (default 64)")
    parser.add_argument("--val", type=int, default=16, help="validation images (default 16)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3; the paper: up to 15)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each kind (default 2)")
    args = parser.parse_args()

    import keras

    spec = get_backbone(args.backbone)
    job = EmbeddingJob(spec=spec, weights=ResolvedWeights(label=RANDOM, path=None, source=RANDOM),
                       size=spec.check_input_size(args.size), mask_background=False, mirror=False,
                       batch_size=32, seed=0)
    with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
        scratch = Path(tmp)
        samples = cells(scratch / "data", args.train + args.val)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(samples))
        train, val = order[: args.train], order[args.train:]
        y = (samples["label"] == "ALL").to_numpy().astype(int)
        paths = samples["path"].to_numpy()

        model = compile_head(build_head(spec.build(input_size=job.size), seed=0))
        initial = model.get_weights()
        x = prepare_batch([read_image(p) for p in paths], size=job.size, preprocess=spec.preprocess)
        networks = NetworkCache()

        def bare() -> None:
            fit_head(model, x[train], one_hot(y[train]), (x[val], one_hot(y[val])), batch_size=BATCH,
                     epochs=args.epochs, patience=args.epochs)

        def streaming() -> None:
            fit_head(model, ImageBatches(paths[train], size=job.size, preprocess=spec.preprocess,
                                         targets=one_hot(y[train]), batch_size=BATCH, shuffle=True),
                     None, ImageBatches(paths[val], size=job.size, preprocess=spec.preprocess,
                                        targets=one_hot(y[val]), batch_size=BATCH),
                     epochs=args.epochs, patience=args.epochs)

        def pooled() -> None:
            run = RunDir(tempfile.mkdtemp(dir=scratch))
            features = {}
            for mirror in (False, True):
                vectors = np.zeros((len(samples), spec.embedding_size), np.float32)
                for positions, out in iter_pooled(dataclasses.replace(job, mirror=mirror), run, samples,
                                                  quiet=True, networks=networks):
                    vectors[positions] = out["max"]
                features[mirror] = vectors
            fit_pooled_head(features[False][train], features[True][train], y[train],
                            (features[False][val], y[val]), batch_size=BATCH, epochs=args.epochs,
                            patience=args.epochs)

        kinds = {"bare": bare, "streaming": streaming, "pooled": pooled}
        for run_kind in kinds.values():  # warm-up: build, trace
            model.set_weights(initial)
            run_kind()
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.repeat):
            for name, run_kind in kinds.items():
                model.set_weights(initial)
                keras.utils.set_random_seed(0)
                start = time.perf_counter()
                run_kind()
                times[name].append(args.train * args.epochs / (time.perf_counter() - start))
    rates = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.backbone} head at {job.size} px, {args.train} training + {args.val} validation images, "
          f"{args.epochs} epochs, batch {BATCH} (training images/s):")
    for name, rate in rates.items():
        print(f"  {name:<10} {rate:8.1f}   ratio to bare {rate / rates['bare']:.2f}")


if __name__ == "__main__":
    main()

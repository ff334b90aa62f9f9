"""Small class-folder datasets for the run-directory integrity tests, and a config that makes a
whole ``compare`` take seconds (handcrafted features, logistic regression, 2 folds)."""

from __future__ import annotations

import shutil
from pathlib import Path

from leukoscope.pipeline.demo import generate_demo

CONFIG = """\
[run]
jobs = 1
quiet = true
[segmentation]
background = "black"
min_size = {min_size}
[features]
backbones = []
[heads]
backbones = []
[compare]
protocol = "stratified-cv"
folds = 2
inner_folds = 2
models = ["logreg"]
feature_sets = ["handcrafted"]
bootstrap = 20
"""


def demo_pool(dest: Path, *, cells: int = 24, seed: int = 11) -> dict[str, list[Path]]:
    """Demo cell images by class (``all``, ``hem``), written once into ``dest``."""
    top = generate_demo(dest, subjects=4, cells=cells, seed=seed)
    pool: dict[str, list[Path]] = {"all": [], "hem": []}
    for path in sorted(top.rglob("UID_*.bmp")):
        pool["all" if path.stem.endswith("_all") else "hem"].append(path)
    return pool


def class_folders(dest: Path, pool: dict[str, list[Path]], per_class: int, *, start: int = 0) -> Path:
    """A class-folder dataset ``dest/{all,hem}/cell_NN.bmp`` of ``per_class`` images per class
    (``pool[cls][start:start + per_class]``); names carry no subject, so images are split freely."""
    for cls, images in pool.items():
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[start:start + per_class]):
            shutil.copyfile(image, dest / cls / f"cell_{i:02d}.bmp")
    return dest


def write_config(path: Path, *, min_size: int = 64) -> Path:
    path.write_text(CONFIG.format(min_size=min_size), encoding="utf-8")
    return path

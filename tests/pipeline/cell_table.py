"""Tiny synthetic cell images and their samples table, for the CNN stage tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import write_png
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.graph import mark_done
from leukoscope.pipeline.layout import Stage, sha256_file
from leukoscope.pipeline.rundir import RunDir

#: (subject, label, split): 3 ALL and 3 HEM training subjects, 1 + 1 preliminary-test subjects.
SUBJECTS = [
    ("1", "ALL", "fold_0"), ("2", "ALL", "fold_1"), ("3", "ALL", "fold_2"),
    ("H1", "HEM", "fold_0"), ("H2", "HEM", "fold_1"), ("H3", "HEM", "fold_2"),
    ("4", "ALL", "prelim_test"), ("H4", "HEM", "prelim_test"),
]


def cell_image(seed: int, *, blast: bool, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A disc cell on black: blasts are larger and bluer. Returns the image and its 0/1/2 labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.uint8)
    centre = (size // 2 + int(rng.integers(-2, 3)), size // 2 + int(rng.integers(-2, 3)))
    cv2.circle(labels, centre, size // 3 if blast else size // 4, 1, -1)
    cv2.circle(labels, centre, size // 5 if blast else size // 8, 2, -1)
    colours = np.array([[0, 0, 0], [200, 160, 210], [90, 40, 160] if blast else [150, 60, 120]], np.int16)
    noise = rng.integers(-15, 16, (size, size, 3))
    image = np.clip(colours[labels] + noise * (labels[..., None] > 0), 0, 255).astype(np.uint8)
    return image, labels


def write_cells(root: Path, *, cells: int = 3, size: int = 40, run_path: Path | None = None) -> pd.DataFrame:
    """Write ``cells`` PNG cells per subject of :data:`SUBJECTS` and return the samples table.

    With ``run_path``, also write what the segmentation stage would under the default config:
    ``segmentation/masks/<id>.png`` label masks, a ``segmentation.csv`` and the stage's record.
    """
    rows = []
    for s, (subject, label, split) in enumerate(SUBJECTS):
        for c in range(cells):
            image, labels = cell_image(100 * s + c, blast=label == "ALL", size=size)
            sample_id = f"{subject}_{c}"
            path = root / f"{sample_id}.png"
            write_png(image, path)
            if run_path is not None:
                write_png(labels, run_path / "segmentation" / "masks" / f"{sample_id}.png")
            rows.append({"sample_id": sample_id, "path": str(path), "label": label,
                         "subject": subject, "split": split, "sha256": sha256_file(path)})
    samples = pd.DataFrame(rows)
    if run_path is not None:
        (run_path / "segmentation" / "segmentation.csv").write_text("sample_id,qc_flag\n")
        mark_done(Stage.SEGMENTATION, Config(), RunDir(run_path), samples)
    return samples

"""Write the deterministic synthetic demo dataset in the C-NMC 2019 layout.

``leukoscope demo-data OUT`` writes::

    OUT/C-NMC_Leukemia/training_data/fold_{0,1,2}/{all,hem}/UID_<subject>_<image>_<cell>_<class>.bmp
    OUT/C-NMC_Leukemia/validation_data/C-NMC_test_prelim_phase_data/<N>.bmp
    OUT/C-NMC_Leukemia/validation_data/C-NMC_test_prelim_phase_data_labels.csv
    OUT/masks/<file stem>.png     ground truth, one channel: 0 background, 128 cytoplasm, 255 nucleus

Half the subjects are ALL (ids ``1``, ``2``...), half HEM (``H1``, ``H2``...). A third of the
subjects (half of each class) form the preliminary test set; the others are spread over the
three training folds, so folds and test set are subject-disjoint as in C-NMC. The same
arguments always give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import atomic_path, write_csv, write_png
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.synthetic import Stain, synthesize_cell

TOP = "C-NMC_Leukemia"
PRELIM = "C-NMC_test_prelim_phase_data"


@dataclass(frozen=True)
class DemoCell:
    """Where one demo cell goes and the seeds that draw it."""

    subject: str
    subject_index: int
    cell_index: int
    blast: bool
    relative: str
    original_name: str
    seed: int


def plan_demo(*, subjects: int = 12, cells: int = 240, seed: int = 0) -> list[DemoCell]:
    """Lay out the demo cells (no drawing): subjects, classes, folds and file names."""
    if subjects < 4 or subjects % 2:
        raise ValueError(f"the demo needs an even number of at least 4 subjects, got {subjects}")
    if cells < subjects:
        raise ValueError(f"the demo needs at least one cell per subject ({subjects}), got {cells}")
    half = subjects // 2
    ids = [(str(i + 1), True, i) for i in range(half)] + [(f"H{i + 1}", False, half + i) for i in range(half)]
    n_test = max(1, half // 3)  # per class
    plan, prelim_n = [], 0
    per_subject = np.full(subjects, cells // subjects)
    per_subject[: cells % subjects] += 1
    for subject, blast, s in ids:
        rank = s if blast else s - half
        cls = "all" if blast else "hem"
        in_test = rank >= half - n_test
        for c in range(int(per_subject[s])):
            original = f"UID_{subject}_{c // 5 + 1}_{c % 5 + 1}_{cls}.bmp"
            if in_test:
                prelim_n += 1
                relative = f"{TOP}/validation_data/{PRELIM}/{prelim_n}.bmp"
            else:
                relative = f"{TOP}/training_data/fold_{rank % 3}/{cls}/{original}"
            plan.append(DemoCell(subject, s, c, blast, relative, original, seed))
    return plan


def _draw(cell: DemoCell) -> tuple[bytes, np.ndarray]:
    stain = Stain.random(np.random.default_rng([cell.seed, cell.subject_index, 1_000_000]))
    rng = np.random.default_rng([cell.seed, cell.subject_index, cell.cell_index])
    image, labels = synthesize_cell(rng, blast=cell.blast, stain=stain)
    ok, bmp = cv2.imencode(".bmp", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return bmp.tobytes(), labels


def generate_demo(
    out_dir: str | Path, *, subjects: int = 12, cells: int = 240, seed: int = 0,
    jobs: int = 1, quiet: bool = True,
) -> Path:
    """Write the demo dataset to ``out_dir`` and return the C-NMC top folder.

    Parameters
    ----------
    out_dir : str or Path
        Destination folder (created).
    subjects : int
        Number of subjects, even, at least 4 (half ALL, half HEM).
    cells : int
        Total number of cells, spread evenly over the subjects.
    seed : int
        Seed of everything random; the same arguments give the same files.
    jobs : int
        Parallel workers.
    quiet : bool
        Hide the progress bar.
    """
    out_dir = Path(out_dir)
    plan = plan_demo(subjects=subjects, cells=cells, seed=seed)
    gt_values = np.array([0, 128, 255], dtype=np.uint8)
    for cell, (bmp, labels) in zip(plan, parallel_map(_draw, plan, jobs=jobs, desc="demo cells", quiet=quiet)):
        target = out_dir / cell.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(bmp)
        write_png(gt_values[labels], out_dir / "masks" / f"{Path(cell.relative).stem}.png")
    prelim = [c for c in plan if PRELIM in c.relative]
    write_csv(
        pd.DataFrame({
            "Patient_ID": [c.original_name for c in prelim],
            "new_names": [Path(c.relative).name for c in prelim],
            "labels": [1 if c.blast else 0 for c in prelim],
        }),
        out_dir / TOP / "validation_data" / f"{PRELIM}_labels.csv",
    )
    return out_dir / TOP

"""Build tiny C-NMC-layout fixture trees (and their variants) for the loader tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TRAIN = [  # (fold, subject, class)
    ("fold_0", "11", "all"), ("fold_0", "H10", "hem"),
    ("fold_1", "12", "all"), ("fold_1", "H11", "hem"),
    ("fold_2", "13", "all"), ("fold_2", "H12", "hem"),
]
PRELIM = [("21", "all"), ("H21", "hem"), ("22", "all")]


def tiny_bmp(path: Path, value: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((24, 24, 3), np.uint8)
    image[6:18, 6:18] = (value, 60, 160)
    cv2.imwrite(str(path), image)
    return path


def make_cnmc_tree(
    root: Path, *, top: bool = True, folds: bool = True, upper: bool = False,
    prelim_names: str = "numbers", drop_prelim_files: int = 0, extra_prelim_files: int = 0,
    final: int = 2,
) -> Path:
    """Write a small C-NMC tree: 2 cells per training subject, 3 prelim cells, ``final`` test cells."""
    base = root / "C-NMC_Leukemia" if top else root
    case = str.upper if upper else (lambda s: s)
    for fold, subject, cls in TRAIN:
        for cell in (1, 2):
            name = f"UID_{subject}_1_{cell}_{cls}.bmp"
            parts = [case("training_data")] + ([fold] if folds else []) + [cls, name]
            tiny_bmp(base.joinpath(*parts))
    prelim = base / case("validation_data") / "C-NMC_test_prelim_phase_data"
    lines = ["Patient_ID,new_names,labels"]
    for i, (subject, cls) in enumerate(PRELIM, start=1):
        original = f"UID_{subject}_1_1_{cls}.bmp"
        lines.append(f"{original},{i}.bmp,{1 if cls == 'all' else 0}")
        if i <= len(PRELIM) - drop_prelim_files:
            tiny_bmp(prelim / (f"{i}.bmp" if prelim_names == "numbers" else original))
    for j in range(extra_prelim_files):
        tiny_bmp(prelim / f"{100 + j}.bmp")
    (base / case("validation_data") / "C-NMC_test_prelim_phase_data_labels.csv").write_text("\n".join(lines) + "\n")
    for i in range(1, final + 1):
        tiny_bmp(base / case("testing_data") / "C-NMC_test_final_phase_data" / f"{i}.bmp")
    return base

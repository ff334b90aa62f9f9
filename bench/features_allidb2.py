"""Classification sanity of the handcrafted features on real cells (ALL-IDB2, 260 images).

    .venv/bin/python bench/features_allidb2.py [--data ../shared/data] [--jobs 2]

All four families on every ALL-IDB2 cell, once with the expert masks and once with
leukoscope's own segmentation (``segment_cell`` with the segment stage's default settings),
each followed by the
classification of ``leukoscope.classifiers.models.build_pipeline("svm")`` (median
imputation, standardisation, RBF-SVM with C = 1) in stratified 5-fold cross-validation
(shuffled, seed 0; ALL-IDB2 has no patient ids, so only image-level splits exist).
Prints the accuracy of each. ``tests/features/test_allidb2_accuracy.py`` asserts the floor.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile
from sklearn.model_selection import StratifiedKFold, cross_val_score

from leukoscope.classifiers.models import build_pipeline
from leukoscope.features.registry import compute_features
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.segmentation_settings import segmentation_options
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.expert_masks import decode_allidb2_mask

MASKS = ("expert", "leukoscope")
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _features(item: tuple[Path, str]) -> tuple[np.ndarray, str]:
    path, masks = item
    image = read_image(path)
    if masks == "expert":
        labels = decode_allidb2_mask(tifffile.imread(path.parent.parent / "masks" / path.name))
    else:
        labels = segment_cell(image, **segmentation_options(Config().segmentation)).labels
    result = compute_features(image, labels)
    return np.array(list(result.values.values())), result.qc_flag


def evaluate(data: Path, *, masks: str, jobs: int = 1, seed: int = 0) -> dict[str, float]:
    """Cross-validated accuracy of an RBF-SVM on the handcrafted features of ALL-IDB2.

    Parameters
    ----------
    data : Path
        The shared data folder (holding ``all-idb2/img`` and ``all-idb2/masks``).
    masks : str
        ``expert`` (the published masks) or ``leukoscope`` (``segment_cell``).
    jobs : int
        Parallel workers for the features.
    seed : int
        Seed of the fold shuffling and of the SVM's probability calibration.

    Returns
    -------
    dict
        ``accuracy`` (mean over folds), ``fold_min``, ``images``, ``flagged`` (cells with a
        non-empty ``qc_flag``).
    """
    paths = sorted((data / "all-idb2" / "img").glob("*.tif"))
    rows = list(parallel_map(_features, [(p, masks) for p in paths], jobs=jobs, quiet=True))
    x = np.stack([values for values, _ in rows])
    y = np.array([int(p.stem.endswith("_1")) for p in paths])  # ImNNN_1 = blast (ALL)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(build_pipeline("svm", seed=seed), x, y, cv=folds, scoring="accuracy")
    return {"accuracy": float(scores.mean()), "fold_min": float(scores.min()), "images": len(paths),
            "flagged": sum(1 for _, flag in rows if flag)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (default ../shared/data)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    for masks in MASKS:
        r = evaluate(args.data, masks=masks, jobs=args.jobs)
        print(f"ALL-IDB2, {masks} masks: accuracy {r['accuracy']:.3f} (worst fold {r['fold_min']:.3f}), "
              f"{r['images']} cells, {r['flagged']} with a qc_flag; RBF-SVM, stratified 5-fold")


if __name__ == "__main__":
    main()

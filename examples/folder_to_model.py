"""From a folder of single-cell images to a fitted ALL/HEM model and a plot, with the library alone.

    python examples/folder_to_model.py FOLDER OUT

FOLDER holds the cell images in sub-folders named ``all`` and ``hem`` at any depth, as in
C-NMC's ``training_data/fold_0/all/...`` (try ``leukoscope demo-data demo`` and
``python examples/folder_to_model.py demo/C-NMC_Leukemia/training_data out``). Every image is
read (``read_image``), segmented (``segment_cell``) and measured (``HandcraftedFeatures``); a
logistic regression is cross-validated with no subject on both sides of a split (C-NMC file
names ``UID_<subject>_...`` give the subject; other files are their own subject) and fitted
on all cells. OUT receives:

- ``model.joblib``: the fitted pipeline; ``joblib.load(...).predict_proba(pairs)[:, 1]`` is
  P(ALL) of ``(image, labels)`` pairs;
- ``model.png``: the cross-validated P(ALL) of each class and the largest coefficients.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from leukoscope.features import HandcraftedFeatures
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation import segment_cell

CLASSES = {"hem": 0, "all": 1}
SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
SUBJECT = re.compile(r"^UID_(H?\d+)_")  # C-NMC: UID_<subject>_<image>_<cell>_<class>.bmp


def find_cells(folder: Path) -> list[tuple[Path, int, str]]:
    """Every image in an ``all`` or ``hem`` folder: its path, class (1 = ALL) and subject."""
    cells = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in SUFFIXES and path.parent.name.lower() in CLASSES:
            match = SUBJECT.match(path.name)
            cells.append((path, CLASSES[path.parent.name.lower()], match.group(1) if match else path.stem))
    return cells


def cross_validate(model: Pipeline, x: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> np.ndarray | None:
    """Subject-held-out P(ALL) of every cell, or None when a class has fewer than two subjects."""
    folds = min(5, *(len(set(subjects[y == label])) for label in (0, 1)))
    if folds < 2:
        return None
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    return cross_val_predict(model, x, y, groups=subjects, cv=cv, method="predict_proba")[:, 1]


def plot(path: Path, names: np.ndarray, coefficients: np.ndarray, y: np.ndarray, scores: np.ndarray | None) -> None:
    """Cross-validated P(ALL) by class (when there is one) beside the 15 largest coefficients."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.6))
    if scores is None:
        left.text(0.5, 0.5, "fewer than two subjects per class:\nno subject-held-out estimate",
                  ha="center", va="center")
    else:
        left.hist([scores[y == 0], scores[y == 1]], bins=np.linspace(0, 1, 11), label=["HEM", "ALL"])
        left.set(xlabel="cross-validated P(ALL)", ylabel="cells")
        left.legend()
    top = np.argsort(np.abs(coefficients))[::-1][:15][::-1]
    right.barh(names[top], coefficients[top])
    right.set(xlabel="coefficient (standardised feature; > 0 favours ALL)")
    FigureCanvasAgg(figure).print_png(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder with the cells in all/ and hem/ sub-folders")
    parser.add_argument("out", type=Path, help="output folder (created)")
    args = parser.parse_args(argv)
    cells = find_cells(args.folder)
    if not cells:
        parser.error(f"no images in folders named 'all' or 'hem' under {args.folder}")

    kept = []
    for path, label, subject in cells:
        image = read_image(path)
        result = segment_cell(image)
        if not (result.labels == 2).any():  # blank image, or no cell or nucleus found: nothing to measure
            print(f"skipped {path.name}: {result.qc_flag}")
            continue
        kept.append(((image, result.labels), label, subject))
    pairs = [pair for pair, _, _ in kept]
    y = np.array([label for _, label, _ in kept])
    subjects = np.array([subject for _, _, subject in kept])
    print(f"{len(pairs)} cells: {int(y.sum())} ALL, {int(len(y) - y.sum())} HEM, {len(set(subjects))} subjects")

    # HandcraftedFeatures learns nothing, so the features are computed once and the classifier is
    # cross-validated on them; the saved model chains both and reads (image, labels) pairs.
    features = HandcraftedFeatures()
    x = features.fit_transform(pairs)
    classifier = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                               LogisticRegression(C=0.1, max_iter=5000))
    scores = cross_validate(classifier, x, y, subjects)
    if scores is not None:
        accuracy = balanced_accuracy_score(y, scores >= 0.5)
        print(f"subject-held-out balanced accuracy: {accuracy:.3f}")
    model = make_pipeline(features, classifier.fit(x, y))

    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.out / "model.joblib")
    plot(args.out / "model.png", features.get_feature_names_out(), classifier[-1].coef_[0], y, scores)
    print(f"wrote {args.out / 'model.joblib'} and {args.out / 'model.png'}")


if __name__ == "__main__":
    main()

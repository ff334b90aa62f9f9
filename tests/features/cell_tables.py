"""Synthetic cell tables for the statistics tests: demo-like, and one subject dominating."""

from __future__ import annotations

import numpy as np
import pandas as pd

NULL_FEATURES = [f"intensity_null_{k}_cell_gray" for k in range(30)]
PLANTED = "morph_planted_nucleus"
MIRRORED = "colour_mirrored_cell"


def cell_table(subject: np.ndarray, label: np.ndarray, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """A cell table as the features stage writes it (``sample_id, subject, label, split``, features, qc_flag)."""
    table = pd.DataFrame({
        "sample_id": [f"cell_{k}" for k in range(len(subject))],
        "subject": subject,
        "label": label,
        "split": "fold_0",
    })
    return pd.concat([table, pd.DataFrame(values), pd.DataFrame({"qc_flag": [""] * len(subject)})], axis=1)


def demo_like_cells(seed: int = 0, *, subjects: int = 8, cells: int = 20) -> pd.DataFrame:
    """``subjects`` ALL and ``subjects`` HEM subjects of ``cells`` cells, like the demo data.

    Eight per class, not the demo's six: with 6 + 6 the smallest possible Mann-Whitney p is
    2 / 924, which Benjamini-Hochberg over 31 features lifts above 0.05.

    Every feature has a subject intercept (SD 1) and cell noise (SD 1); the 30
    :data:`NULL_FEATURES` are drawn from the same distribution for both classes, :data:`PLANTED`
    is 4 higher in ALL subjects, and :data:`MIRRORED` gives the k-th HEM subject the very cells of
    the k-th ALL subject.
    """
    rng = np.random.default_rng(seed)
    names = [str(i + 1) for i in range(subjects)] + [f"H{i + 1}" for i in range(subjects)]
    subject = np.repeat(np.array(names, dtype=object), cells)
    is_all = np.repeat(np.arange(2 * subjects) < subjects, cells)
    values = {}
    for name in [*NULL_FEATURES, PLANTED]:
        intercepts = np.repeat(rng.normal(size=2 * subjects), cells)
        values[name] = 50 + intercepts + rng.normal(size=len(subject)) + 4.0 * is_all * (name == PLANTED)
    values[MIRRORED] = np.tile(values[NULL_FEATURES[0]][is_all], 2)
    return cell_table(subject, np.where(is_all, "ALL", "HEM"), values)


def dominated_cells(seed: int = 0) -> pd.DataFrame:
    """No class difference, but one ALL subject, 2 SD above the others, contributes 300 of 355 cells.

    Six ALL subjects (one of 300 cells, five of 5) and six HEM subjects of 5 cells; feature
    ``intensity_mean_cell_gray`` = subject intercept (SD 1, the big subject's fixed at +2) + cell
    noise (SD 0.5).
    """
    rng = np.random.default_rng(seed)
    names = ["1", "2", "3", "4", "5", "6", "H1", "H2", "H3", "H4", "H5", "H6"]
    counts = np.array([300] + [5] * 11)
    intercepts = np.concatenate([[2.0], rng.normal(size=11)])
    subject = np.repeat(np.array(names, dtype=object), counts)
    value = np.repeat(intercepts, counts) + 0.5 * rng.normal(size=counts.sum())
    label = np.where(np.char.startswith(subject.astype(str), "H"), "HEM", "ALL")
    return cell_table(subject, label, {"intensity_mean_cell_gray": value})

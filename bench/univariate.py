"""Time of the univariate table on a C-NMC-sized cell table, and CSV against Parquet.

    PYTHONPATH=$PWD .venv/bin/python bench/univariate.py [--cells 15000] [--subjects 118]
        [--features 389] [--boot 2000] [--statsmodels 3] [--cell-level]
        [--real runs/demo/features/handcrafted.csv]

Draws a synthetic cell table shaped like C-NMC's: ``--subjects`` subjects (58 % ALL), their cell
counts log-normal (a few subjects contribute hundreds of cells, most a few dozen) and summing
to ``--cells``, the 389 handcrafted feature columns of ``leukoscope.features.registry``, each
``feature = effect * ALL + subject intercept + cell noise`` with an intra-class correlation
drawn between 0.05 and 0.6 and an effect in one feature of ten; 2 % of the cells have their
Haralick nucleus columns undefined (NaN) and a ``qc_flag``. The values are unrounded doubles:
the worst case for compression. ``--features`` keeps the first N feature columns;
``--cell-level`` empties the subject column, so every cell is a subject of its own (a dataset
without patient ids), which makes the bootstrap's cost grow with the number of cells.

Times (wall clock, one process):

1. ``subject_table`` (median and IQR of every feature per subject);
2. ``univariate_table`` with ``--boot`` bootstrap replicates (effect sizes, Mann-Whitney tests,
   the random-intercept model on the cells of all 389 features, q values);
3. statsmodels' ``MixedLM(...).fit(reml=True)`` on the first ``--statsmodels`` features, and
   the time it would take on all of them; its estimates, standard errors and (normal-reference)
   p values are compared with ``fit_random_intercept``'s (largest relative difference), and its
   log-likelihood with ours (ours is the better maximum when the difference is >= 0).

Then writes the cell table, the subject table and the univariate table as CSV and as Parquet
(``leukoscope.pipeline.tables.write_table``) into a temporary folder, prints the sizes and the
CSV / Parquet ratio, and checks that every Parquet file reads back identical (dtypes and
values). ``--real`` adds the same size comparison for a real ``handcrafted.csv``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.features.mixed import fit_random_intercept
from leukoscope.features.registry import feature_names
from leukoscope.features.subjects import (
    feature_columns,
    subject_dictionary,
    subject_ids,
    subject_table,
)
from leukoscope.features.univariate import univariate_dictionary, univariate_table
from leukoscope.pipeline.tables import read_table, write_table

ALL_SHARE = 0.58
NAN_SHARE = 0.02


def synthetic_cells(n_cells: int, n_subjects: int, seed: int = 0) -> pd.DataFrame:
    """The synthetic cell table described in the module docstring."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, n_subjects)
    counts = np.maximum(5, np.floor(weights / weights.sum() * n_cells)).astype(int)
    counts[np.argmax(counts)] += n_cells - counts.sum()
    n_all = round(ALL_SHARE * n_subjects)
    names = [f"{i + 1}" if i < n_all else f"H{i + 1 - n_all}" for i in range(n_subjects)]
    subject = np.repeat(np.arange(n_subjects), counts)
    is_all = subject < n_all
    features = feature_names()
    icc = rng.uniform(0.05, 0.6, len(features))
    effect = np.where(rng.random(len(features)) < 0.1, rng.choice([-1.0, 1.0], len(features)), 0.0)
    intercepts = rng.normal(size=(n_subjects, len(features)))[subject]
    noise = rng.normal(size=(n_cells, len(features)))
    values = 100 + 10 * (effect * is_all[:, None] + np.sqrt(icc) * intercepts + np.sqrt(1 - icc) * noise)
    flagged = rng.random(n_cells) < NAN_SHARE
    undefined = [i for i, name in enumerate(features) if name.startswith("haralick_") and "_nucleus_" in name]
    values[np.ix_(flagged, np.array(undefined, dtype=np.intp))] = np.nan
    cells = pd.DataFrame({
        "sample_id": [f"cell_{k:05d}" for k in range(n_cells)],
        "subject": np.array(names, dtype=object)[subject],
        "label": np.where(is_all, "ALL", "HEM"),
        "split": "fold_0",
    })
    cells = pd.concat([cells, pd.DataFrame(values, columns=features)], axis=1)
    cells["qc_flag"] = np.where(flagged, "haralick:nucleus:flat", "")
    return cells


def compare_statsmodels(cells: pd.DataFrame, n_features: int) -> tuple[float, float, float]:
    """statsmodels' MixedLM on the first ``n_features`` features against ``fit_random_intercept``.

    Returns the seconds per feature of statsmodels, the largest relative difference of the
    estimate, standard error and p value (normal reference, as statsmodels), and the smallest
    difference of the REML log-likelihoods (ours minus statsmodels'; >= 0 when ours is at least
    as well maximised).
    """
    import statsmodels.api as sm

    features = feature_columns(cells)[:n_features]
    ours = fit_random_intercept(cells[features].to_numpy(), cells["subject"].to_numpy(),
                                (cells["label"] == "ALL").to_numpy(), reference="normal")
    worst, gap, start = 0.0, np.inf, time.perf_counter()
    for k, feature in enumerate(features):
        part = cells[cells[feature].notna()]
        exog = sm.add_constant((part["label"] == "ALL").to_numpy(dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.MixedLM(part[feature].to_numpy(), exog, groups=part["subject"].to_numpy()).fit(reml=True)
        for a, b in ((ours.estimate[k], fit.fe_params[1]), (ours.se[k], fit.bse_fe[1]), (ours.p[k], fit.pvalues[1])):
            worst = max(worst, abs(a - b) / abs(b))
        gap = min(gap, ours.loglike[k] - fit.llf)
    return (time.perf_counter() - start) / max(n_features, 1), worst, gap


def sizes(name: str, frame: pd.DataFrame, folder: Path, dictionary: pd.DataFrame | None) -> None:
    """Write ``frame`` both ways; print the sizes and ratio; check the Parquet file reads back identical."""
    csv = write_table(frame, folder / name, format="csv", dictionary=dictionary)
    parquet = write_table(frame, folder / name, format="parquet", dictionary=dictionary)
    pd.testing.assert_frame_equal(read_table(parquet), frame.reset_index(drop=True), check_exact=True)
    pd.testing.assert_frame_equal(read_table(csv), frame.reset_index(drop=True), check_exact=True)
    a, b = csv.stat().st_size, parquet.stat().st_size
    print(f"{name:>12}: {frame.shape[0]:>6} x {frame.shape[1]:<4} CSV {a / 1e6:8.2f} MB   Parquet {b / 1e6:8.2f} MB"
          f"   CSV/Parquet {a / b:5.2f}   read back identical: yes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=15000)
    parser.add_argument("--subjects", type=int, default=118)
    parser.add_argument("--features", type=int, default=0, help="keep the first N features (0: all 389)")
    parser.add_argument("--cell-level", action="store_true", help="no subject ids: every cell its own subject")
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--statsmodels", type=int, default=3, help="features fitted with statsmodels too")
    parser.add_argument("--real", type=Path, help="a real handcrafted.csv for the size comparison")
    args = parser.parse_args()

    cells = synthetic_cells(args.cells, args.subjects)
    if args.features:
        cells = cells.drop(columns=feature_columns(cells)[args.features:])
    if args.cell_level:
        cells["subject"] = ""
    n_features = len(feature_columns(cells))
    counts = pd.Series(subject_ids(cells)).value_counts()
    print(f"synthetic cells: {len(cells)} cells x {n_features} features, {len(counts)} subjects "
          f"(cells per subject {counts.min()}-{counts.max()})")
    start = time.perf_counter()
    subjects = subject_table(cells)
    print(f"subject_table:     {time.perf_counter() - start:7.1f} s")
    start, cpu = time.perf_counter(), time.process_time()
    table = univariate_table(cells, n_boot=args.boot)
    print(f"univariate_table:  {time.perf_counter() - start:7.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
          f"({args.boot} bootstrap replicates, mixed model on every feature)")
    if args.statsmodels and not args.cell_level:
        per_feature, worst, gap = compare_statsmodels(cells, args.statsmodels)
        print(f"statsmodels MixedLM: {per_feature:5.1f} s per feature, {per_feature * n_features:7.0f} s for all "
              f"{n_features}; on the first {args.statsmodels}: largest relative difference of estimate/SE/p "
              f"{worst:.1e}, our REML log-likelihood minus statsmodels' >= {gap:.1e}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes("cells", cells, folder, None)
        sizes("subjects", subjects, folder, subject_dictionary(feature_columns(cells)))
        sizes("univariate", table, folder, univariate_dictionary())
        if args.real:
            real = pd.read_csv(args.real, dtype={"subject": str, "qc_flag": str}, keep_default_na=False,
                               na_values={c: [""] for c in feature_names()})
            sizes("real cells", real, folder, None)


if __name__ == "__main__":
    main()

"""The segmentation QC rule of the comparison (``compare.qc``) and the report section that states it.

``keep`` (default) keeps every segmented cell; ``drop_flagged`` leaves out of every fold the cells
whose ``qc_flag`` is not empty (docs/segmentation.md lists the flags). Either way the report says
how many cells of each class were flagged, so a reader sees whether the flags fall unevenly on
the classes (a confound a classifier could use). When the segmentation used the U-Net refiner,
it also says on how many cells of each class the refiner's guard kept the threshold masks
(``refiner_skipped``): the two classes then rest on masks of two kinds in those shares.
"""

from __future__ import annotations

import pandas as pd

from leukoscope.features.choices import QcRule
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import RunLayout
from leukoscope.pipeline.report_html import Block
from leukoscope.segmentation.choices import QCFlag, Refiner
from leukoscope.segmentation.qc import SEPARATOR

QC_COUNT_COLUMNS = ["class", "segmented cells", "flagged", "flagged share"]
GLOSSARY = {
    "class": "ALL (blasts), HEM (normal) or unlabelled",
    "segmented cells": "cells of the class that the segmentation measured (before compare.qc)",
    "flagged": "of those, cells with a qc_flag (docs/segmentation.md)",
    "flagged share": "flagged / segmented cells",
    "refiner skipped": "of the segmented cells, those whose threshold masks the refiner's guard kept "
                       "(qc_flag refiner_skipped; docs/refiner.md)",
}


def flagged_counts(samples: pd.DataFrame, flags: pd.Series, *, refiner: bool = False) -> pd.DataFrame:
    """Cells and flagged cells per class (``flags``: ``qc_flag`` by sample id; missing = not segmented);
    with ``refiner`` also the cells flagged ``refiner_skipped`` and their share (column
    ``refiner skipped``, e.g. ``3 (10.0%)``)."""
    flag = samples["sample_id"].map(flags).fillna("")
    rows = []
    for label, part in flag.groupby(samples["label"].replace("", "unlabelled")):
        flagged = int((part != "").sum())
        row = [label, len(part), flagged, f"{flagged / len(part):.1%}" if len(part) else ""]
        if refiner:
            skipped = int(part.str.split(SEPARATOR).map(lambda names: QCFlag.REFINER_SKIPPED.value in names).sum())
            row.append(f"{skipped} ({skipped / len(part):.1%})" if len(part) else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=QC_COUNT_COLUMNS + (["refiner skipped"] if refiner else []))


def apply_qc(config: Config, layout: RunLayout, samples: pd.DataFrame) -> tuple[pd.DataFrame, list[Block], dict]:
    """The samples the comparison uses under ``compare.qc``, the report section, and what run.json records."""
    if not layout.segmentation_table.exists():
        return samples, [], {}
    table = pd.read_csv(layout.segmentation_table, dtype={"sample_id": str, "qc_flag": str}, keep_default_na=False)
    if "qc_flag" not in table.columns:  # a table written by hand, without the QC of the segment stage
        return samples, [], {}
    flags = table.set_index("sample_id")["qc_flag"]
    refiner = config.segmentation.refiner is not Refiner.NONE
    counts = flagged_counts(samples, flags, refiner=refiner)
    rule = QcRule(config.compare.qc)
    kept = samples
    if rule is QcRule.DROP_FLAGGED:
        kept = samples[samples["sample_id"].map(flags).fillna("") == ""].reset_index(drop=True)
    text = (f"compare.qc = {rule.value}: " + ("every segmented cell is used, flagged or not."
                                              if rule is QcRule.KEEP else
                                              f"the {len(samples) - len(kept)} flagged cells are left out of every "
                                              "fold.") +
            " Flagged cells per class (qc_flag, docs/segmentation.md): a share that differs between the classes "
            "is something a classifier can learn instead of the cells." +
            (" The masks were refined by the U-Net refiner (segmentation.refiner = unet); where its guard kept "
             "the threshold masks (refiner skipped, docs/refiner.md), a class with a higher share rests more on "
             "threshold masks than the other." if refiner else ""))
    blocks = [Block("h2", "Segmentation QC"), Block("p", text), Block("table", table=counts)]
    return kept, blocks, {"qc": rule.value, "dropped": len(samples) - len(kept),
                          "flagged": dict(zip(counts["class"], counts["flagged"].astype(int).tolist()))}


__all__ = ["QC_COUNT_COLUMNS", "apply_qc", "flagged_counts"]

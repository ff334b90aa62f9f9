"""What the segment stage writes for a person to check: montages, the QC gallery and the flag counts.

::

    segmentation/montage.png       up to 64 overlays, both classes balanced, captioned with the file name
                                   (the sample id's last part) and the label
    segmentation/montage_qc.png    the 64 cells of highest ``qc_score`` (most doubtful first)
    segmentation/gallery.html      one self-contained page: every flagged cell and an even sample of the
                                   others (at most :data:`GALLERY_LIMIT` cards), sorted by ``qc_score``,
                                   filterable by flag and label
    segmentation/qc_summary.csv    cells per ``qc_flag`` value and class
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import write_csv, write_png, write_text
from leukoscope.pipeline.layout import RunLayout
from leukoscope.segmentation.gallery import gallery_html
from leukoscope.segmentation.overlay import montage
from leukoscope.segmentation.qc import split_flags

MONTAGE_LIMIT = 64
#: most cards in gallery.html (about 23 KB each): every flagged cell first, then an even sample
GALLERY_LIMIT = 600
QC_SUMMARY_COLUMNS = ["qc_flag", "label", "cells"]


def pick_montage(labels: list[str], *, limit: int = MONTAGE_LIMIT) -> list[int]:
    """Positions of at most ``limit`` samples, spread evenly over each class, classes balanced.

    Classes are taken in sorted order (``""``, unlabelled, first); each gets an equal share,
    and a class with fewer samples than its share leaves the rest to the others.

    Parameters
    ----------
    labels : list of str
        The class of each sample.
    limit : int
        Most samples picked.

    Returns
    -------
    list of int
        Positions into ``labels``, grouped by class, in order within each class.
    """
    groups: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        groups.setdefault(label, []).append(position)
    quota = dict.fromkeys(groups, 0)
    left = min(limit, len(labels))
    while left:
        open_groups = [g for g in sorted(groups) if quota[g] < len(groups[g])]
        share = max(1, left // len(open_groups))
        for group in open_groups:
            take = min(share, len(groups[group]) - quota[group], left)
            quota[group] += take
            left -= take
    picked: list[int] = []
    for group in sorted(groups):
        members = groups[group]
        if quota[group]:
            spots = np.linspace(0, len(members) - 1, quota[group]).round().astype(int)
            picked.extend(members[i] for i in spots)
    return picked


def _overlay(layout: RunLayout, sample_id: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(layout.overlay_path(sample_id)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _write_montage(rows: pd.DataFrame, layout: RunLayout, target: Path) -> None:
    tiles = [_overlay(layout, s) for s in rows["sample_id"]]
    # the file's own name (the sample id's last part) fits a tile and finds the file
    captions = [f"{s.rsplit('__', 1)[-1]}\n{label or '?'}" for s, label in zip(rows["sample_id"], rows["label"])]
    write_png(montage(tiles, captions=captions), target)


def qc_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Cells per flag value and class (``""`` = no flag; a cell with several flags counts under each)."""
    rows = []
    for flags, label in zip(table["qc_flag"], table["label"]):
        for flag in [f.value for f in split_flags(flags)] or [""]:
            rows.append((flag, label or "unlabelled"))
    counts = pd.DataFrame(rows, columns=["qc_flag", "label"]).value_counts().rename("cells").reset_index()
    return counts.sort_values(["qc_flag", "label"], ignore_index=True)[QC_SUMMARY_COLUMNS]


def gallery_rows(table: pd.DataFrame, *, limit: int = GALLERY_LIMIT) -> pd.DataFrame:
    """The cells shown in the gallery: every flagged one, then an even sample of the others, ``limit`` in all."""
    flagged = table[table["qc_flag"] != ""]
    rest = table[table["qc_flag"] == ""]
    room = max(0, limit - len(flagged))
    if len(rest) > room:
        rest = rest.iloc[np.linspace(0, len(rest) - 1, room).round().astype(int)] if room else rest.iloc[:0]
    return pd.concat([flagged.iloc[:limit], rest])


def write_qc_outputs(table: pd.DataFrame, layout: RunLayout) -> pd.DataFrame:
    """Write the montages, the gallery and the flag counts of a segmentation table; return the counts."""
    _write_montage(table.iloc[pick_montage(list(table["label"]))], layout, layout.montage_path)
    doubtful = table.sort_values("qc_score", ascending=False, kind="stable").head(MONTAGE_LIMIT)
    _write_montage(doubtful, layout, layout.montage_qc_path)
    shown = gallery_rows(table)
    thumbnails = {s: layout.overlay_path(s).read_bytes() for s in shown["sample_id"]}
    write_text(gallery_html(shown, thumbnails),
               layout.gallery_path)
    summary = qc_summary(table)
    write_csv(summary, layout.qc_summary_path)
    return summary

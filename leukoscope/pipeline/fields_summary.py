"""What a field run sums up: detection scores against the annotations, and a montage of the cut-outs.

Written by :func:`~leukoscope.pipeline.fields_run.cut_out_fields` from its two tables
(``fields/cells.csv``, one row per cut-out; ``fields/fields.csv``, one row per field) into
``fields/detection_scores.json`` and ``fields/montage.png``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.pipeline.atomic import write_json, write_png
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.layout import RunLayout
from leukoscope.segmentation.cell import BLACK_LEVEL
from leukoscope.segmentation.detection_metrics import DetectionCounts
from leukoscope.segmentation.overlay import cell_window, montage

#: fields.csv column of the matches at each least IoU
IOUS = {"matched_iou50": 0.5, "matched_iou30": 0.3}
MONTAGE_LIMIT = 64


def _number(value: float) -> float | None:
    """``value`` for JSON: ``None`` for NaN (no annotation, or nothing detected)."""
    return None if math.isnan(value) else round(value, 6)


def detection_scores(fields: pd.DataFrame) -> dict[str, Any]:
    """Detection scores summed over the fields that carry annotations.

    Parameters
    ----------
    fields : DataFrame
        ``fields.csv`` rows: ``cells`` per field; ``boxes`` (annotated boxes) with
        ``matched_iou50`` and ``matched_iou30`` where boxes were scored, ``blasts`` (annotated
        blast centroids) with ``blasts_found`` where centroids are known; NaN elsewhere.

    Returns
    -------
    dict
        ``boxes``: per least IoU the matched, detected and annotated counts with recall,
        precision and F1, and the fields with a miss or a false positive at IoU >= 0.5;
        ``centroids``: blasts annotated and found, their recall and the fields with a miss.
        Each key only when such annotations exist; ``{}`` when none do.
    """
    scores: dict[str, Any] = {}
    boxed = fields[fields["boxes"].notna()]
    if len(boxed):
        scores["boxes"] = {"fields": len(boxed)}
        for column, iou in IOUS.items():
            counts = DetectionCounts(int(boxed[column].sum()), int(boxed["cells"].sum()), int(boxed["boxes"].sum()))
            scores["boxes"][f"iou_{iou}"] = {
                "matched": counts.matched, "detected": counts.detected, "annotated": counts.truth,
                "recall": _number(counts.recall), "precision": _number(counts.precision), "f1": _number(counts.f1),
            }
        wrong = boxed["matched_iou50"] < boxed[["cells", "boxes"]].max(axis=1)
        scores["boxes"]["fields_with_errors"] = boxed.loc[wrong, "field_id"].tolist()
    known = fields[fields["blasts"].notna()]
    if len(known):
        blasts, found = int(known["blasts"].sum()), int(known["blasts_found"].sum())
        scores["centroids"] = {
            "fields": len(known), "blasts": blasts, "found": found,
            "recall": _number(found / blasts if blasts else math.nan),
            "fields_with_misses": known.loc[known["blasts_found"] < known["blasts"], "field_id"].tolist(),
        }
    return scores


def scores_text(scores: dict[str, Any]) -> list[str]:
    """:func:`detection_scores` as lines for a person."""
    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = []
    if "boxes" in scores:
        boxes = scores["boxes"]
        lines.append(f"detection vs annotated boxes, {boxes['fields']} fields:")
        for iou in IOUS.values():
            s = boxes[f"iou_{iou}"]
            lines.append(f"  IoU >= {iou}: recall {shown(s['recall'])} ({s['matched']}/{s['annotated']}), "
                         f"precision {shown(s['precision'])} ({s['matched']}/{s['detected']}), F1 {shown(s['f1'])}")
        errors = boxes["fields_with_errors"]
        lines.append(f"  fields with a miss or a false positive at IoU >= 0.5: {len(errors)}"
                     + (f" ({', '.join(errors[:8])}{', ...' if len(errors) > 8 else ''})" if errors else ""))
    if "centroids" in scores:
        c = scores["centroids"]
        lines.append(f"blast centroids inside a detected cell: {c['found']} of {c['blasts']} in {c['fields']} fields "
                     f"(recall {shown(c['recall'])})")
    return lines


def write_montage(cells: pd.DataFrame, layout: RunLayout, *, limit: int = MONTAGE_LIMIT) -> None:
    """At most ``limit`` cut-outs spread evenly over ``cells`` (cells.csv rows), each cropped round
    its cell (the pixels above the black level), captioned with its label and ``edge``."""
    spots = np.unique(np.linspace(0, len(cells) - 1, min(len(cells), limit)).round().astype(int))
    tiles, captions = [], []
    for path, label, edge in cells.iloc[spots][["path", "label", "touches_edge"]].itertuples(index=False):
        image = read_image(path)
        tiles.append(image[cell_window(np.any(image > BLACK_LEVEL, axis=2).view(np.uint8))])
        captions.append(f"{label or '?'}{' edge' if edge else ''}")
    write_png(montage(tiles, captions=captions), layout.fields_montage)


def write_summary(layout: RunLayout, cells: pd.DataFrame, fields: pd.DataFrame) -> dict[str, Any]:
    """Write the montage, and the scores when the fields carry annotations; print and return the scores."""
    write_montage(cells, layout)
    scores = detection_scores(fields)
    if scores:
        write_json(scores, layout.detection_scores)
        print("\n".join(scores_text(scores)))
    else:
        layout.detection_scores.unlink(missing_ok=True)  # of an earlier run with annotations
    return scores


__all__ = ["IOUS", "MONTAGE_LIMIT", "detection_scores", "scores_text", "write_montage", "write_summary"]

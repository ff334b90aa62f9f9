"""White-cell detection in whole fields: drawn fields with known cells, and BCCD's annotated fields."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.segmentation.cell import CYTOPLASM, NUCLEUS
from leukoscope.segmentation.detection_metrics import DetectionCounts, box_iou, detection_counts
from leukoscope.segmentation.fields import (
    DETECTION_COLUMNS,
    Detection,
    detect_white_cells,
    detections_frame,
    nucleus_threshold,
)
from tests.segmentation.drawn_fields import RED_CELL, SCATTERED_RED, WhiteCell, draw_field

PLATELETS = ((60, 120), (100, 180), (250, 60), (200, 100))


def _boxes(detections: list[Detection]) -> np.ndarray:
    return np.array([d.box for d in detections]).reshape(-1, 4)


def test_one_white_cell_among_red_cells_and_platelets_is_found_with_its_nucleus():
    cell = WhiteCell(150, 110, 40)  # a red cell presses against it on the right
    field = draw_field(white=(cell,), red=SCATTERED_RED + ((185, 110),), platelets=PLATELETS)
    [found] = detect_white_cells(field, red_cell_diameter=RED_CELL)
    assert box_iou([found.box], [cell.box])[0, 0] > 0.9
    assert found.nucleus_area == pytest.approx(np.pi * 24**2, rel=0.1)
    assert found.area == pytest.approx(np.pi * 40**2, rel=0.1)
    assert found.centroid == pytest.approx((150, 110), abs=2)
    assert not found.touches_edge
    assert set(np.unique(found.labels)) == {0, CYTOPLASM, NUCLEUS}
    assert found.labels.shape == (found.box[3] - found.box[1], found.box[2] - found.box[0])


def test_a_field_of_red_cells_and_platelets_holds_no_white_cell():
    field = draw_field(red=SCATTERED_RED, platelets=PLATELETS + ((150, 110), (156, 112)))
    assert detect_white_cells(field, red_cell_diameter=RED_CELL) == []


def test_a_flat_field_holds_no_white_cell():
    assert detect_white_cells(np.full((120, 160, 3), 200, np.uint8), red_cell_diameter=RED_CELL) == []


def test_two_touching_white_cells_are_split_each_with_its_own_nucleus():
    pair = (WhiteCell(110, 110, 40), WhiteCell(188, 110, 40))
    found = detect_white_cells(draw_field(white=pair, red=SCATTERED_RED), red_cell_diameter=RED_CELL)
    iou = box_iou(_boxes(found), [cell.box for cell in pair])
    assert iou.shape == (2, 2)
    assert iou[0, 0] > 0.8 and iou[1, 1] > 0.8
    assert all(d.contains(cell.x, cell.y) for d, cell in zip(found, pair))


def test_the_lobes_of_one_nucleus_make_one_cell():
    cell = WhiteCell(150, 110, 36, nuclei=((-17, 0, 13), (17, 0, 13)))  # lobes 8 pixels apart
    [found] = detect_white_cells(draw_field(white=(cell,), red=SCATTERED_RED), red_cell_diameter=RED_CELL)
    assert box_iou([found.box], [cell.box])[0, 0] > 0.8
    assert found.nucleus_area == pytest.approx(2 * np.pi * 13**2, rel=0.15)


def test_a_cell_cut_by_the_field_edge_is_flagged():
    cell = WhiteCell(20, 110, 40)  # 20 of its 81 columns lie outside the field
    [found] = detect_white_cells(draw_field(white=(cell,), red=SCATTERED_RED[2:]), red_cell_diameter=RED_CELL)
    assert found.touches_edge and found.box[0] == 0


def test_detections_scale_with_the_field_and_the_red_cell_diameter():
    cells = (WhiteCell(110, 110, 40), WhiteCell(250, 150, 30, nuclei=((0, 0, 20),)))
    field = draw_field(white=cells, red=SCATTERED_RED)
    small = _boxes(detect_white_cells(field, red_cell_diameter=RED_CELL))
    large_field = np.repeat(np.repeat(field, 3, axis=0), 3, axis=1)
    large = _boxes(detect_white_cells(large_field, red_cell_diameter=3 * RED_CELL))
    assert len(small) == len(large) == 2
    assert np.diag(box_iou(large, 3 * small)).min() > 0.9


def test_a_mirrored_field_gives_mirrored_detections():
    cells = (WhiteCell(110, 110, 40), WhiteCell(250, 150, 30, nuclei=((0, 0, 20),)))
    field = draw_field(white=cells, red=SCATTERED_RED)
    boxes = _boxes(detect_white_cells(field, red_cell_diameter=RED_CELL))
    mirrored = _boxes(detect_white_cells(field[:, ::-1].copy(), red_cell_diameter=RED_CELL))
    width = field.shape[1]
    expected = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    assert len(mirrored) == len(expected) == 2
    assert box_iou(mirrored, expected).max(axis=1).min() > 0.95


def test_bad_inputs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="uint8"):
        detect_white_cells(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="red-cell diameter in the field's pixels"):
        detect_white_cells(np.zeros((10, 10, 3), np.uint8), red_cell_diameter=0)


def test_nucleus_threshold_splits_the_top_class_and_keeps_its_floor():
    # 60% background at 120, 30% pale stain at 150, 10% nuclei at 230: the upper Otsu split
    values = np.repeat(np.array([120, 150, 230], np.uint8), [60, 30, 10]).reshape(10, 10)
    assert nucleus_threshold(values, min_contrast=10) == 150.0  # integer bins: the foreground is > 150
    # a field without nuclei: the three-class split would fall between 120 and 150
    values = np.repeat(np.array([120, 135, 150], np.uint8), [60, 30, 10]).reshape(10, 10)
    assert nucleus_threshold(values, min_contrast=40) == 160.0  # median 120 + 40
    assert nucleus_threshold(np.full((4, 4), 7, np.uint8), min_contrast=40) == 47.0


def test_detection_geometry_on_a_hand_made_mask():
    labels = np.zeros((4, 6), np.uint8)
    labels[1:3, 1:5] = CYTOPLASM
    labels[1:3, 2:4] = NUCLEUS  # cell pixels at columns 1-4, rows 1-2
    detection = Detection(box=(10, 20, 16, 24), labels=labels, touches_edge=False)
    assert (detection.area, detection.nucleus_area) == (8, 4)
    assert detection.centroid == (12.5, 21.5)
    assert detection.contains(11, 21) and detection.contains(14.4, 22.4)
    assert not detection.contains(10, 21) and not detection.contains(100, 100)
    table = detections_frame([detection])
    assert list(table.columns) == DETECTION_COLUMNS
    assert table.iloc[0][["x0", "y1", "area"]].tolist() == [10, 24, 8]
    assert detections_frame([]).empty and list(detections_frame([]).columns) == DETECTION_COLUMNS


@pytest.mark.shared_data
@pytest.mark.slow
def test_bccd_white_cells_are_found_with_recall_and_precision_of_at_least_098(shared_data):
    from leukoscope.pipeline.fields_sources import load_voc
    from leukoscope.pipeline.imageio import read_image

    if not (shared_data / "bccd" / "Annotations").is_dir():
        pytest.skip(f"BCCD not found at {shared_data / 'bccd'}")
    source = load_voc(shared_data / "bccd")
    assert len(source.fields) == 292
    truth = {key: group[["x0", "y0", "x1", "y1"]].to_numpy() for key, group in source.annotations.groupby("field_id")}
    counts = DetectionCounts(0, 0, 0)
    for field_id, path in zip(source.fields["field_id"], source.fields["path"]):
        boxes = _boxes(detect_white_cells(read_image(path)))
        counts = counts + detection_counts(boxes, truth.get(field_id, np.zeros((0, 4))), min_iou=0.5)
    assert counts.truth == 301
    assert counts.recall >= 0.98 and counts.precision >= 0.98, pd.Series(vars(counts))

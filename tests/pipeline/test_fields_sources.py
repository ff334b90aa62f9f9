"""Field loaders: an ALL-IDB1 tree and a Pascal-VOC tree written here, and a plain folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leukoscope.pipeline.dataset_base import DatasetError
from leukoscope.pipeline.fields_sources import (
    ANNOTATION_COLUMNS,
    FIELD_COLUMNS,
    allidb1_cell_labels,
    load_allidb1,
    load_field_folder,
    load_voc,
    read_xyc,
)
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation.detection_metrics import centroid_hits
from leukoscope.segmentation.fields import detect_white_cells
from tests.pipeline.field_trees import write_jpeg
from tests.segmentation.drawn_fields import RED_CELL, SCATTERED_RED, WhiteCell, draw_field

#: ImNNN_1 holds two white cells; the left one is a blast (its centroid is in the .xyc)
BLAST_FIELD = (WhiteCell(90, 110, 36), WhiteCell(230, 110, 36))
NORMAL_FIELD = (WhiteCell(160, 110, 36),)


@pytest.fixture
def allidb1(tmp_path: Path) -> Path:
    """ALL_IDB1/{im,xyc}: a blast field, a normal field, a blast field without .xyc, a stray file."""
    root = tmp_path / "ALL_IDB1"
    red = ((30, 30), (290, 30), (25, 200), (300, 210), (150, 215))
    write_jpeg(root / "im" / "Im001_1.jpg", draw_field(white=BLAST_FIELD, red=red))
    write_jpeg(root / "im" / "Im002_0.jpg", draw_field(white=NORMAL_FIELD, red=red, seed=1))
    write_jpeg(root / "im" / "Im003_1.jpg", draw_field(white=NORMAL_FIELD, red=red, seed=2))
    write_jpeg(root / "im" / "notes.jpg", draw_field(red=red))
    (root / "xyc").mkdir()
    (root / "xyc" / "Im001_1.xyc").write_text("93 108\n\n")
    (root / "xyc" / "Im002_0.xyc").write_text("")
    return root


def test_allidb1_fields_their_labels_and_blast_centroids(allidb1: Path):
    source = load_allidb1(allidb1.parent)  # the parent of ALL_IDB1/ is found too
    assert list(source.fields.columns) == FIELD_COLUMNS
    assert source.fields[["field_id", "label"]].values.tolist() == [["Im001_1", "ALL"], ["Im002_0", "HEM"]]
    assert list(source.annotations.columns) == ANNOTATION_COLUMNS
    blast = source.annotations.iloc[0]
    assert len(source.annotations) == 1
    assert (blast["field_id"], blast["kind"], blast["x"], blast["y"]) == ("Im001_1", "blast", 93.0, 108.0)
    assert np.isnan(blast[["x0", "y0", "x1", "y1"]].astype(float)).all()
    reasons = {Path(r["path"]).name: r["reason"] for r in source.rejected}
    assert set(reasons) == {"Im003_1.jpg", "notes.jpg"}
    assert "Im003_1.xyc" in reasons["Im003_1.jpg"] and "ImNNN_Y" in reasons["notes.jpg"]


def test_every_blast_centroid_lands_in_its_cut_out_and_cells_get_the_documented_labels(allidb1: Path):
    source = load_allidb1(allidb1)
    labels = {}
    for field_id, path, field_label in source.fields.itertuples(index=False):
        detections = detect_white_cells(read_image(path), red_cell_diameter=RED_CELL)
        blasts = source.annotations.loc[source.annotations["field_id"] == field_id, ["x", "y"]].to_numpy()
        hits = centroid_hits(blasts, detections)
        drawn = BLAST_FIELD if field_label == "ALL" else NORMAL_FIELD
        assert len(detections) == len(drawn)
        # the centroid (93, 108) was drawn in the left cell, which is detected first
        assert hits.tolist() == ([0] if field_label == "ALL" else [])
        assert detections[0].contains(drawn[0].x, drawn[0].y)
        labels[field_id] = allidb1_cell_labels(detections, blasts, field_label)
    assert labels == {"Im001_1": ["ALL", ""], "Im002_0": ["HEM"]}


def test_a_cell_holding_a_centroid_is_a_blast_even_in_a_field_named_normal():
    field = draw_field(white=NORMAL_FIELD, red=SCATTERED_RED)
    detections = detect_white_cells(field, red_cell_diameter=RED_CELL)
    assert allidb1_cell_labels(detections, np.array([[160.0, 110.0]]), "HEM") == ["ALL"]
    assert allidb1_cell_labels(detections, np.zeros((0, 2)), "ALL") == [""]
    with pytest.raises(ValueError, match="'ALL' or 'HEM'"):
        allidb1_cell_labels(detections, np.zeros((0, 2)), "")


def test_xyc_lines_may_use_tabs_commas_and_blank_lines(tmp_path: Path):
    path = tmp_path / "Im001_1.xyc"
    path.write_text("10 20\n\n30\t40.5\n 50,60 \n")
    np.testing.assert_array_equal(read_xyc(path), [[10, 20], [30, 40.5], [50, 60]])
    path.write_text("")
    assert read_xyc(path).shape == (0, 2)
    path.write_text("10 20\n10 20 30\n")
    with pytest.raises(DatasetError, match="line 2: expected two numbers"):
        read_xyc(path)


def test_an_unreadable_xyc_rejects_its_field(allidb1: Path):
    (allidb1 / "xyc" / "Im001_1.xyc").write_text("x y\n")
    source = load_allidb1(allidb1)
    assert source.fields["field_id"].tolist() == ["Im002_0"]
    assert any("line 1" in r["reason"] for r in source.rejected)


def test_allidb1_without_an_im_folder_says_what_to_give(tmp_path: Path):
    with pytest.raises(DatasetError, match="holds im/ and xyc/"):
        load_allidb1(tmp_path)


VOC_XML = """<annotation>
  <filename>{name}.jpg</filename>
  <size><width>64</width><height>48</height><depth>3</depth></size>
  <object><name>WBC</name><truncated>1</truncated>
    <bndbox><xmin>1</xmin><ymin>5</ymin><xmax>20</xmax><ymax>48</ymax></bndbox></object>
  <object><name>RBC</name>
    <bndbox><xmin>30</xmin><ymin>10</ymin><xmax>40</xmax><ymax>20</ymax></bndbox></object>
  <object><name> wbc </name>
    <bndbox><xmin>41.5</xmin><ymin>2</ymin><xmax>64</xmax><ymax>12</ymax></bndbox></object>
</annotation>
"""


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """Annotations/ + JPEGImages/: a field with two white cells and a red cell, a field with none
    annotated, an image without annotation, an annotation without image, a broken file."""
    root = tmp_path / "BCCD"
    (root / "Annotations").mkdir(parents=True)
    for name in ("a", "b", "orphan"):
        (root / "Annotations" / f"{name}.xml").write_text(VOC_XML.format(name=name))
    (root / "Annotations" / "b.xml").write_text("<annotation><filename>b.jpg</filename></annotation>")
    (root / "Annotations" / "broken.xml").write_text("<annotation><object>")
    for name in ("a", "b", "unannotated"):
        write_jpeg(root / "JPEGImages" / f"{name}.jpg", np.full((48, 64, 3), 200, np.uint8))
    return root


def test_voc_white_cell_boxes_become_0_based_with_exclusive_ends(voc: Path):
    source = load_voc(voc)
    assert source.fields["field_id"].tolist() == ["a", "b"]  # b: annotated, holds no white cell
    assert source.fields["label"].tolist() == ["", ""]
    boxes = source.annotations[["kind", "x0", "y0", "x1", "y1"]].values.tolist()
    assert boxes == [["WBC", 0.0, 4.0, 20.0, 48.0], ["wbc", 40.5, 1.0, 64.0, 12.0]]
    assert source.annotations[["x", "y"]].values.tolist() == [[10.0, 26.0], [52.25, 6.5]]
    reasons = {Path(r["path"]).name: r["reason"] for r in source.rejected}
    assert set(reasons) == {"orphan.xml", "broken.xml", "unannotated.jpg"}
    assert "no image 'orphan.jpg'" in reasons["orphan.xml"] and "without an annotation" in reasons["unannotated.jpg"]


def test_voc_classes_choose_the_objects_kept(voc: Path):
    assert load_voc(voc, classes=None).annotations["kind"].tolist() == ["WBC", "RBC", "wbc"]
    assert load_voc(voc, classes=["RBC"]).annotations[["x0", "x1"]].values.tolist() == [[29.0, 40.0]]


def test_voc_without_annotations_says_what_to_give(tmp_path: Path):
    with pytest.raises(DatasetError, match="Annotations/ and JPEGImages/"):
        load_voc(tmp_path)


def test_a_plain_folder_of_fields_is_unlabelled_and_unannotated(voc: Path):
    source = load_field_folder(voc / "JPEGImages")
    assert source.fields["field_id"].tolist() == ["a", "b", "unannotated"]
    assert (source.fields["label"] == "").all() and source.annotations.empty
    assert list(source.annotations.columns) == ANNOTATION_COLUMNS
    with pytest.raises(DatasetError, match="is not a folder"):
        load_field_folder(voc / "nothing")


@pytest.mark.shared_data
def test_bccd_holds_301_white_cells_in_292_fields(shared_data: Path):
    if not (shared_data / "bccd" / "Annotations").is_dir():
        pytest.skip(f"BCCD not found at {shared_data / 'bccd'}")
    source = load_voc(shared_data / "bccd")
    per_field = source.annotations.groupby("field_id").size()
    assert (len(source.fields), len(source.annotations), source.rejected) == (292, 301, [])
    assert per_field.value_counts().to_dict() == {1: 279, 2: 11}  # and 2 fields with none
    assert (source.annotations["x0"] >= 0).all() and (source.annotations["x1"] <= 640).all()

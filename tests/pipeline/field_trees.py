"""Whole-field data sets written by the tests: an ALL-IDB1 tree and a Pascal-VOC tree of drawn fields.

Every field is a 240x320 drawing (tests/segmentation/drawn_fields.py) with red cells of
diameter ``RED_CELL`` (40 pixels) and white cells whose boxes and centres are known, so the
tests know which cut-out each blast centroid and each annotated box belongs to.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.segmentation.drawn_fields import WhiteCell, draw_field

RED = ((30, 30), (290, 30), (25, 200), (300, 210), (150, 215))  # clear of every white cell below
BLAST = WhiteCell(90, 110, 38, nuclei=((0, 0, 29),))  # a larger cell, mostly nucleus
NORMAL = WhiteCell(230, 110, 34, nuclei=((0, 0, 20),))
EDGE = WhiteCell(160, 12, 36)  # cut by the field's top edge
#: ALL-IDB1 fields: name -> (white cells, blast centroids (x, y) of the .xyc)
ALLIDB1_FIELDS = {
    "Im001_1": ((BLAST, NORMAL), ((93, 108),)),
    "Im002_1": ((BLAST, NORMAL), ((88, 112),)),
    "Im003_1": ((BLAST, WhiteCell(230, 110, 38, nuclei=((0, 0, 29),))), ((90, 110), (231, 109))),
    "Im004_1": ((BLAST, NORMAL), ((90, 111),)),
    "Im005_0": ((WhiteCell(90, 110, 34, nuclei=((0, 0, 20),)), NORMAL), ()),
    "Im006_0": ((WhiteCell(90, 110, 34, nuclei=((0, 0, 20),)), NORMAL), ()),
    "Im007_0": ((WhiteCell(90, 110, 34, nuclei=((0, 0, 20),)), NORMAL), ()),
    "Im008_0": ((EDGE, WhiteCell(90, 110, 34, nuclei=((0, 0, 20),)), NORMAL), ()),
}
#: the labels of each field's cut-outs in the detector's order (row of the nucleus' first pixel)
ALLIDB1_LABELS = {
    "Im001_1": ["ALL", ""], "Im002_1": ["ALL", ""], "Im003_1": ["ALL", "ALL"], "Im004_1": ["ALL", ""],
    "Im005_0": ["HEM", "HEM"], "Im006_0": ["HEM", "HEM"], "Im007_0": ["HEM", "HEM"], "Im008_0": ["HEM", "HEM", "HEM"],
}


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Write an RGB field as a JPEG of quality 95, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_allidb1_tree(root: Path) -> Path:
    """``root/ALL_IDB1/{im,xyc}`` with :data:`ALLIDB1_FIELDS`, a stray file the loader rejects, and
    a truncated field (``Im009_0.jpg``) and a field 4100 pixels wide (``Im010_0.jpg``) that the
    field step rejects; returns ``root/ALL_IDB1``."""
    top = root / "ALL_IDB1"
    for seed, (name, (white, blasts)) in enumerate(ALLIDB1_FIELDS.items()):
        write_jpeg(top / "im" / f"{name}.jpg", draw_field(white=white, red=RED, seed=seed))
        (top / "xyc").mkdir(parents=True, exist_ok=True)
        (top / "xyc" / f"{name}.xyc").write_text("".join(f"{x} {y}\n" for x, y in blasts))
    write_jpeg(top / "im" / "notes.jpg", draw_field(red=RED))
    whole = (top / "im" / "Im001_1.jpg").read_bytes()
    (top / "im" / "Im009_0.jpg").write_bytes(whole[: len(whole) // 3])
    write_jpeg(top / "im" / "Im010_0.jpg", np.full((20, 4100, 3), 190, np.uint8))
    return top


VOC_OBJECT = "<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>" \
             "<ymax>{y1}</ymax></bndbox></object>"


def _voc_xml(name: str, white_boxes: list[tuple[int, int, int, int]]) -> str:
    """A VOC annotation with the white cells' boxes (0-based, exclusive ends: written 1-based
    inclusive) and one red cell."""
    objects = [VOC_OBJECT.format(name="WBC", x0=x0 + 1, y0=y0 + 1, x1=x1, y1=y1) for x0, y0, x1, y1 in white_boxes]
    objects.append(VOC_OBJECT.format(name="RBC", x0=11, y0=11, x1=50, y1=50))
    return f"<annotation><filename>{name}.jpg</filename>{''.join(objects)}</annotation>"


#: VOC fields: name -> (white cells drawn, white cells annotated)
VOC_FIELDS = {"a": ((BLAST, NORMAL), (BLAST, NORMAL)), "b": ((NORMAL,), ())}


def make_voc_tree(root: Path) -> Path:
    """``root/BCCD/{Annotations,JPEGImages}`` with :data:`VOC_FIELDS`: in ``a`` both drawn cells are
    boxed, in ``b`` the one drawn cell is not (a false positive for the detector); returns ``root/BCCD``."""
    top = root / "BCCD"
    (top / "Annotations").mkdir(parents=True)
    for seed, (name, (white, boxed)) in enumerate(VOC_FIELDS.items()):
        write_jpeg(top / "JPEGImages" / f"{name}.jpg", draw_field(white=white, red=RED, seed=seed))
        (top / "Annotations" / f"{name}.xml").write_text(_voc_xml(name, [cell.box for cell in boxed]))
    return top

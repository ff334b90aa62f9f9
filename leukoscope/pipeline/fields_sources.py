"""Whole smear fields on disk: ALL-IDB1, Pascal-VOC boxes (BCCD), a plain folder of photographs.

Every loader returns a :class:`FieldSource` of two plain tables:

- ``fields``: one row per field, string columns ``field_id, path, label``; ``label`` is ``ALL``
  for an ALL-IDB1 field that holds blasts (``ImNNN_1``), ``HEM`` for one that holds none
  (``ImNNN_0``), ``""`` otherwise; ``field_id`` comes from the path relative to the root
  (unique, stable, safe as a file name); ``path`` is absolute.
- ``annotations``: one row per annotated object, columns ``field_id, kind, x, y, x0, y0, x1,
  y1``. ALL-IDB1 blast centroids have ``kind`` ``blast`` and ``(x, y)``, their box columns NaN.
  VOC boxes have ``kind`` the object's ``<name>`` (``WBC`` for BCCD's white cells), the box
  in the convention of :mod:`leukoscope.segmentation.detection_metrics` (0-based, ``x1``/``y1``
  exclusive: VOC's 1-based inclusive ``xmin..xmax`` becomes ``xmin - 1 .. xmax``), and
  ``(x, y)`` its centre.

Files that cannot be used are listed in ``rejected`` with the reason; the rest is returned.

How cells cut out of an ALL-IDB1 field are labelled (:func:`allidb1_cell_labels`): a cell
whose mask holds a blast centroid is ``ALL``; every other cell of an ``ImNNN_0`` field is
``HEM``; any other cell of an ``ImNNN_1`` field is ``""`` (unlabelled, to be left out of
training and scoring). The experts marked the blasts only, so such a cell is most likely
normal, but it may also be a blast whose mark fell outside the mask found for it; calling it
HEM would put such blasts in the normal class, while leaving it out loses no correct label.
"""

from __future__ import annotations

import logging
import math
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.pipeline.dataset_base import DatasetError, child_dir, make_sample_id, walk_images
from leukoscope.segmentation.detection_metrics import centroid_hits
from leukoscope.segmentation.fields import Detection

log = logging.getLogger(__name__)

FIELD_COLUMNS = ["field_id", "path", "label"]
ANNOTATION_COLUMNS = ["field_id", "kind", "x", "y", "x0", "y0", "x1", "y1"]
WHITE_CELL_CLASSES = ("WBC",)
_ALLIDB1_NAME = re.compile(r"^Im(\d+)_([01])$", re.IGNORECASE)
_NUMBER_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass
class FieldSource:
    """The fields of a data set, their annotations, and the files that could not be used."""

    fields: pd.DataFrame
    annotations: pd.DataFrame
    root: Path
    rejected: list[dict[str, str]] = field(default_factory=list)


def _source(root: Path, fields: list[dict], annotations: list[dict], rejected: list[dict[str, str]]) -> FieldSource:
    for item in rejected:
        log.warning("skipped %s: %s", item["path"], item["reason"])
    table = pd.DataFrame(fields, columns=FIELD_COLUMNS).astype(str).reset_index(drop=True)
    notes = pd.DataFrame(annotations, columns=ANNOTATION_COLUMNS)
    notes[ANNOTATION_COLUMNS[2:]] = notes[ANNOTATION_COLUMNS[2:]].astype(np.float64)
    return FieldSource(table, notes.reset_index(drop=True), root, rejected)


def _field(root: Path, path: Path, label: str = "") -> dict[str, str]:
    return {"field_id": make_sample_id(path.relative_to(root)), "path": os.path.realpath(path), "label": label}


def _subfolder(root: Path, name: str, layout: str) -> Path:
    """``root/name`` or ``root/<one folder>/name``, ignoring case; else a DatasetError naming ``layout``."""
    for parent in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
        found = child_dir(parent, name)
        if found is not None:
            return found
    raise DatasetError(f"no '{name}' folder in {root}; give the {layout}")


# ------------------------------------------------------------------------------ ALL-IDB1
def read_xyc(path: str | Path) -> np.ndarray:
    """Blast centroids of an ALL-IDB1 ``.xyc`` file: one ``x y`` pair (pixels) per line.

    Parameters
    ----------
    path : str or Path
        The file. Blank lines are skipped; numbers may be separated by spaces, tabs, commas
        or semicolons.

    Returns
    -------
    (N, 2) float64 ndarray
        ``(x, y)`` per blast (column, row); empty for an empty file.

    Raises
    ------
    DatasetError
        A line does not hold exactly two numbers (the message gives the file and line).
    """
    path = Path(path)
    points = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = [token for token in _NUMBER_SEPARATORS.split(line.strip()) if token]
        if not fields:
            continue
        try:
            x, y = (float(token) for token in fields)
        except ValueError:
            raise DatasetError(
                f"{path.name}, line {number}: expected two numbers 'x y', got {line.strip()!r}; "
                "fix or remove that line"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DatasetError(
                f"{path.name}, line {number}: the centroid {line.strip()!r} is not finite; fix that line"
            )
        points.append((x, y))
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def load_allidb1(root: str | Path) -> FieldSource:
    """Read ALL-IDB1: fields ``im/ImNNN_Y.jpg`` and blast centroids ``xyc/ImNNN_Y.xyc``.

    Parameters
    ----------
    root : str or Path
        The folder holding ``im/`` and ``xyc/`` (or its parent).

    Returns
    -------
    FieldSource
        ``label`` ``ALL`` for ``Y`` = 1 (the field holds blasts), ``HEM`` for ``Y`` = 0;
        one ``blast`` annotation per centroid. A ``Y`` = 0 field without its ``.xyc`` holds
        no blasts. Rejected: names other than ``ImNNN_Y``, ``Y`` = 1 fields without their
        ``.xyc`` (their blasts cannot be located), and unreadable ``.xyc`` files.

    Raises
    ------
    DatasetError
        There is no ``im/`` folder.
    """
    root = Path(root)
    images = _subfolder(root, "im", "ALL-IDB1 folder that holds im/ and xyc/")
    centroid_folder = images.parent / "xyc"
    centroid_files = {p.stem.lower(): p for p in centroid_folder.glob("*.xyc")} if centroid_folder.is_dir() else {}
    fields: list[dict] = []
    annotations: list[dict] = []
    rejected: list[dict[str, str]] = []
    for path in walk_images(images):
        match = _ALLIDB1_NAME.match(path.stem)
        if match is None:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": "file name is not ALL-IDB1's ImNNN_Y (Y = 1: the field holds blasts, 0: none)"})
            continue
        blasts = match.group(2) == "1"
        centroid_file = centroid_files.get(path.stem.lower())
        if centroid_file is None and blasts:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": f"blast field without {path.stem}.xyc, so its blasts cannot be located; "
                                       "put the file in xyc/ beside im/"})
            continue
        try:
            points = read_xyc(centroid_file) if centroid_file is not None else np.zeros((0, 2))
        except (DatasetError, OSError) as error:
            rejected.append({"path": str(centroid_file), "stage": "load", "reason": str(error)})
            continue
        row = _field(images, path, "ALL" if blasts else "HEM")
        fields.append(row)
        annotations.extend({"field_id": row["field_id"], "kind": "blast", "x": x, "y": y} for x, y in points)
    return _source(root, fields, annotations, rejected)


def allidb1_cell_labels(detections: Sequence[Detection], blasts: np.ndarray, field_label: str) -> list[str]:
    """Labels of the cells detected in one ALL-IDB1 field (the rule is in the module docstring).

    Parameters
    ----------
    detections : sequence of Detection
        The field's white cells.
    blasts : (N, 2) array-like
        Its blast centroids ``(x, y)``.
    field_label : str
        The field's label: ``ALL`` (``ImNNN_1``) or ``HEM`` (``ImNNN_0``).

    Returns
    -------
    list of str
        One per detection: ``ALL``, ``HEM`` or ``""``.
    """
    if field_label not in ("ALL", "HEM"):
        raise ValueError(f"field_label must be 'ALL' or 'HEM' (an ALL-IDB1 field), got {field_label!r}")
    hits = centroid_hits(blasts, detections)
    holds_blast = np.zeros(len(detections), dtype=bool)
    holds_blast[hits[hits >= 0]] = True
    other = "HEM" if field_label == "HEM" else ""
    return ["ALL" if blast else other for blast in holds_blast]


# ------------------------------------------------------------------------------ Pascal VOC
def _voc_boxes(xml_path: Path, classes: set[str] | None) -> tuple[str, list[dict]]:
    """The image file name and the kept objects of one VOC annotation file."""
    tree = ElementTree.parse(xml_path)
    filename = (tree.findtext("filename") or "").strip()
    objects = []
    for item in tree.iter("object"):
        name = (item.findtext("name") or "").strip()
        if classes is not None and name.lower() not in classes:
            continue
        box = item.find("bndbox")
        if box is None:
            raise ValueError(f"an object '{name}' has no <bndbox>")
        xmin, ymin, xmax, ymax = (float(box.findtext(tag, "nan")) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmax < xmin or ymax < ymin:
            raise ValueError(f"an object '{name}' has an incomplete or inverted <bndbox>")
        x0, y0, x1, y1 = max(0.0, xmin - 1.0), max(0.0, ymin - 1.0), xmax, ymax
        centre = {"x": (x0 + x1) / 2.0, "y": (y0 + y1) / 2.0}
        objects.append({"kind": name, **centre, "x0": x0, "y0": y0, "x1": x1, "y1": y1})
    return filename, objects


def load_voc(root: str | Path, *, classes: Sequence[str] | None = WHITE_CELL_CLASSES) -> FieldSource:
    """Read Pascal-VOC fields: ``JPEGImages/*.jpg`` with ``Annotations/*.xml`` (BCCD's layout).

    Parameters
    ----------
    root : str or Path
        The folder holding ``Annotations/`` and ``JPEGImages/`` (or its parent).
    classes : sequence of str or None
        Object names kept, ignoring case (default: BCCD's white cells, ``WBC``); ``None``
        keeps every object.

    Returns
    -------
    FieldSource
        One field per annotation file whose image exists (a field without any kept object
        is a field annotated to hold none); ``label`` is ``""``. Rejected: images without an
        annotation file (they are not known to hold no white cell), annotation files without
        their image, and unreadable annotation files.

    Raises
    ------
    DatasetError
        There is no ``Annotations/`` folder.
    """
    root = Path(root)
    notes = _subfolder(root, "Annotations", "Pascal-VOC folder that holds Annotations/ and JPEGImages/")
    images_folder = notes.parent / "JPEGImages"
    images = {p.name.lower(): p for p in walk_images(images_folder)} if images_folder.is_dir() else {}
    by_stem = {p.stem.lower(): p for p in images.values()}
    wanted = None if classes is None else {name.lower() for name in classes}
    fields: list[dict] = []
    annotations: list[dict] = []
    rejected: list[dict[str, str]] = []
    used: set[Path] = set()
    for xml_path in sorted(notes.glob("*.xml")):
        try:
            filename, objects = _voc_boxes(xml_path, wanted)
        except (ElementTree.ParseError, ValueError, OSError) as error:
            rejected.append({"path": str(xml_path), "stage": "load", "reason": f"unreadable VOC annotation: {error}"})
            continue
        image = images.get(filename.lower()) or by_stem.get(xml_path.stem.lower())
        if image is None:
            rejected.append({"path": str(xml_path), "stage": "load",
                             "reason": f"no image '{filename or xml_path.stem}' in {images_folder}"})
            continue
        used.add(image)
        row = _field(images_folder, image)
        fields.append(row)
        annotations.extend({"field_id": row["field_id"], **item} for item in objects)
    rejected.extend({"path": str(p), "stage": "load", "reason": "image without an annotation file in Annotations/"}
                    for p in sorted(set(images.values()) - used))
    return _source(root, fields, annotations, rejected)


# ------------------------------------------------------------------------------ plain folder
def load_field_folder(root: str | Path) -> FieldSource:
    """Every image below ``root`` as an unlabelled, unannotated field (a lab's photographs).

    Raises
    ------
    DatasetError
        ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give the folder that holds the field photographs")
    return _source(root, [_field(root, path) for path in walk_images(root)], [], [])

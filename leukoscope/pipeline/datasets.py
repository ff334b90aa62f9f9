"""Dataset loaders: one samples table whatever the layout on disk.

Every loader returns a :class:`LoadedDataset` whose ``samples`` table has the string columns
``sample_id, path, label, subject, split``:

- ``label`` is ``ALL`` (blast), ``HEM`` (normal) or ``""`` when unknown;
- ``subject`` is the patient id, ``""`` when the dataset has none;
- ``split`` is the dataset's own split (``fold_0``... ``prelim_test``, ``final_test``) or ``""``;
- ``sample_id`` is derived from the path relative to the dataset root, so it is unique, stable
  across runs and safe as a file name;
- ``path`` is absolute.

Files that cannot be matched (a C-NMC preliminary-test image without a labels row, a labels
row without an image, a manifest row whose path is missing or escapes the manifest's folder)
are returned in ``rejected`` with a reason; the run goes on with what matches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from leukoscope.pipeline.choices import FIELD_KINDS, DatasetKind
from leukoscope.pipeline.cnmc import cnmc_top, load_cnmc, parse_cnmc_name
from leukoscope.pipeline.dataset_base import (
    CLASS_NAMES,
    FOLD,
    DatasetError,
    LoadedDataset,
    child_dir,
    is_image,
    make_sample_id,
    missing_file_reason,
    sample_row,
    samples_table,
    walk_images,
)
from leukoscope.pipeline.imageio import IMAGE_SUFFIXES

_ALLIDB_NAME = re.compile(r"^Im(\d{3})_([01])$", re.IGNORECASE)


def _allidb_folder(root: Path) -> Path:
    img = child_dir(root, "img")
    return img if img is not None else root


def load_allidb2(root: str | Path) -> LoadedDataset:
    """Read ALL-IDB2: ``ImNNN_Y.tif`` with ``Y`` 1 (blast, ALL) or 0 (normal, HEM); no subjects.

    ``root`` may be the folder of the images or its parent holding ``img/`` (and ``masks/``).
    """
    root = Path(root)
    folder = _allidb_folder(root)
    rows, rejected = [], []
    for path in walk_images(folder):
        match = _ALLIDB_NAME.match(path.stem)
        if match is None:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": "file name is not ALL-IDB2's ImNNN_Y (Y = 1 blast, 0 normal)"})
            continue
        rows.append(sample_row(folder, path, "ALL" if match.group(2) == "1" else "HEM"))
    return LoadedDataset(samples_table(rows, rejected), DatasetKind.ALLIDB2, root, rejected)


# --------------------------------------------------------------------------------- folders
def load_folder(root: str | Path) -> LoadedDataset:
    """Read a class-folder layout (``root/<class>/...``) or a flat folder of images.

    The label comes from the nearest enclosing folder whose name is a class name
    (:data:`CLASS_NAMES`: all/blast/1 -> ALL, hem/normal/0 -> HEM), empty when none is.
    A C-NMC-style file name still gives its subject (and its label when no folder does).
    """
    root = Path(root)
    rows: list[dict[str, str]] = []
    rejected: list[dict[str, str]] = []
    for path in walk_images(root):
        parents = [p.lower() for p in path.relative_to(root).parts[:-1]]
        label = next((CLASS_NAMES[p] for p in reversed(parents) if p in CLASS_NAMES), "")
        parsed = parse_cnmc_name(path.stem)
        subject = parsed[0] if parsed else ""
        if not label and parsed:
            label = parsed[1]
        split = next((f"fold_{m.group(1)}" for p in parents if (m := FOLD.match(p))), "")
        rows.append(sample_row(root, path, label, subject, split))
    return LoadedDataset(samples_table(rows, rejected), DatasetKind.FOLDER, root, rejected)


def _normalise_label(value: str) -> str | None:
    value = value.strip()
    if value in ("ALL", "HEM", ""):
        return value
    return CLASS_NAMES.get(value.lower())


def load_manifest(csv_path: str | Path) -> LoadedDataset:
    """Read a manifest CSV with columns ``path,label[,subject][,split]``.

    Relative paths are taken from the CSV's folder. A path that is missing, or that leaves the
    CSV's folder through ``..``, is rejected with its reason.
    """
    csv_path = Path(csv_path)
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    table.columns = [c.strip().lower() for c in table.columns]
    if not {"path", "label"} <= set(table.columns):
        raise DatasetError(
            f"manifest '{csv_path}' has columns {list(table.columns)}; it needs path,label "
            "and may have subject and split"
        )
    base = csv_path.parent.resolve()
    rows, rejected = [], []
    for i, record in table.iterrows():
        raw = record["path"].strip()
        where = f"row {i + 2} of manifest '{csv_path.name}'"
        if ".." in Path(raw).parts:
            rejected.append({"path": raw, "stage": "load", "reason": f"{where}: path contains '..'; paths must stay inside the manifest's folder or be absolute"})
            continue
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        label = _normalise_label(record["label"])
        if label is None:
            rejected.append({"path": raw, "stage": "load", "reason": f"{where}: label {record['label']!r} is not ALL/HEM (or all/hem, blast/normal, 1/0)"})
            continue
        if not path.is_file():
            rejected.append({"path": str(path), "stage": "load", "reason": f"{where}: {missing_file_reason(path)}"})
            continue
        try:
            relative = path.resolve().relative_to(base)
        except ValueError:
            relative = Path(*path.resolve().parts[1:])
        rows.append({
            "sample_id": make_sample_id(relative),
            "path": str(path.resolve()),
            "label": label,
            "subject": record.get("subject", "").strip(),
            "split": record.get("split", "").strip(),
        })
    return LoadedDataset(samples_table(rows, rejected), DatasetKind.MANIFEST, csv_path, rejected)


# --------------------------------------------------------------------------------- detection
def detect_kind(root: str | Path) -> DatasetKind:
    """Which layout ``root`` holds: manifest CSV, C-NMC, ALL-IDB2, or a generic folder."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return DatasetKind.MANIFEST
        raise DatasetError(f"'{root}' is a file but not a manifest .csv; pass a folder of images or a manifest CSV")
    if cnmc_top(root) is not None:
        return DatasetKind.CNMC
    folder = _allidb_folder(root)
    names = [p.stem for p in sorted(folder.iterdir()) if is_image(p)] if folder.is_dir() else []
    if names and all(_ALLIDB_NAME.match(n) for n in names):
        return DatasetKind.ALLIDB2
    return DatasetKind.FOLDER


_LOADERS = {
    DatasetKind.CNMC: load_cnmc,
    DatasetKind.ALLIDB2: load_allidb2,
    DatasetKind.FOLDER: load_folder,
    DatasetKind.MANIFEST: load_manifest,
}


def load_dataset(root: str | Path, kind: DatasetKind | str = DatasetKind.AUTO) -> LoadedDataset:
    """Load a dataset of any supported layout.

    Parameters
    ----------
    root : str or Path
        Folder of the dataset, or a manifest CSV.
    kind : DatasetKind or str
        Layout to read; ``auto`` detects it (:func:`detect_kind`).

    Raises
    ------
    DatasetError
        The path does not exist, holds no image at all, or ``kind`` is a layout of whole fields
        (:data:`~leukoscope.pipeline.choices.FIELD_KINDS`, read by :mod:`~leukoscope.pipeline.fields_run`).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(
            f"data path '{root}' does not exist; pass --data with the dataset folder "
            f"(or `leukoscope demo-data {root}` to create the demo set there)"
        )
    kind = DatasetKind(kind)
    if kind in FIELD_KINDS:
        raise DatasetError(f"'{root}' read as {kind.value} holds whole smear fields, not cells; run "
                           "`leukoscope fields` (or segment/features/compare) on it to cut its white cells out")
    if kind is DatasetKind.AUTO:
        kind = detect_kind(root)
    loaded = _LOADERS[kind](root)
    if loaded.samples.empty:
        raise DatasetError(
            f"no images found in '{root}' read as {kind.value} (looked for {', '.join(IMAGE_SUFFIXES)}); "
            "check --data, or force the layout with --dataset cnmc|allidb2|folder|manifest"
        )
    return loaded

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

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.imageio import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ["sample_id", "path", "label", "subject", "split"]

#: Folder names (lower case) that name a class in the generic folder layout.
CLASS_NAMES = {
    "all": "ALL", "blast": "ALL", "blasts": "ALL", "1": "ALL", "malignant": "ALL", "leukemia": "ALL",
    "hem": "HEM", "normal": "HEM", "0": "HEM", "healthy": "HEM", "benign": "HEM",
}
_CNMC_NAME = re.compile(r"^UID_(H?\d+)_(\d+)_(\d+)_(all|hem)$", re.IGNORECASE)
_ALLIDB_NAME = re.compile(r"^Im(\d{3})_([01])$", re.IGNORECASE)
_FOLD = re.compile(r"^fold_?(\d+)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DatasetError(ValueError):
    """The dataset cannot be read at all; the message names the path and the fix."""


@dataclass
class LoadedDataset:
    """The samples of a dataset, what could not be matched, and which layout was read."""

    samples: pd.DataFrame
    kind: DatasetKind
    root: Path
    rejected: list[dict[str, str]] = field(default_factory=list)


def parse_cnmc_name(name: str) -> tuple[str, str] | None:
    """Subject and label of a C-NMC training-style file name.

    ``UID_H10_43_1_hem.bmp`` -> ``("H10", "HEM")``; ``UID_11_10_1_all`` -> ``("11", "ALL")``.
    ALL and HEM subjects are separate namespaces, so the whole token is the subject id.
    Returns ``None`` for other names.
    """
    match = _CNMC_NAME.match(Path(name).stem if "." in name else name)
    if match is None:
        return None
    return match.group(1).upper(), match.group(4).upper()


def make_sample_id(relative: str | Path) -> str:
    """File-name-safe id from a path relative to the dataset root (``a/b/c.bmp`` -> ``a__b__c``).

    Accents are dropped (``é`` -> ``e``); every other character outside ``A-Za-z0-9._-``
    becomes ``_``, so the id is never empty, never holds a path separator and never starts
    with a dot (``_`` is put before one).
    """
    parts = Path(relative).with_suffix("").parts
    bare = ("".join(c for c in unicodedata.normalize("NFKD", p) if not unicodedata.combining(c)) for p in parts)
    sample_id = "__".join(_UNSAFE.sub("_", p) for p in bare)
    return sample_id if sample_id and not sample_id.startswith(".") else f"_{sample_id}"


def missing_file_reason(path: Path) -> str:
    """Why a listed file cannot be opened: it is gone, or is a symbolic link leading nowhere."""
    if path.is_symlink():
        return "file is a symbolic link that loops or points to nothing; replace it with the image or a working link"
    return "file does not exist"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _walk_images(folder: Path) -> list[Path]:
    """Images below ``folder``, sorted, without following symbolic links to folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if _is_image(Path(f)))
    return found


def _child(folder: Path, name: str) -> Path | None:
    """The child of ``folder`` whose name equals ``name`` ignoring case."""
    if not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir()):
        if entry.name.lower() == name.lower() and entry.is_dir():
            return entry
    return None


def _find_dirs(folder: Path, name: str, depth: int = 3) -> list[Path]:
    """Folders named ``name`` (any case) at most ``depth`` levels below ``folder``."""
    hits = []
    for dirpath, dirnames, _ in os.walk(folder):
        level = len(Path(dirpath).relative_to(folder).parts)
        if level >= depth:
            dirnames[:] = []
        dirnames.sort()
        hits.extend(Path(dirpath) / d for d in dirnames if d.lower() == name.lower())
    return hits


def _table(rows: list[dict[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS).astype(str)
    dupes = frame["sample_id"].duplicated(keep=False)
    if dupes.any():  # same stem, other extension (001.bmp, 001.png): keep the extension
        frame.loc[dupes, "sample_id"] = [
            f"{sid}_{Path(path).suffix.lstrip('.').lower()}"
            for sid, path in zip(frame.loc[dupes, "sample_id"], frame.loc[dupes, "path"])
        ]
    dupes = frame["sample_id"].duplicated(keep=False)
    if dupes.any():  # relative paths that differ only by characters unsafe in file names
        frame.loc[dupes, "sample_id"] = [
            f"{sid}__{i}" for i, sid in zip(frame.index[dupes], frame.loc[dupes, "sample_id"])
        ]
    return frame.reset_index(drop=True)


def _row(root: Path, path: Path, label: str = "", subject: str = "", split: str = "") -> dict[str, str]:
    return {
        "sample_id": make_sample_id(path.relative_to(root)),
        "path": os.path.realpath(path),  # unlike Path.resolve, never raises on a symbolic-link loop
        "label": label,
        "subject": subject,
        "split": split,
    }


# --------------------------------------------------------------------------------- C-NMC
def _cnmc_top(root: Path) -> Path | None:
    """The folder holding ``training_data``/``validation_data``/``testing_data``."""
    markers = ("training_data", "validation_data", "testing_data")
    for candidate in [root, *(p for p in sorted(root.iterdir()) if p.is_dir())] if root.is_dir() else []:
        if any(_child(candidate, m) for m in markers):
            return candidate
    return None


def load_cnmc(root: str | Path) -> LoadedDataset:
    """Read C-NMC 2019 as distributed (see ``docs/cnmc-layout.md``), tolerating mirror variants.

    Training images get ``split`` ``fold_0``/``fold_1``/``fold_2`` from their fold folder
    (``train`` when a mirror dropped the fold folders), label from the file name (or the class
    folder), subject from the file name. Preliminary-test images get their label and subject
    from the labels CSV, matched on either its ``new_names`` or its ``Patient_ID`` column; the
    final test set is unlabelled.
    """
    root = Path(root)
    top = _cnmc_top(root)
    if top is None:
        raise DatasetError(
            f"'{root}' does not look like C-NMC 2019: no training_data, validation_data or "
            "testing_data folder in it or one level below; point --data at the C-NMC_Leukemia folder"
        )
    rows: list[dict[str, str]] = []
    rejected: list[dict[str, str]] = []
    training = _child(top, "training_data")
    if training is not None:
        for path in _walk_images(training):
            parsed = parse_cnmc_name(path.stem)
            parts = [p.lower() for p in path.relative_to(training).parts[:-1]]
            fold = next((f"fold_{m.group(1)}" for p in parts if (m := _FOLD.match(p))), "train")
            folder_label = next((CLASS_NAMES[p] for p in parts if p in ("all", "hem")), "")
            if parsed is None and not folder_label:
                rejected.append({"path": str(path), "stage": "load",
                                 "reason": "training file name is not UID_<subject>_<image>_<cell>_<all|hem> and no all/hem folder gives its class"})
                continue
            subject, label = parsed if parsed else ("", folder_label)
            rows.append(_row(top, path, label, subject, fold))
    validation = _child(top, "validation_data") or top
    prelim_dirs = _find_dirs(validation, "C-NMC_test_prelim_phase_data", depth=2)
    if prelim_dirs:
        rows_p, rejected_p = _load_cnmc_prelim(top, validation, prelim_dirs[0])
        rows += rows_p
        rejected += rejected_p
    testing = _child(top, "testing_data")
    if testing is not None:
        for path in _walk_images(testing):
            rows.append(_row(top, path, split="final_test"))
    return LoadedDataset(_table(rows), DatasetKind.CNMC, root, rejected)


def _load_cnmc_prelim(top: Path, validation: Path, folder: Path) -> tuple[list[dict], list[dict]]:
    images = _walk_images(folder)
    csvs = sorted(p for p in validation.rglob("*.csv") if "prelim" in p.name.lower())
    if not csvs:
        log.warning("no preliminary-test labels CSV found under %s; its %d images are unlabelled", validation, len(images))
        return [_row(top, p, split="prelim_test") for p in images], []
    labels_csv = csvs[0]
    table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    needed = {"Patient_ID", "new_names", "labels"}
    if not needed <= set(table.columns):
        raise DatasetError(
            f"labels CSV '{labels_csv}' has columns {list(table.columns)}; expected Patient_ID,new_names,labels"
        )
    by_name: dict[str, int] = {}
    for i, (patient, new) in enumerate(zip(table["Patient_ID"], table["new_names"])):
        by_name[Path(new.strip()).name.lower()] = i
        by_name[Path(patient.strip()).name.lower()] = i
        by_name.setdefault(Path(patient.strip()).stem.lower() + ".bmp", i)
    rows, rejected, matched = [], [], set()
    for path in images:
        i = by_name.get(path.name.lower())
        if i is None:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": f"no row for this file in labels CSV '{labels_csv.name}'"})
            continue
        matched.add(i)
        record = table.iloc[i]
        label = {"1": "ALL", "0": "HEM"}.get(record["labels"].strip())
        if label is None:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": f"labels CSV '{labels_csv.name}' gives label {record['labels']!r}; expected 1 (ALL) or 0 (HEM)"})
            continue
        parsed = parse_cnmc_name(Path(record["Patient_ID"].strip()).stem)
        rows.append(_row(top, path, label, parsed[0] if parsed else "", "prelim_test"))
    if images and not matched:
        raise DatasetError(
            f"labels CSV '{labels_csv}' matches none of the {len(images)} images in '{folder}' "
            "(by new_names or Patient_ID); check that the CSV belongs to this folder"
        )
    missing = [i for i in range(len(table)) if i not in matched]
    for i in missing:
        rejected.append({"path": str(folder / table["new_names"].iloc[i].strip()), "stage": "load",
                         "reason": f"row {i + 2} of labels CSV '{labels_csv.name}' has no image file"})
    if missing:
        log.warning("%d rows of %s have no image file; %d images have no row",
                    len(missing), labels_csv.name, sum(r["reason"].startswith("no row") for r in rejected))
    return rows, rejected


# --------------------------------------------------------------------------------- ALL-IDB2
def _allidb_folder(root: Path) -> Path:
    img = _child(root, "img")
    return img if img is not None else root


def load_allidb2(root: str | Path) -> LoadedDataset:
    """Read ALL-IDB2: ``ImNNN_Y.tif`` with ``Y`` 1 (blast, ALL) or 0 (normal, HEM); no subjects.

    ``root`` may be the folder of the images or its parent holding ``img/`` (and ``masks/``).
    """
    root = Path(root)
    folder = _allidb_folder(root)
    rows, rejected = [], []
    for path in _walk_images(folder):
        match = _ALLIDB_NAME.match(path.stem)
        if match is None:
            rejected.append({"path": str(path), "stage": "load",
                             "reason": "file name is not ALL-IDB2's ImNNN_Y (Y = 1 blast, 0 normal)"})
            continue
        rows.append(_row(folder, path, "ALL" if match.group(2) == "1" else "HEM"))
    return LoadedDataset(_table(rows), DatasetKind.ALLIDB2, root, rejected)


# --------------------------------------------------------------------------------- folders
def load_folder(root: str | Path) -> LoadedDataset:
    """Read a class-folder layout (``root/<class>/...``) or a flat folder of images.

    The label comes from the nearest enclosing folder whose name is a class name
    (:data:`CLASS_NAMES`: all/blast/1 -> ALL, hem/normal/0 -> HEM), empty when none is.
    A C-NMC-style file name still gives its subject (and its label when no folder does).
    """
    root = Path(root)
    rows = []
    for path in _walk_images(root):
        parents = [p.lower() for p in path.relative_to(root).parts[:-1]]
        label = next((CLASS_NAMES[p] for p in reversed(parents) if p in CLASS_NAMES), "")
        parsed = parse_cnmc_name(path.stem)
        subject = parsed[0] if parsed else ""
        if not label and parsed:
            label = parsed[1]
        split = next((f"fold_{m.group(1)}" for p in parents if (m := _FOLD.match(p))), "")
        rows.append(_row(root, path, label, subject, split))
    return LoadedDataset(_table(rows), DatasetKind.FOLDER, root)


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
    return LoadedDataset(_table(rows), DatasetKind.MANIFEST, csv_path, rejected)


# --------------------------------------------------------------------------------- detection
def detect_kind(root: str | Path) -> DatasetKind:
    """Which layout ``root`` holds: manifest CSV, C-NMC, ALL-IDB2, or a generic folder."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return DatasetKind.MANIFEST
        raise DatasetError(f"'{root}' is a file but not a manifest .csv; pass a folder of images or a manifest CSV")
    if _cnmc_top(root) is not None:
        return DatasetKind.CNMC
    folder = _allidb_folder(root)
    names = [p.stem for p in sorted(folder.iterdir()) if _is_image(p)] if folder.is_dir() else []
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
        The path does not exist, or holds no image at all.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(
            f"data path '{root}' does not exist; pass --data with the dataset folder "
            f"(or `leukoscope demo-data {root}` to create the demo set there)"
        )
    kind = DatasetKind(kind)
    if kind is DatasetKind.AUTO:
        kind = detect_kind(root)
    loaded = _LOADERS[kind](root)
    if loaded.samples.empty:
        raise DatasetError(
            f"no images found in '{root}' read as {kind.value} (looked for {', '.join(IMAGE_SUFFIXES)}); "
            "check --data, or force the layout with --dataset cnmc|allidb2|folder|manifest"
        )
    return loaded

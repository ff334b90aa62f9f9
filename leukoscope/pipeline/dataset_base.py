"""What every dataset loader returns and the helpers they share (:mod:`leukoscope.pipeline.datasets`)."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.imageio import IMAGE_SUFFIXES
from leukoscope.pipeline.layout import Stage, is_run_dir

SAMPLE_COLUMNS = ["sample_id", "path", "label", "subject", "split"]
#: Folder names (lower case) that name a class in the generic folder layout.
CLASS_NAMES = {
    "all": "ALL", "blast": "ALL", "blasts": "ALL", "1": "ALL", "malignant": "ALL", "leukemia": "ALL",
    "hem": "HEM", "normal": "HEM", "0": "HEM", "healthy": "HEM", "benign": "HEM",
}
FOLD = re.compile(r"^fold_?(\d+)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: longest sample id: ``<id>.png`` and its temporary name stay far below the 255-byte name limit
MAX_ID = 128


class DatasetError(ValueError):
    """The dataset cannot be read at all; the message names the path and the fix."""


@dataclass
class LoadedDataset:
    """The samples of a dataset, what could not be matched, and which layout was read."""

    samples: pd.DataFrame
    kind: DatasetKind
    root: Path
    rejected: list[dict[str, str]] = field(default_factory=list)


def make_sample_id(relative: str | Path) -> str:
    """File-name-safe id from a path relative to the dataset root (``a/b/c.bmp`` -> ``a__b__c``).

    Accents are dropped (``é`` -> ``e``); every other character outside ``A-Za-z0-9._-``
    becomes ``_``, so the id is never empty, never holds a path separator and never starts
    with a dot (``_`` is put before one). An id longer than :data:`MAX_ID` characters keeps its
    first characters and ends with a hash of the whole id, so output file names stay legal.
    """
    parts = Path(relative).with_suffix("").parts
    bare = ("".join(c for c in unicodedata.normalize("NFKD", p) if not unicodedata.combining(c)) for p in parts)
    sample_id = "__".join(_UNSAFE.sub("_", p) for p in bare)
    sample_id = sample_id if sample_id and not sample_id.startswith(".") else f"_{sample_id}"
    if len(sample_id) > MAX_ID:
        digest = hashlib.sha256(sample_id.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        sample_id = f"{sample_id[:MAX_ID - 17]}_{digest}"
    return sample_id


def shown_path(path: str | Path) -> str:
    """``path`` as text that is valid UTF-8: bytes of a name that is not are written ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def undecodable_reason(path: str | Path) -> str:
    """The ``rejected.csv`` reason of a file whose name is not valid UTF-8 ("" when it is)."""
    if shown_path(path) == str(path):
        return ""
    return ("file name is not valid UTF-8 (its bytes are shown as \\xNN); rename the file with UTF-8 "
            "characters (e.g. convmv -f latin1 -t utf-8 --notest FILE) so that it can be listed in the manifest")


def missing_file_reason(path: Path) -> str:
    """Why a listed file cannot be opened: it is gone, or is a symbolic link leading nowhere."""
    if path.is_symlink():
        return "file is a symbolic link that loops or points to nothing; replace it with the image or a working link"
    return "file does not exist"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def walk_images(folder: Path) -> list[Path]:
    """Images below ``folder``, sorted, without following symbolic links to folders and without
    entering hidden folders or leukoscope run directories (a run's overlays are no cells)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not is_run_dir(Path(dirpath) / d))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if is_image(Path(f)))
    return found


def child_dir(folder: Path, name: str) -> Path | None:
    """The child of ``folder`` whose name equals ``name`` ignoring case."""
    if not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir()):
        if entry.name.lower() == name.lower() and entry.is_dir():
            return entry
    return None


def find_dirs(folder: Path, name: str, depth: int = 3) -> list[Path]:
    """Folders named ``name`` (any case) at most ``depth`` levels below ``folder``."""
    hits = []
    for dirpath, dirnames, _ in os.walk(folder):
        level = len(Path(dirpath).relative_to(folder).parts)
        if level >= depth:
            dirnames[:] = []
        dirnames.sort()
        hits.extend(Path(dirpath) / d for d in dirnames if d.lower() == name.lower())
    return hits


def samples_table(rows: list[dict[str, str]], rejected: list[dict[str, str]]) -> pd.DataFrame:
    """The samples table of ``rows``, with unique sample ids; a row whose file name is not valid
    UTF-8 goes to ``rejected`` instead (:func:`undecodable_reason`)."""
    for row in rows:
        if reason := undecodable_reason(row["path"]):
            rejected.append({"path": shown_path(row["path"]), "stage": Stage.LOAD.value, "reason": reason})
    rows = [row for row in rows if not undecodable_reason(row["path"])]
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


def sample_row(root: Path, path: Path, label: str = "", subject: str = "", split: str = "") -> dict[str, str]:
    return {
        "sample_id": make_sample_id(path.relative_to(root)),
        "path": os.path.realpath(path),  # unlike Path.resolve, never raises on a symbolic-link loop
        "label": label,
        "subject": subject,
        "split": split,
    }


# --------------------------------------------------------------------------------- C-NMC

"""The C-NMC 2019 layout (docs: ../shared/docs/cnmc-layout.md): training folds, preliminary test with its
labels CSV, final test (unlabelled)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.dataset_base import (
    CLASS_NAMES,
    FOLD,
    DatasetError,
    LoadedDataset,
    child_dir,
    find_dirs,
    sample_row,
    samples_table,
    walk_images,
)

log = logging.getLogger(__name__)

_CNMC_NAME = re.compile(r"^UID_(H?\d+)_(\d+)_(\d+)_(all|hem)$", re.IGNORECASE)


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


def cnmc_top(root: Path) -> Path | None:
    """The folder holding ``training_data``/``validation_data``/``testing_data``."""
    markers = ("training_data", "validation_data", "testing_data")
    for candidate in [root, *(p for p in sorted(root.iterdir()) if p.is_dir())] if root.is_dir() else []:
        if any(child_dir(candidate, m) for m in markers):
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
    top = cnmc_top(root)
    if top is None:
        raise DatasetError(
            f"'{root}' does not look like C-NMC 2019: no training_data, validation_data or "
            "testing_data folder in it or one level below; point --data at the C-NMC_Leukemia folder"
        )
    rows: list[dict[str, str]] = []
    rejected: list[dict[str, str]] = []
    training = child_dir(top, "training_data")
    if training is not None:
        for path in walk_images(training):
            parsed = parse_cnmc_name(path.stem)
            parts = [p.lower() for p in path.relative_to(training).parts[:-1]]
            fold = next((f"fold_{m.group(1)}" for p in parts if (m := FOLD.match(p))), "train")
            folder_label = next((CLASS_NAMES[p] for p in parts if p in ("all", "hem")), "")
            if parsed is None and not folder_label:
                rejected.append({"path": str(path), "stage": "load",
                                 "reason": "training file name is not UID_<subject>_<image>_<cell>_<all|hem> and no all/hem folder gives its class"})
                continue
            subject, label = parsed if parsed else ("", folder_label)
            rows.append(sample_row(top, path, label, subject, fold))
    validation = child_dir(top, "validation_data") or top
    prelim_dirs = find_dirs(validation, "C-NMC_test_prelim_phase_data", depth=2)
    if prelim_dirs:
        rows_p, rejected_p = _load_cnmc_prelim(top, validation, prelim_dirs[0])
        rows += rows_p
        rejected += rejected_p
    testing = child_dir(top, "testing_data")
    if testing is not None:
        for path in walk_images(testing):
            rows.append(sample_row(top, path, split="final_test"))
    return LoadedDataset(samples_table(rows, rejected), DatasetKind.CNMC, root, rejected)


def _load_cnmc_prelim(top: Path, validation: Path, folder: Path) -> tuple[list[dict], list[dict]]:
    images = walk_images(folder)
    csvs = sorted(p for p in validation.rglob("*.csv") if "prelim" in p.name.lower())
    if not csvs:
        log.warning("no preliminary-test labels CSV found under %s; its %d images are unlabelled", validation, len(images))
        return [sample_row(top, p, split="prelim_test") for p in images], []
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
        rows.append(sample_row(top, path, label, parsed[0] if parsed else "", "prelim_test"))
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


__all__ = ["cnmc_top", "load_cnmc", "parse_cnmc_name"]

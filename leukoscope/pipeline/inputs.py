"""Checks of the listed input images before any stage runs: each is a readable regular file of a
plausible size (hashed), and an image listed twice (under two labels, or one) is pointed out."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from leukoscope.pipeline.dataset_base import missing_file_reason
from leukoscope.pipeline.imageio import ImageReadError, check_regular_file
from leukoscope.pipeline.layout import sha256_file

log = logging.getLogger(__name__)


def hash_input(path: str) -> tuple[str, str]:
    """SHA-256 of an input image, or ``""`` and why it cannot be used.

    Only a regular file of at most :data:`~leukoscope.pipeline.imageio.MAX_FILE_BYTES` is read,
    so a named pipe or a link to a device (``/dev/zero``) is rejected instead of read forever.
    """
    try:
        check_regular_file(path)
        return sha256_file(path), ""
    except ImageReadError as exc:
        return "", str(exc)
    except OSError as exc:
        if not Path(path).exists():  # gone since loading, or a link that loops or leads nowhere
            return "", missing_file_reason(Path(path))
        return "", f"file cannot be read ({exc.strerror or exc}); check that you may read it"


def warn_about_copies(samples: pd.DataFrame) -> dict[str, int]:
    """Warn about images listed more than once (same SHA-256), and count them.

    A copy under another label is a labelling error (a cell cannot be both ALL and HEM); a copy
    under the same label can land on both sides of a split and inflate the scores. Both are
    kept (which copy is right cannot be known), and named in the warning.

    Parameters
    ----------
    samples : DataFrame
        ``path``, ``label`` and ``sha256`` of every sample.

    Returns
    -------
    dict
        ``copies``: samples whose bytes an earlier sample has; ``conflicting``: images (distinct
        contents) listed under more than one label.
    """
    labels = samples[samples["label"] != ""].groupby("sha256", sort=False)["label"].nunique()
    conflicting = labels[labels > 1]
    copies = int(samples["sha256"].duplicated().sum())
    if len(conflicting):
        example = samples[samples["sha256"] == conflicting.index[0]]
        named = " = ".join(f"'{Path(path).name}' ({label or 'unlabelled'})"
                           for path, label in zip(example["path"], example["label"]))
        log.warning("%d images are listed more than once with different labels (e.g. %s); a cell cannot be both "
                    "ALL and HEM: correct the labels or remove the wrong copies", len(conflicting), named[:300])
    same = copies - int((samples["sha256"].value_counts()[conflicting.index] - 1).sum())
    if same:
        log.warning("%d images are byte-identical copies of another image with the same label; a copy on each side "
                    "of a split makes the scores look better than they are", same)
    return {"copies": copies, "conflicting": len(conflicting)}


__all__ = ["hash_input", "warn_about_copies"]

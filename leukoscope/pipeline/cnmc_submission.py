"""C-NMC 2019 submission files for the preliminary and final test sets.

The challenge (CodaLab, 2019) took a ZIP archive holding one text file ``isbi_valid.predict``
with one line per test image, in the order of the image numbers (``1.bmp``, ``2.bmp``, ...):
``1`` for ALL, ``0`` for HEM. The official challenge page is no longer online; the format is
taken from the participants' published submission code, e.g. Prellberg & Kramer's
``submission.py`` (https://github.com/jprellberg/isbi2019cancer, the rank-2 entry: it writes the
2,586 final-phase labels with ``numpy.savetxt(..., '%d')`` and zips them as
``isbi_valid.predict``), and other entries' code that writes the same file for the preliminary set.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from leukoscope.pipeline.atomic import atomic_path

MEMBER = "isbi_valid.predict"
#: the C-NMC splits whose images are numbered ``N.bmp``
TEST_SPLITS = ("prelim_test", "final_test")
_NUMBERED = re.compile(r"^(\d+)\.bmp$", re.IGNORECASE)


def image_number(path: str | Path) -> int | None:
    """The number of a C-NMC test image (``.../17.bmp`` -> 17), None for other names."""
    match = _NUMBERED.match(Path(path).name)
    return int(match.group(1)) if match else None


def missing_numbers(calls: dict[int, int]) -> list[int]:
    """The image numbers from 1 to the largest one that have no call."""
    return [n for n in range(1, max(calls, default=0) + 1) if n not in calls]


def submission_text(calls: dict[int, int]) -> str:
    """``isbi_valid.predict``: one ``1`` (ALL) or ``0`` (HEM) per image, image 1 first.

    Raises
    ------
    ValueError
        An image number between 1 and the largest has no call, or a call is not 0 or 1.
    """
    missing = missing_numbers(calls)
    if missing:
        raise ValueError(f"{len(missing)} image number(s) have no call (first {missing[0]}); a submission needs "
                         "one line per image")
    if set(calls.values()) - {0, 1}:
        raise ValueError("calls must be 1 (ALL) or 0 (HEM)")
    return "".join(f"{calls[n]}\n" for n in sorted(calls))


def write_submission(calls: dict[int, int], target: str | Path) -> None:
    """Write the submission ZIP (holding :data:`MEMBER`) atomically; see :func:`submission_text`."""
    text = submission_text(calls)
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MEMBER, text)


__all__ = ["MEMBER", "TEST_SPLITS", "image_number", "missing_numbers", "submission_text", "write_submission"]

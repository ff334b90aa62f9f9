"""Blocks of consecutive sample numbers: a proxy for source fields when subjects are unknown.

ALL-IDB2's 260 crops (``Im001_1`` ... ``Im260_0``) were cut from the larger fields of ALL-IDB1,
and neighbouring numbers tend to come from one field, sharing its stain, illumination and
background. An image-level split puts crops of one field on both sides; grouping the folds by
blocks of ``block_size`` consecutive numbers keeps most neighbours together. The block is a
proxy: the file names do not record the field, so a block may hold crops of two fields and one
field may span two blocks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from leukoscope.classifiers.errors import EvaluationError

DEFAULT_BLOCK_SIZE = 10
"""Consecutive sample numbers per block."""

_NUMBER = re.compile(r"(\d+)")


def sample_numbers(sample_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """The sample number in every id: the first run of digits after its last ``__``.

    Parameters
    ----------
    sample_ids : (n,) sequence of str
        E.g. ``Im042_1`` or ``img__Im042_1`` (number 42).

    Returns
    -------
    (n,) int ndarray

    Raises
    ------
    EvaluationError
        An id holds no digits; the message names it.
    """
    numbers = []
    for sample_id in map(str, sample_ids):
        match = _NUMBER.search(sample_id.rpartition("__")[2])
        if match is None:
            raise EvaluationError(
                f"sample_id {sample_id!r} holds no number; protocol 'blocked-cv' groups consecutive sample "
                "numbers (as in ALL-IDB2's Im042_1): use protocol 'stratified-cv' for data named otherwise"
            )
        numbers.append(int(match.group(1)))
    return np.asarray(numbers, dtype=int)


def block_ids(sample_ids: Sequence[str] | np.ndarray, *, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """The block of every sample: ``block_<number // block_size>``.

    Parameters
    ----------
    sample_ids : (n,) sequence of str
    block_size : int
        Consecutive numbers per block (``0-9``, ``10-19``, ... for 10); at least 1.

    Returns
    -------
    (n,) object ndarray of str
        E.g. ``block_0004`` for numbers 40-49. A block may hold both classes.

    Raises
    ------
    EvaluationError
        ``block_size`` below 1, or an id without a number.
    """
    if block_size < 1:
        raise EvaluationError(f"block_size must be at least 1 (consecutive sample numbers per block), got {block_size}")
    return np.array([f"block_{n:04d}" for n in sample_numbers(sample_ids) // block_size], dtype=object)


__all__ = ["DEFAULT_BLOCK_SIZE", "block_ids", "sample_numbers"]

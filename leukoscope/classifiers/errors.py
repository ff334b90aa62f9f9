"""Errors raised when a table cannot be evaluated as asked."""

from __future__ import annotations


class EvaluationError(ValueError):
    """The data cannot be evaluated as asked; the message names the cause and the fix.

    Raised for a training part holding one class only, a dataset with too few subjects for a
    subject-safe protocol, a protocol the data does not support, or a missing features file.
    """


class LeakageError(EvaluationError):
    """A train/test split puts cells of one subject on both sides."""

"""What a stage declares to the stage graph (:mod:`leukoscope.pipeline.graph`).

A stage module defines one :class:`StageSpec` named ``STAGE``; it never imports another stage
module. The graph reads the specs, runs the upstream stages a command needs and lacks, and
hands a stage's per-cell work to an upstream stage when both run in one command (fusion).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from leukoscope.pipeline.layout import Stage

if TYPE_CHECKING:
    import pandas as pd

    from leukoscope.pipeline.config import Config
    from leukoscope.pipeline.layout import RunLayout
    from leukoscope.pipeline.rundir import RunDir


class CellConsumer(Protocol):
    """Per-cell work of a later stage, done in the segmentation worker while the cell is in memory.

    Called with the RGB image, its label mask, the image's SHA-256 and the SHA-256 of the mask
    PNG as written; must be picklable (it runs in worker processes). What it returns (small and
    picklable, or ``None``) travels back to the main process, where the segmentation hands it to
    the same consumer's :meth:`collect` with the sample's id; the graph then passes that consumer
    to its own stage's ``run``, which uses what was collected instead of reading it back.
    """

    def __call__(self, image: np.ndarray, labels: np.ndarray, image_sha256: str, mask_sha256: str) -> Any: ...

    def collect(self, sample_id: str, result: Any) -> None: ...


@dataclass(frozen=True)
class StageSpec:
    """One node of the stage graph.

    Attributes
    ----------
    name : Stage
        The node (``segmentation``, ``handcrafted``, ``embeddings``, ``heads``, ``compare``).
    run : callable
        ``run(config, run_dir, samples, consumers)`` computes the stage and writes its outputs;
        for the segmentation ``consumers`` are the :class:`CellConsumer` of the fused later
        stages, for a fused stage its own consumer (holding what it collected), else empty.
    needs : callable
        ``needs(config)`` -> the stages whose outputs it reads under ``config``.
    active : callable
        ``active(config)`` -> whether the stage has any work under ``config``.
    done : callable
        ``done(config, layout)`` -> whether its outputs for ``config`` are all present (the graph
        also checks that they were computed from the current samples and settings).
    settings : callable
        ``settings(config)`` -> the JSON-serialisable settings that shape its results
        (:func:`leukoscope.pipeline.freshness.settings_of`); a change makes its outputs stale.
    check : callable or None
        ``check(config, samples)`` raises before any stage runs when the stage cannot work
        (e.g. the data cannot be split as asked).
    consumer : callable or None
        ``consumer(config, layout)`` -> the stage's :class:`CellConsumer`, when its per-cell work
        can be fused into the segmentation.
    """

    name: Stage
    run: Callable[[Config, RunDir, pd.DataFrame, tuple[CellConsumer, ...]], None]
    needs: Callable[[Config], tuple[Stage, ...]]
    active: Callable[[Config], bool]
    done: Callable[[Config, RunLayout], bool]
    settings: Callable[[Config], Any]
    check: Callable[[Config, pd.DataFrame], Any] | None = None
    consumer: Callable[[Config, RunLayout], CellConsumer] | None = None

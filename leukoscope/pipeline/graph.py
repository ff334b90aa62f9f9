"""The stage graph: segmentation -> handcrafted -> statistics -> embeddings -> heads -> compare -> train; predict.

::

    segmentation ──> handcrafted ──┬──> statistics ──┐
       │  (mask_background)        └─────────────────┤
       ├──────> embeddings ──────────────────────────┼──> compare ──> train
       │  (heads.mask_background)                    │
       └──────> heads ───────────────────────────────┘

    segmentation ──> [handcrafted] ──> [embeddings] ──> predict   (what the model's inputs need)

Each stage module (:mod:`leukoscope.pipeline.stages`) declares a
:class:`~leukoscope.pipeline.stage.StageSpec`: what it needs under a config, whether it has work,
whether its outputs are present and which settings shape them. :func:`run_targets` runs a
command's target stages after the upstream stages they need whose outputs are missing or stale
(computed from other samples, images or settings: :mod:`leukoscope.pipeline.freshness`), in
graph order, and fuses the handcrafted stage's per-cell work into the segmentation when both
run, so each image is read once.
"""

from __future__ import annotations

import logging

import pandas as pd

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import samples_digest, stage_key
from leukoscope.pipeline.layout import Stage
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec
from leukoscope.pipeline.stages import compare, embeddings, handcrafted, heads, predict, segment, statistics, train

log = logging.getLogger(__name__)

#: every stage, in an order where each comes after those it may need
STAGES: dict[Stage, StageSpec] = {
    spec.name: spec for spec in (segment.STAGE, handcrafted.STAGE, statistics.STAGE, embeddings.STAGE, heads.STAGE,
                                 compare.STAGE, train.STAGE, predict.STAGE)
}
#: the stages a command targets (those without work under its config are left out)
COMMANDS: dict[str, tuple[Stage, ...]] = {
    "segment": (Stage.SEGMENTATION,),
    "features": (Stage.HANDCRAFTED, Stage.STATISTICS, Stage.EMBEDDINGS),
    "compare": (Stage.COMPARE,),
    "train": (Stage.TRAIN,),
    "predict": (Stage.PREDICT,),
}


def _key(name: Stage, config: Config, samples: pd.DataFrame) -> str:
    return stage_key(name, config, samples_digest(samples),
                     settings={n: s.settings for n, s in STAGES.items()}, needs={n: s.needs for n, s in STAGES.items()})


def fresh(spec: StageSpec, config: Config, run: RunDir, samples: pd.DataFrame) -> bool:
    """Whether ``spec``'s outputs are present and were computed from ``samples`` under ``config``
    (and from the upstream outputs these give)."""
    return spec.done(config, run) and run.read_stage_record(spec.name).get("key") == _key(spec.name, config, samples)


def mark_done(name: Stage, config: Config, run: RunDir, samples: pd.DataFrame) -> None:
    """Record that stage ``name``'s outputs in ``run`` were computed from ``samples`` under ``config``."""
    name = Stage(name)
    run.write_stage_record(name, {"stage": name.value, "key": _key(name, config, samples), "samples": len(samples)})


def plan(targets: tuple[Stage, ...], config: Config, run: RunDir, samples: pd.DataFrame) -> list[StageSpec]:
    """The stages to run, in graph order: the active targets, and every stage they need
    (directly or not) whose outputs are missing or stale (:func:`fresh`).

    Raises
    ------
    KeyError
        An unknown stage name (a bug: names come from :data:`COMMANDS` and the specs).
    """
    chosen: set[Stage] = set()

    def visit(name: Stage, *, target: bool) -> None:
        spec = STAGES[name]
        if name in chosen or not spec.active(config) or (not target and fresh(spec, config, run, samples)):
            return
        chosen.add(name)
        for upstream in spec.needs(config):
            visit(upstream, target=False)

    for name in targets:
        visit(name, target=True)
    return [spec for name, spec in STAGES.items() if name in chosen]


def run_targets(targets: tuple[Stage, ...], config: Config, run: RunDir, samples: pd.DataFrame) -> list[str]:
    """Check, then run the planned stages (see :func:`plan`); return their names.

    Every planned stage's ``check`` runs before any stage does, so a setting that cannot work
    fails before hours of segmentation and embedding. A stage's record is removed before it
    runs and written when it has finished, so a stage killed half way is never taken as fresh.
    """
    stages = plan(targets, config, run, samples)
    if not stages:
        log.warning("nothing to do: no stage of %s has work under this config", ", ".join(t.value for t in targets))
    for spec in stages:
        if spec.check is not None:
            spec.check(config, samples)
    names = [spec.name for spec in stages]
    fused = {spec.name: spec.consumer(config, run) for spec in stages
             if spec.consumer is not None and Stage.SEGMENTATION in names}
    for spec in stages:
        run.clear_stage_record(spec.name)
    for spec in stages:
        if spec.name is Stage.SEGMENTATION:
            consumers = tuple(fused.values())
        else:  # a fused stage gets its consumer back, with the rows it collected from the workers
            consumers = (fused[spec.name],) if spec.name in fused else ()
        spec.run(config, run, samples, consumers)
        mark_done(spec.name, config, run, samples)
    return [name.value for name in names]


def run_stages(command: str, config: Config, run: RunDir, samples: pd.DataFrame) -> list[str]:
    """The stages of ``leukoscope COMMAND`` (:data:`COMMANDS`) on ``samples``; see :func:`run_targets`."""
    return run_targets(COMMANDS[command], config, run, samples)


__all__ = ["COMMANDS", "STAGES", "fresh", "mark_done", "plan", "run_stages", "run_targets"]

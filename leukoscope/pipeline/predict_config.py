"""The ``[predict]`` section of the configuration (kept apart so that config.py stays short)."""

from __future__ import annotations

from dataclasses import dataclass

from leukoscope.pipeline.config_rules import PathRule, option


@dataclass(frozen=True)
class PredictConfig:
    """The trained model that `leukoscope predict` applies."""

    model: str = option("", "Model folder written by `leukoscope train` (`leukoscope predict --model` sets it; "
                            "empty: none).", PathRule("folder", "a model folder", empty=True))


__all__ = ["PredictConfig"]

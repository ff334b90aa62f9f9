"""The ``[segmentation]`` section as the keyword arguments of :func:`~leukoscope.segmentation.cell.segment_cell`."""

from __future__ import annotations

from typing import Any

from leukoscope.pipeline.config import SegmentationConfig

#: the ``[segmentation]`` keys that are :func:`segment_cell` arguments
SEGMENTATION_OPTIONS = (
    "nucleus_channel", "nucleus_method", "cell_channel", "cell_method", "enhance", "background",
    "min_size", "split_solidity",
)


def segmentation_options(section: SegmentationConfig) -> dict[str, Any]:
    """The keyword arguments of :func:`segment_cell` from the ``[segmentation]`` section."""
    return {name: getattr(section, name) for name in SEGMENTATION_OPTIONS}


def method_name(section: SegmentationConfig) -> str:
    """Short description of the segmentation settings, for summaries."""
    return (f"nucleus {section.nucleus_channel.value}/{section.nucleus_method.value}, "
            f"cell {section.cell_channel.value}/{section.cell_method.value}, enhance {section.enhance.value}")

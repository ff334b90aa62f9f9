"""Segmentation of single-cell images: pure functions on numpy arrays.

The threshold segmentation (:func:`segment_cell`) and everything around it (channels,
contrast enhancement, thresholds, mask clean-up, expert-mask decoding, Dice, overlays), white
cells in whole smear fields (:func:`detect_white_cells`, :func:`cut_out`, detection scores),
and the functions that apply or train the refiner U-Net, load with this package. The U-Net itself
(:func:`build_unet`, :class:`DiceCrossEntropy`) lives in a module that imports Keras, which is
therefore imported the first time one of those two names is used, so
``import leukoscope.segmentation`` stays fast (``from leukoscope.segmentation import *`` loads
Keras too). Examples of every name: docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leukoscope.segmentation.cell import SegmentationResult, detect_background, is_blank, segment_cell
from leukoscope.segmentation.channels import check_rgb, extract_channel
from leukoscope.segmentation.choices import Background, Channel, Enhancement, QCFlag, Refiner, ThresholdMethod
from leukoscope.segmentation.cleanup import clean_mask, fill_holes, keep_central_component, remove_small_objects
from leukoscope.segmentation.cutout import cut_out
from leukoscope.segmentation.detection_metrics import (
    DetectionCounts,
    box_iou,
    centroid_hits,
    detection_counts,
    match_boxes,
)
from leukoscope.segmentation.enhance import clahe, enhance_channel, equalize_histogram, stretch_contrast
from leukoscope.segmentation.expert_masks import (
    MaskFormatError,
    decode_allidb2_mask,
    decode_expert_mask,
    decode_zheng_mask,
)
from leukoscope.segmentation.fields import Detection, detect_white_cells, detections_frame
from leukoscope.segmentation.labels import BACKGROUND, CYTOPLASM, NUCLEUS, as_label_mask
from leukoscope.segmentation.metrics import dice, iou, label_scores
from leukoscope.segmentation.overlay import cell_window, draw_field_overlay, draw_overlay, montage
from leukoscope.segmentation.refine import refine_labels, refine_result
from leukoscope.segmentation.split import solidity, split_touching
from leukoscope.segmentation.threshold import compute_threshold, threshold_otsu, threshold_triangle
from leukoscope.segmentation.unet_encoding import encode_input, encode_target
from leukoscope.segmentation.unet_training import fit_unet

if TYPE_CHECKING:  # pragma: no cover - typing only; at run time these load on first use
    from leukoscope.segmentation.unet import DiceCrossEntropy, build_unet

#: Names whose module imports Keras, and that module.
_KERAS_NAMES = {
    "DiceCrossEntropy": "leukoscope.segmentation.unet",
    "build_unet": "leukoscope.segmentation.unet",
}


def __getattr__(name: str) -> Any:
    """Import a Keras-backed name on first use (PEP 562)."""
    if name not in _KERAS_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_KERAS_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BACKGROUND",
    "CYTOPLASM",
    "NUCLEUS",
    "Background",
    "Channel",
    "Detection",
    "DetectionCounts",
    "DiceCrossEntropy",
    "Enhancement",
    "MaskFormatError",
    "QCFlag",
    "Refiner",
    "SegmentationResult",
    "ThresholdMethod",
    "as_label_mask",
    "box_iou",
    "build_unet",
    "cell_window",
    "centroid_hits",
    "check_rgb",
    "clahe",
    "clean_mask",
    "compute_threshold",
    "cut_out",
    "decode_allidb2_mask",
    "decode_expert_mask",
    "decode_zheng_mask",
    "detect_background",
    "detect_white_cells",
    "detection_counts",
    "detections_frame",
    "dice",
    "draw_field_overlay",
    "draw_overlay",
    "encode_input",
    "encode_target",
    "enhance_channel",
    "equalize_histogram",
    "extract_channel",
    "fill_holes",
    "fit_unet",
    "iou",
    "is_blank",
    "keep_central_component",
    "label_scores",
    "match_boxes",
    "montage",
    "refine_labels",
    "refine_result",
    "remove_small_objects",
    "segment_cell",
    "solidity",
    "split_touching",
    "stretch_contrast",
    "threshold_otsu",
    "threshold_triangle",
]

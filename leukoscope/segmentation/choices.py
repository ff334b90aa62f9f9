"""String enums for the segmentation choices exposed in the config and the CLI."""

from __future__ import annotations

from enum import Enum


class Channel(str, Enum):
    """Single channel of an RGB image that a threshold is computed on."""

    GRAY = "gray"
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    HUE = "hue"
    SATURATION = "saturation"
    VALUE = "value"
    LAB_L = "lab_l"
    LAB_A = "lab_a"
    LAB_B = "lab_b"
    STAIN = "stain"


class ThresholdMethod(str, Enum):
    """Global threshold algorithm. ``TRIANGLE`` and ``ZACK`` are the same algorithm."""

    OTSU = "otsu"
    TRIANGLE = "triangle"
    ZACK = "zack"


class Enhancement(str, Enum):
    """Contrast enhancement applied before thresholding."""

    NONE = "none"
    STRETCH = "stretch"
    EQUALIZE = "equalize"
    CLAHE = "clahe"


class Background(str, Enum):
    """What surrounds the cell: C-NMC cells sit on black, ALL-IDB2/Zheng crops on stained smear."""

    AUTO = "auto"
    BLACK = "black"
    SMEAR = "smear"


class Refiner(str, Enum):
    """Learned correction applied after thresholding."""

    NONE = "none"
    UNET = "unet"


class QCFlag(str, Enum):
    """Why a segmentation is degenerate; the measurements of a flagged cell are NaN or zero."""

    BLANK_IMAGE = "blank_image"
    NO_CELL = "no_cell"
    NO_NUCLEUS = "no_nucleus"
    #: the refiner's labels were not used (see :func:`leukoscope.segmentation.refine.refine_result`)
    REFINER_SKIPPED = "refiner_skipped"

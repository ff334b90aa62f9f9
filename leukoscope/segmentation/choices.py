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
    """What a person should check in a segmentation (rules and weights: segmentation/qc.py).

    ``blank_image``, ``no_cell`` and ``no_nucleus`` mark a degenerate mask (measurements NaN
    or zero); the others mark a mask that exists but may be wrong, or was corrected.
    """

    BLANK_IMAGE = "blank_image"
    NO_CELL = "no_cell"
    NO_NUCLEUS = "no_nucleus"
    NUCLEUS_INVERTED = "nucleus_inverted"
    RING_NUCLEUS = "ring_nucleus"
    MULTIPLE_CELLS = "multiple_cells"
    NC_RATIO_EXTREME = "nc_ratio_extreme"
    NUCLEUS_INVERTED_FIXED = "nucleus_inverted_fixed"
    DEBRIS_REMOVED = "debris_removed"
    #: the refiner's labels were not used (see :func:`leukoscope.segmentation.refine.refine_result`)
    REFINER_SKIPPED = "refiner_skipped"

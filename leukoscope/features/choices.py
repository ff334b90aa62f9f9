"""String enums for the feature choices exposed in the config and the CLI."""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    """Handcrafted feature families (see :mod:`leukoscope.features.registry`)."""

    INTENSITY = "intensity"
    HARALICK = "haralick"
    MORPHOLOGY = "morphology"
    COLOUR = "colour"


class Backbone(str, Enum):
    """The seven ImageNet backbones of the reference study (lower-case Keras names)."""

    VGG16 = "vgg16"
    VGG19 = "vgg19"
    INCEPTIONV3 = "inceptionv3"
    XCEPTION = "xception"
    EFFICIENTNETB0 = "efficientnetb0"
    RESNET50 = "resnet50"
    RESNET101 = "resnet101"


class QcRule(str, Enum):
    """What to do with cells whose ``qc_flag`` is not empty (a feature is undefined on them).

    ``KEEP``: keep them; only their undefined (NaN) values are skipped.
    ``DROP_FLAGGED``: leave the whole cell out of every statistic.
    """

    KEEP = "keep"
    DROP_FLAGGED = "drop_flagged"

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

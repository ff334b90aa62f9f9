"""Features of segmented cells: the handcrafted families and frozen-CNN embeddings.

Pure functions on numpy arrays. :func:`compute_features` (or the scikit-learn transformer
:class:`HandcraftedFeatures`) measures a cell from its RGB image and label mask; the backbone
registry (:func:`get_backbone`) and the embedding functions build and run the seven ImageNet
networks of the reference study, importing Keras only inside the functions that need it, so
``import leukoscope.features`` does not load Keras. Examples of every name: docs/api.md.
"""

from __future__ import annotations

from leukoscope.features.backbones import BACKBONES, BackboneSpec, get_backbone
from leukoscope.features.choices import Backbone, Family
from leukoscope.features.colour import colour_features
from leukoscope.features.embeddings import POOLINGS, build_extractor, embed_batch, fit_to_square, prepare_batch
from leukoscope.features.haralick import haralick_features
from leukoscope.features.intensity import intensity_features
from leukoscope.features.morphology import morphology_features
from leukoscope.features.registry import FeatureResult, compute_features, data_dictionary, feature_names
from leukoscope.features.transformer import HandcraftedFeatures

__all__ = [
    "BACKBONES",
    "POOLINGS",
    "Backbone",
    "BackboneSpec",
    "Family",
    "FeatureResult",
    "HandcraftedFeatures",
    "build_extractor",
    "colour_features",
    "compute_features",
    "data_dictionary",
    "embed_batch",
    "feature_names",
    "fit_to_square",
    "get_backbone",
    "haralick_features",
    "intensity_features",
    "morphology_features",
    "prepare_batch",
]

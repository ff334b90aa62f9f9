"""Features of segmented cells: the handcrafted families, frozen-CNN embeddings, ALL/HEM statistics.

Pure functions on numpy arrays and tables. :func:`compute_features` (or the scikit-learn
transformer :class:`HandcraftedFeatures`) measures a cell from its RGB image and label mask; the
backbone registry (:func:`get_backbone`) and the embedding functions build and run the seven
ImageNet networks of the reference study, importing Keras only inside the functions that need
it, so ``import leukoscope.features`` does not load Keras; :func:`subject_table`,
:func:`univariate_table` and their parts compare ALL with HEM feature by feature, by subject
(docs/statistics.md). Examples of every name: docs/api.md.
"""

from __future__ import annotations

from leukoscope.features.backbones import BACKBONES, BackboneSpec, get_backbone
from leukoscope.features.choices import Backbone, Family
from leukoscope.features.colour import colour_features
from leukoscope.features.effects import EffectSizes, benjamini_hochberg, cliffs_delta, effect_sizes, hedges_g
from leukoscope.features.embeddings import POOLINGS, build_extractor, embed_batch, fit_to_square, prepare_batch
from leukoscope.features.haralick import haralick_features
from leukoscope.features.intensity import intensity_features
from leukoscope.features.mixed import RandomInterceptFit, Reference, fit_random_intercept
from leukoscope.features.morphology import morphology_features
from leukoscope.features.registry import FeatureResult, compute_features, data_dictionary, feature_names
from leukoscope.features.subjects import QcRule, subject_table
from leukoscope.features.transformer import HandcraftedFeatures
from leukoscope.features.univariate import univariate_table

__all__ = [
    "BACKBONES",
    "POOLINGS",
    "Backbone",
    "BackboneSpec",
    "EffectSizes",
    "Family",
    "FeatureResult",
    "HandcraftedFeatures",
    "QcRule",
    "RandomInterceptFit",
    "Reference",
    "benjamini_hochberg",
    "build_extractor",
    "cliffs_delta",
    "colour_features",
    "compute_features",
    "data_dictionary",
    "effect_sizes",
    "embed_batch",
    "feature_names",
    "fit_random_intercept",
    "fit_to_square",
    "get_backbone",
    "haralick_features",
    "hedges_g",
    "intensity_features",
    "morphology_features",
    "prepare_batch",
    "subject_table",
    "univariate_table",
]

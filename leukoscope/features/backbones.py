"""The seven ImageNet backbones of the reference study: one frozen spec per network.

Each :class:`BackboneSpec` names the Keras application that builds the network, its default
input size, its own ``preprocess_input``, the width of its last feature map (the embedding
size) and the official Keras "no-top" ImageNet weights file. Keras is imported only inside
the functions that need it, so importing :mod:`leukoscope.features` stays fast.

References
----------
.. [1] Simonyan & Zisserman (2015), "Very deep convolutional networks for large-scale image
   recognition", ICLR, arXiv:1409.1556 (VGG16, VGG19).
.. [2] Szegedy et al. (2016), "Rethinking the Inception architecture for computer vision",
   CVPR, doi:10.1109/CVPR.2016.308 (InceptionV3).
.. [3] Chollet (2017), "Xception: deep learning with depthwise separable convolutions",
   CVPR, doi:10.1109/CVPR.2017.195.
.. [4] Tan & Le (2019), "EfficientNet: rethinking model scaling for convolutional neural
   networks", ICML, arXiv:1905.11946 (EfficientNetB0).
.. [5] He et al. (2016), "Deep residual learning for image recognition", CVPR,
   doi:10.1109/CVPR.2016.90 (ResNet50, ResNet101).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from leukoscope.features.choices import Backbone

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

_TF_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build, feed and load one ImageNet backbone.

    Attributes
    ----------
    name : Backbone
        Lower-case Keras name without separators (``resnet50``).
    constructor : str
        Name of the constructor in ``keras.applications`` (``ResNet50``).
    module : str
        Submodule of ``keras.applications`` holding its ``preprocess_input`` (``resnet``).
    input_size : int
        Default side of the square input in pixels (224; 299 for InceptionV3 and Xception).
    min_input_size : int
        Smallest side Keras accepts for the network.
    embedding_size : int
        Channels of the last feature map, i.e. the length of a pooled embedding.
    weights_file : str
        File name of the official no-top ImageNet weights (legacy Keras ``.h5``).
    weights_url : str
        Where Keras downloads that file from.
    weights_md5 : str
        MD5 checksum Keras uses to verify that file.
    imagenet_stddev : tuple of float
        EfficientNetB0 only: the ImageNet per-channel standard deviations. When Keras loads
        the ImageNet weights itself it adds a layer dividing the normalised input once more
        by ``sqrt(stddev)`` (the original implementation's convention, see
        https://github.com/tensorflow/tensorflow/issues/49930); loading a weights file
        applies the same correction by scaling the ``Normalization`` layer's variance.
        Empty for the other networks.
    """

    name: Backbone
    constructor: str
    module: str
    input_size: int
    min_input_size: int
    embedding_size: int
    weights_file: str
    weights_url: str
    weights_md5: str
    imagenet_stddev: tuple[float, ...] = ()

    def check_input_size(self, size: int) -> int:
        """Return ``size``, or the default when it is 0; refuse sizes the network cannot take.

        Raises
        ------
        ValueError
            ``size`` is below :attr:`min_input_size`.
        """
        size = size or self.input_size
        if size < self.min_input_size:
            raise ValueError(
                f"{self.name.value} needs an input of at least {self.min_input_size}x"
                f"{self.min_input_size} pixels, got {size}; set input_size to 0 (default "
                f"{self.input_size}) or to {self.min_input_size} or more"
            )
        return size

    def build(self, *, input_size: int = 0, weights_path: str | None = None) -> keras.Model:
        """Build the network without its classification top (frozen layers are up to the caller).

        Parameters
        ----------
        input_size : int
            Side of the square RGB input; 0 gives :attr:`input_size`.
        weights_path : str or None
            A no-top weights file to load (see :mod:`leukoscope.pipeline.weights`), or
            ``None`` for random (untrained) weights.

        Returns
        -------
        keras.Model
            Input ``(N, S, S, 3)`` preprocessed images, output ``(N, h, w, embedding_size)``
            feature maps.

        Raises
        ------
        ValueError
            The weights file does not hold this network's no-top weights.
        """
        import keras

        size = self.check_input_size(input_size)
        constructor = getattr(keras.applications, self.constructor)
        model = constructor(include_top=False, weights=None, input_shape=(size, size, 3))
        if weights_path is not None:
            self.load_weights(model, weights_path)
        return model

    def load_weights(self, model: keras.Model, weights_path: str) -> None:
        """Load a no-top weights file into a network :meth:`build` made, in place.

        Parameters
        ----------
        model : keras.Model
            This backbone, built by :meth:`build` (any input size).
        weights_path : str
            The official no-top file (legacy ``.h5``) or one saved by ``model.save_weights``
            (``.weights.h5``). For EfficientNetB0 the ImageNet standard-deviation correction
            (:attr:`imagenet_stddev`) is applied after loading, as Keras does for its own
            ImageNet weights.

        Raises
        ------
        ValueError
            The weights file does not hold this network's no-top weights.
        """
        import keras

        try:
            model.load_weights(weights_path)
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError(
                f"weights file '{weights_path}' does not fit {self.name.value} (expected the "
                f"official no-top file {self.weights_file}): {exc}"
            ) from exc
        if self.imagenet_stddev:
            norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
            norm.adapt_variance.assign(
                keras.ops.convert_to_numpy(norm.adapt_variance) * np.asarray(self.imagenet_stddev)
            )
            norm.finalize_state()

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        """Apply the network's own ``keras.applications.<module>.preprocess_input``.

        Parameters
        ----------
        batch : (N, S, S, 3) float32 ndarray
            RGB images with values in [0, 255]. Modified in place by some networks; pass a
            copy to keep it.

        Returns
        -------
        (N, S, S, 3) float32 ndarray
            What the network expects: BGR minus the ImageNet mean (VGG, ResNet), values in
            [-1, 1] (InceptionV3, Xception) or unchanged (EfficientNetB0 rescales inside).
        """
        module = importlib.import_module(f"keras.applications.{self.module}")
        return np.asarray(module.preprocess_input(batch), dtype=np.float32)


def _spec(name: Backbone, constructor: str, module: str, input_size: int, min_input_size: int,
          embedding_size: int, weights_file: str, url_base: str, weights_md5: str,
          imagenet_stddev: tuple[float, ...] = ()) -> BackboneSpec:
    return BackboneSpec(name, constructor, module, input_size, min_input_size, embedding_size,
                        weights_file, url_base + weights_file, weights_md5, imagenet_stddev)


#: Every backbone of the reference study, by name.
BACKBONES: MappingProxyType[Backbone, BackboneSpec] = MappingProxyType({
    spec.name: spec
    for spec in (
        _spec(Backbone.VGG16, "VGG16", "vgg16", 224, 32, 512,
              "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "vgg16/",
              "6d6bbae143d832006294945121d1f1fc"),
        _spec(Backbone.VGG19, "VGG19", "vgg19", 224, 32, 512,
              "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "vgg19/",
              "253f8cb515780f3b799900260a226db6"),
        _spec(Backbone.INCEPTIONV3, "InceptionV3", "inception_v3", 299, 75, 2048,
              "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "inception_v3/",
              "bcbd6486424b2319ff4ef7d526e38f63"),
        _spec(Backbone.XCEPTION, "Xception", "xception", 299, 71, 2048,
              "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "xception/",
              "b0042744bf5b25fce3cb969f33bebb97"),
        _spec(Backbone.EFFICIENTNETB0, "EfficientNetB0", "efficientnet", 224, 32, 1280,
              "efficientnetb0_notop.h5", "https://storage.googleapis.com/keras-applications/",
              "50bc09e76180e00e4465e1a485ddc09d", (0.229, 0.224, 0.225)),
        _spec(Backbone.RESNET50, "ResNet50", "resnet", 224, 32, 2048,
              "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "resnet/",
              "4d473c1dd8becc155b73f8504c6f6626"),
        _spec(Backbone.RESNET101, "ResNet101", "resnet", 224, 32, 2048,
              "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", _TF_BASE + "resnet/",
              "88cf7a10940856eca736dc7b7e228a21"),
    )
})


def get_backbone(name: str | Backbone) -> BackboneSpec:
    """The spec of one backbone.

    Parameters
    ----------
    name : str or Backbone
        Lower-case Keras name without separators, e.g. ``resnet50`` or ``inceptionv3``.

    Returns
    -------
    BackboneSpec

    Raises
    ------
    ValueError
        ``name`` is no known backbone; the message lists the valid names.
    """
    try:
        return BACKBONES[Backbone(name)]
    except ValueError:
        valid = ", ".join(b.value for b in Backbone)
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {valid}") from None


__all__ = ["BACKBONES", "BackboneSpec", "get_backbone"]

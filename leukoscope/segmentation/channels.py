"""Single-channel views of an RGB cell image, oriented so that stained pixels are bright.

Giemsa/Wright-stained leukocytes are violet (nucleus) and pale blue-violet (cytoplasm) on a
bright, grey or yellowish smear with pink red cells. Every channel here is a uint8 image in
which stained pixels have the *higher* values, so one rule (foreground = above the threshold)
serves all of them:

- ``gray``, ``red``, ``green``, ``blue``, ``value``, ``lab_l``: inverted (255 - channel), so
  dark (stained) pixels are bright;
- ``saturation``: HSV saturation as it is;
- ``hue``: HSV hue on 0-255 (= 0-360 degrees) rotated by +45 degrees, so pink/red sits low,
  yellow in the middle and blue-violet high;
- ``lab_a``: CIE L*a*b* a* + 128 (magenta high); ``lab_b``: 127 - b*, i.e. 255 - (b* + 128) (blue high);
- ``stain``: blue minus green + 128, clipped to 0-255, a stain-difference channel. Haematoxylin
  /azure-stained chromatin absorbs green much more than blue; the pink eosin of red cells and
  the grey or yellow background do not.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.segmentation.choices import Channel

HUE_ROTATION = 32  # +45 degrees on the 0-255 hue circle


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array; raise a clear error otherwise.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        An RGB image.

    Raises
    ------
    ValueError
        Wrong number of dimensions, channels or dtype.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got an array of shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got dtype {image.dtype}; convert it to 8 bits first")
    return image


def extract_channel(image: np.ndarray, channel: Channel | str) -> np.ndarray:
    """One channel of an RGB image, stained pixels bright.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image.
    channel : Channel or str
        Which channel (see the module docstring for each definition).

    Returns
    -------
    (H, W) uint8 ndarray
        The channel, oriented so that stained pixels have high values.
    """
    image = check_rgb(image)
    channel = Channel(channel)
    if channel is Channel.GRAY:
        return 255 - cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channel in (Channel.RED, Channel.GREEN, Channel.BLUE):
        index = (Channel.RED, Channel.GREEN, Channel.BLUE).index(channel)
        return 255 - image[..., index]
    if channel in (Channel.HUE, Channel.SATURATION, Channel.VALUE):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
        if channel is Channel.HUE:
            return hsv[..., 0] + np.uint8(HUE_ROTATION)  # uint8 arithmetic wraps round the circle
        if channel is Channel.SATURATION:
            return np.ascontiguousarray(hsv[..., 1])
        return 255 - hsv[..., 2]
    if channel in (Channel.LAB_L, Channel.LAB_A, Channel.LAB_B):
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
        if channel is Channel.LAB_L:
            return 255 - lab[..., 0]
        if channel is Channel.LAB_A:
            return np.ascontiguousarray(lab[..., 1])
        return 255 - lab[..., 2]
    # Channel.STAIN
    difference = image[..., 2].astype(np.int16) - image[..., 1].astype(np.int16) + 128
    return np.clip(difference, 0, 255).astype(np.uint8)

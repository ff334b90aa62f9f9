"""Pictures for a person to check masks: contour overlays, a montage of them, whole fields.

An overlay can be drawn on a contrast-stretched copy of the cell (``stretch=True``: the
1st-99th percentile of all three channels within the cell mapped to 0-255, the same map for
each channel so hues keep their balance; a pale cut-out or a dark smear then shows its
nucleus and cytoplasm plainly) and carry a legend strip under the picture
(``legend=True``) naming the outline colours.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.segmentation.channels import check_rgb
from leukoscope.segmentation.enhance import stretch_contrast
from leukoscope.segmentation.fields import Detection
from leukoscope.segmentation.labels import NUCLEUS, as_label_mask

CELL_COLOUR = (0, 255, 255)  # cyan
NUCLEUS_COLOUR = (255, 255, 0)  # yellow
BOX_COLOUR = (255, 0, 255)  # magenta: detected cells in a field
TRUTH_COLOUR = (0, 200, 0)  # green: annotated boxes
LEGEND_NAMES = ("cell", "nucleus")
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOUR = (255, 255, 255)


def contour_width(shape: tuple[int, ...]) -> int:
    """Contour thickness in pixels: 1 per 150 pixels of the shorter side, at least 1."""
    return max(1, round(min(shape[:2]) / 150))


def _inner_boundary(mask: np.ndarray, width: int) -> np.ndarray:
    mask = mask.astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), dtype=np.uint8)
    eroded = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (mask != 0) & (eroded == 0)


def stretch_cell(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A copy of the image stretched from the 1st-99th percentile of its channels within the cell.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB image.
    labels : (H, W) uint8 ndarray
        Any non-zero pixel is cell; with no cell pixel, the non-black pixels (all pixels on
        an image without black) give the percentiles.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The stretched copy (:func:`~leukoscope.segmentation.enhance.stretch_contrast` of the
        three channels side by side, so one linear map serves all); black stays black.
    """
    image = check_rgb(image)
    region = np.asarray(labels) > 0
    if not region.any():
        region = (image[..., 0] | image[..., 1] | image[..., 2]) != 0
    height, width = region.shape
    # the map sends level 0 to 0 (its low end is a level >= 0), so black stays black
    out = stretch_contrast(image.reshape(height, width * 3), mask=np.repeat(region, 3, axis=1))
    return out.reshape(image.shape)


@functools.lru_cache(maxsize=64)
def _legend_strip(width: int, colours: tuple[tuple[int, int, int], ...], names: tuple[str, ...]) -> np.ndarray:
    """A black strip naming each outline colour, as wide as the picture (drawn once per width; read-only)."""
    scale = max(0.3, min(0.5, width / 400))
    height = max(12, round(28 * scale))
    strip = np.zeros((height, width, 3), dtype=np.uint8)
    x = 3
    for colour, name in zip(colours, names):
        cv2.line(strip, (x, height // 2), (x + round(20 * scale), height // 2), colour, max(1, round(4 * scale)))
        x += round(24 * scale)
        cv2.putText(strip, name, (x, height // 2 + round(8 * scale)), FONT, scale, TEXT_COLOUR, 1, cv2.LINE_AA)
        x += cv2.getTextSize(name, FONT, scale, 1)[0][0] + round(12 * scale)
    strip.flags.writeable = False
    return strip


def draw_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    colours: tuple[tuple[int, int, int], tuple[int, int, int]] = (CELL_COLOUR, NUCLEUS_COLOUR),
    stretch: bool = False,
    legend: bool = False,
) -> np.ndarray:
    """The image with the cell outline in cyan and the nucleus outline in yellow.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB image.
    labels : (H, W) integer or bool ndarray
        0 background, 1 cytoplasm, 2 nucleus (see
        :func:`~leukoscope.segmentation.labels.as_label_mask`).
    colours : ((R, G, B), (R, G, B))
        Outline colours of the cell and of the nucleus.
    stretch : bool
        Draw on :func:`stretch_cell` of the image instead of the image itself.
    legend : bool
        Add a black strip under the picture naming the two outline colours.

    Returns
    -------
    (H, W, 3) or (H + S, W, 3) uint8 ndarray
        A copy of the image with both outlines drawn just inside each region, about
        :func:`contour_width` pixels wide; ``S`` (12 to 14 pixels) more rows with a legend.
    """
    image = check_rgb(image)
    labels = as_label_mask(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels are {labels.shape} but the image is {image.shape[:2]}; they must match")
    out = stretch_cell(image, labels) if stretch else image.copy()
    left, top, box_width, box_height = cv2.boundingRect((labels > 0).view(np.uint8))
    if box_width:
        box = (slice(top, top + box_height), slice(left, left + box_width))  # outlines lie inside the cell
        width = contour_width(labels.shape)
        window, region = out[box], labels[box]
        window[_inner_boundary(region > 0, width)] = colours[0]
        window[_inner_boundary(region == NUCLEUS, width)] = colours[1]
    if legend:
        out = np.concatenate([out, _legend_strip(out.shape[1], colours, LEGEND_NAMES)], axis=0)
    return out


def cell_window(labels: np.ndarray, *, margin: float = 0.15) -> tuple[slice, slice]:
    """A square window round the cell, ``margin`` of its size added on each side.

    Parameters
    ----------
    labels : (H, W) integer or bool ndarray
        Label mask, 0/1/2 (see :func:`~leukoscope.segmentation.labels.as_label_mask`); any
        non-zero pixel is cell.
    margin : float
        Added on each side, as a fraction of the cell's larger side.

    Returns
    -------
    (slice, slice)
        Rows and columns of the window, clipped to the image; the whole image when the
        mask is empty.
    """
    labels = as_label_mask(labels)
    left, top, width, height = cv2.boundingRect((labels > 0).view(np.uint8))
    if width == 0:
        return slice(None), slice(None)
    half = max(width, height) * (0.5 + margin)
    row, col = top + height / 2.0, left + width / 2.0
    rows, cols = labels.shape[:2]
    return (
        slice(max(0, int(row - half)), min(rows, int(np.ceil(row + half)))),
        slice(max(0, int(col - half)), min(cols, int(np.ceil(col + half)))),
    )


def _fit_caption(text: str, width: int) -> tuple[list[str], float]:
    """Caption lines (split at newlines) and the font scale (0.3 to 0.4) that fits them in ``width``."""
    lines = text.split("\n")
    widest = max(cv2.getTextSize(line, FONT, 0.4, 1)[0][0] for line in lines)
    scale = 0.4 if widest <= width else max(0.3, 0.4 * width / widest)
    return lines, scale


def montage(
    tiles: Sequence[np.ndarray], *, captions: Sequence[str] = (), tile_size: int = 128, columns: int = 8
) -> np.ndarray:
    """A grid of images scaled to ``tile_size`` squares, with an optional caption on each.

    Parameters
    ----------
    tiles : sequence of (H, W, 3) uint8 ndarray
        The images (e.g. overlays); each is scaled to fit its square, keeping its aspect.
    captions : sequence of str
        Short text drawn at the top left of each tile (e.g. the sample id and the class,
        ``"UID_H10_43_1_hem\nHEM"``); a newline starts a second line, and a line too long
        for the tile is drawn smaller (down to 3/4 size; longer lines run on); empty for none.
    tile_size : int
        Side of one square, in pixels.
    columns : int
        Squares per row (fewer when there are fewer tiles).

    Returns
    -------
    (rows * tile_size, columns * tile_size, 3) uint8 ndarray
        The montage, black between and around tiles; a single black square when ``tiles``
        is empty.
    """
    if captions and len(captions) != len(tiles):
        raise ValueError(f"got {len(captions)} captions for {len(tiles)} tiles; give one per tile or none")
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    sheet = np.zeros((rows * tile_size, columns * tile_size, 3), dtype=np.uint8)
    for index, tile in enumerate(tiles):
        tile = check_rgb(tile)
        scale = tile_size / max(tile.shape[:2])
        height = max(1, round(tile.shape[0] * scale))
        width = max(1, round(tile.shape[1] * scale))
        small = cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA)
        top = (index // columns) * tile_size + (tile_size - height) // 2
        left = (index % columns) * tile_size + (tile_size - width) // 2
        sheet[top : top + height, left : left + width] = small
        if captions and captions[index]:
            lines, font_scale = _fit_caption(captions[index], tile_size - 6)
            for number, line in enumerate(lines):
                origin = ((index % columns) * tile_size + 3,
                          (index // columns) * tile_size + 14 + number * round(30 * font_scale))
                cv2.putText(sheet, line, origin, FONT, font_scale, (0, 0, 0), 2, cv2.LINE_AA)  # dark edge
                cv2.putText(sheet, line, origin, FONT, font_scale, TEXT_COLOUR, 1, cv2.LINE_AA)
    return sheet


def draw_field_overlay(
    image: np.ndarray,
    detections: Sequence[Detection],
    *,
    truth: Sequence[tuple[float, float, float, float]] = (),
    points: Sequence[tuple[float, float]] = (),
    captions: Sequence[str] = (),
    box_colour: tuple[int, int, int] = BOX_COLOUR,
    truth_colour: tuple[int, int, int] = TRUTH_COLOUR,
) -> np.ndarray:
    """A whole field with every detected cell's box and outlines, and the annotated boxes.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB field.
    detections : sequence of Detection
        White cells found in it (:func:`~leukoscope.segmentation.fields.detect_white_cells`).
    truth : sequence of (x0, y0, x1, y1)
        Annotated boxes (x1, y1 exclusive; fractions are cut to whole pixels), drawn in
        ``truth_colour``; none by default.
    points : sequence of (x, y)
        Annotated points (e.g. blast centroids), drawn as crosses in ``truth_colour``.
    captions : sequence of str
        Text written in ``box_colour`` above (or, at the field's top, inside) each detection's
        box, e.g. its number; none by default, else one per detection.
    box_colour, truth_colour : (R, G, B)
        Colours of the detection boxes and of the annotated boxes.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        A copy of the field: each cell outlined in cyan and its nucleus in yellow (just
        inside each region, as :func:`draw_overlay`), its box in ``box_colour``, the
        annotated boxes in ``truth_colour``; lines :func:`contour_width` pixels wide.
    """
    if captions and len(captions) != len(detections):
        raise ValueError(f"got {len(captions)} captions for {len(detections)} detections; "
                         "give one per detection or none")
    out = check_rgb(image).copy()
    width = contour_width(out.shape)
    for x0, y0, x1, y1 in truth:
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), truth_colour, width)
    for x, y in points:
        cv2.drawMarker(out, (int(round(x)), int(round(y))), truth_colour, cv2.MARKER_CROSS, 8 * width, width)
    scale = 0.4 * width
    for index, detection in enumerate(detections):
        x0, y0, x1, y1 = detection.box
        window = out[y0:y1, x0:x1]
        window[_inner_boundary(detection.labels > 0, width)] = CELL_COLOUR
        window[_inner_boundary(detection.labels == NUCLEUS, width)] = NUCLEUS_COLOUR
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), box_colour, width)
        if captions:
            (_, text_height), _ = cv2.getTextSize(captions[index], cv2.FONT_HERSHEY_SIMPLEX, scale, width)
            baseline = y0 - 2 * width if y0 - 2 * width >= text_height else y0 + text_height + 2 * width
            cv2.putText(out, captions[index], (x0 + width, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, box_colour,
                        width, cv2.LINE_AA)
    return out

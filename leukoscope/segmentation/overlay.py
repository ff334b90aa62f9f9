"""Pictures for a person to check masks: contour overlays, a montage of them, whole fields."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.segmentation.cell import NUCLEUS
from leukoscope.segmentation.channels import check_rgb
from leukoscope.segmentation.fields import Detection

CELL_COLOUR = (0, 255, 255)  # cyan
NUCLEUS_COLOUR = (255, 255, 0)  # yellow
BOX_COLOUR = (255, 0, 255)  # magenta: detected cells in a field
TRUTH_COLOUR = (0, 200, 0)  # green: annotated boxes


def contour_width(shape: tuple[int, ...]) -> int:
    """Contour thickness in pixels: 1 per 150 pixels of the shorter side, at least 1."""
    return max(1, round(min(shape[:2]) / 150))


def _inner_boundary(mask: np.ndarray, width: int) -> np.ndarray:
    mask = mask.astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), dtype=np.uint8)
    eroded = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (mask != 0) & (eroded == 0)


def draw_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    colours: tuple[tuple[int, int, int], tuple[int, int, int]] = (CELL_COLOUR, NUCLEUS_COLOUR),
) -> np.ndarray:
    """The image with the cell outline in cyan and the nucleus outline in yellow.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB image.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.
    colours : ((R, G, B), (R, G, B))
        Outline colours of the cell and of the nucleus.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        A copy of the image with both outlines drawn just inside each region, about
        :func:`contour_width` pixels wide.
    """
    image = check_rgb(image)
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels are {labels.shape} but the image is {image.shape[:2]}; they must match")
    out = image.copy()
    left, top, box_width, box_height = cv2.boundingRect((labels > 0).view(np.uint8))
    if box_width == 0:
        return out
    box = (slice(top, top + box_height), slice(left, left + box_width))  # outlines lie inside the cell
    width = contour_width(labels.shape)
    window, region = out[box], labels[box]
    window[_inner_boundary(region > 0, width)] = colours[0]
    window[_inner_boundary(region == 2, width)] = colours[1]
    return out


def cell_window(labels: np.ndarray, *, margin: float = 0.15) -> tuple[slice, slice]:
    """A square window round the cell, ``margin`` of its size added on each side.

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Label mask (any non-zero pixel is cell).
    margin : float
        Added on each side, as a fraction of the cell's larger side.

    Returns
    -------
    (slice, slice)
        Rows and columns of the window, clipped to the image; the whole image when the
        mask is empty.
    """
    left, top, width, height = cv2.boundingRect((np.asarray(labels) > 0).view(np.uint8))
    if width == 0:
        return slice(None), slice(None)
    half = max(width, height) * (0.5 + margin)
    row, col = top + height / 2.0, left + width / 2.0
    rows, cols = labels.shape[:2]
    return (
        slice(max(0, int(row - half)), min(rows, int(np.ceil(row + half)))),
        slice(max(0, int(col - half)), min(cols, int(np.ceil(col + half)))),
    )


def montage(
    tiles: Sequence[np.ndarray], *, captions: Sequence[str] = (), tile_size: int = 128, columns: int = 8
) -> np.ndarray:
    """A grid of images scaled to ``tile_size`` squares, with an optional caption on each.

    Parameters
    ----------
    tiles : sequence of (H, W, 3) uint8 ndarray
        The images (e.g. overlays); each is scaled to fit its square, keeping its aspect.
    captions : sequence of str
        Short text drawn at the top left of each tile (e.g. the class); empty for none.
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
            origin = ((index % columns) * tile_size + 3, (index // columns) * tile_size + 14)
            cv2.putText(sheet, captions[index], origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
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

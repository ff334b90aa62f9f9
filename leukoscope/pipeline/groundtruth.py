"""Find and read expert masks on disk (``leukoscope segment --masks PATH``).

A mask belongs to the image with the same file stem (``Im001_1.tif`` -> ``Im001_1.tif`` in
the masks folder; Zheng's ``001.bmp`` -> ``001.png``), searched anywhere below the masks
folder; the image file itself never counts as its own mask, so the masks folder may be the
image folder (as in the Zheng sets). Decoding of the two formats is
:func:`leukoscope.segmentation.expert_masks.decode_expert_mask`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leukoscope.pipeline.imageio import IMAGE_SUFFIXES
from leukoscope.segmentation.expert_masks import MaskFormatError, decode_expert_mask

MISSING = "missing"  # MaskMatch.problem when no file has the image's stem


class ExpertMaskError(ValueError):
    """An expert mask cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class MaskMatch:
    """The expert mask found for one image: ``path`` ("" when none) and a ``problem``.

    ``problem`` is "" when exactly one mask was found, :data:`MISSING` when none, or a sentence
    naming the ``candidates`` when several files share the image's stem.
    """

    path: str
    problem: str
    candidates: tuple[str, ...] = ()


def index_masks(masks_dir: str | Path) -> dict[str, list[Path]]:
    """Image-like files below ``masks_dir`` grouped by file stem (sorted paths).

    Raises
    ------
    ExpertMaskError
        ``masks_dir`` is not a folder.
    """
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise ExpertMaskError(
            f"masks folder '{masks_dir}' does not exist or is not a folder; pass the folder that "
            "holds the expert masks (e.g. ../shared/data/all-idb2/masks)"
        )
    index: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(masks_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                index.setdefault(path.stem, []).append(path.resolve())
    return index


def match_masks(image_paths: Sequence[str], masks_dir: str | Path) -> list[MaskMatch]:
    """The expert mask of each image, matched by file stem.

    Parameters
    ----------
    image_paths : sequence of str
        Absolute image paths (the ``path`` column of the samples table).
    masks_dir : str or Path
        Folder searched (recursively) for masks.

    Returns
    -------
    list of MaskMatch
        One per image, in order.
    """
    index = index_masks(masks_dir)
    matches = []
    for image_path in image_paths:
        image = Path(image_path).resolve()
        candidates = [p for p in index.get(image.stem, []) if p != image]
        if not candidates:
            matches.append(MaskMatch("", MISSING))
        elif len(candidates) > 1:
            names = ", ".join(str(p) for p in candidates)
            problem = f"{len(candidates)} possible masks for '{image.name}' ({names}); keep one"
            matches.append(MaskMatch("", problem, tuple(str(p) for p in candidates)))
        else:
            matches.append(MaskMatch(str(candidates[0]), ""))
    return matches


def _read_raw(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].asarray()
    from PIL import Image

    with Image.open(path) as img:
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB" if img.mode in ("P", "RGBA", "LA") else "L")
        return np.asarray(img)


def read_expert_mask(path: str | Path, *, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read and decode one expert mask; optionally check it against its image's size.

    Parameters
    ----------
    path : str or Path
        An ALL-IDB2 colour TIFF or a Zheng single-channel PNG (or the same formats in other
        containers).
    image_shape : tuple, optional
        Shape of the image the mask belongs to.

    Returns
    -------
    (H, W) uint8 ndarray
        Labels 0 background, 1 cytoplasm, 2 nucleus.

    Raises
    ------
    ExpertMaskError
        The file cannot be read, is in neither format, or differs in size from its image;
        the message names the file.
    """
    path = Path(path)
    try:
        raw = _read_raw(path)
    except Exception as exc:  # PIL and tifffile raise many types for damaged files
        raise ExpertMaskError(f"mask '{path.name}' cannot be read ({type(exc).__name__}: {exc})") from exc
    if raw.dtype != np.uint8:
        raise ExpertMaskError(f"mask '{path.name}' has {raw.dtype} pixels; expert masks are 8-bit")
    try:
        labels = decode_expert_mask(raw)
    except MaskFormatError as exc:
        raise ExpertMaskError(f"mask '{path.name}': {exc}") from exc
    if image_shape is not None and labels.shape != tuple(image_shape[:2]):
        raise ExpertMaskError(
            f"mask '{path.name}' is {labels.shape[0]}x{labels.shape[1]} but its image is "
            f"{image_shape[0]}x{image_shape[1]}; it cannot be compared"
        )
    return labels

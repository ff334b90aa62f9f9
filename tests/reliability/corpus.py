"""A corpus of bad and awkward inputs mixed into a copy of a real (or demo) dataset.

``build_corpus`` copies good images into a new folder twice over: ``clean/`` holds the good
images plus the awkward-but-valid ones (a path with spaces and non-ASCII characters, the same
file name in two folders, a folder link that loops back to the dataset root), ``dirty/`` holds
the same plus one file of each bad kind (:data:`BAD_KINDS`, among them a file link to itself).
A run on ``dirty/`` must process every sample of ``clean/`` exactly as a run on ``clean/`` does,
and list each bad file once in ``rejected.csv``.
"""

from __future__ import annotations

import functools
import io
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def _gray(path: Path, good: np.ndarray) -> None:
    Image.fromarray(good[..., 1]).save(path, format=_pil_format(path))


def _pil_format(path: Path) -> str:
    return {".bmp": "BMP", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}[path.suffix.lower()]


def _save(path: Path, array: np.ndarray) -> None:
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path, format=_pil_format(path))


def _truncated(path: Path, good: np.ndarray) -> None:
    _save(path, good)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@functools.cache
def _huge_png() -> bytes:
    """A black 10000x10000 RGB PNG (made once: compressing it takes seconds)."""
    buffer = io.BytesIO()
    Image.new("RGB", (10000, 10000)).save(buffer, format="PNG")
    return buffer.getvalue()


#: kind -> (file suffix, writer(path, a good RGB image), expected words in the reason)
BAD_KINDS: dict[str, tuple[str, Callable[[Path, np.ndarray], object], str]] = {
    "zero_byte": (".bmp", lambda p, g: p.write_bytes(b""), "empty"),
    "truncated_bmp": (".bmp", _truncated, "truncated"),
    "truncated_tiff": (".tif", _truncated, "TIFF"),
    "text_as_bmp": (".bmp", lambda p, g: p.write_text("this is not an image\n"), "not a readable image"),
    "png_named_bmp": (".bmp", lambda p, g: Image.fromarray(g).save(p, format="PNG"), "extension"),
    "grayscale": (".bmp", _gray, "grayscale"),
    "rgba": (".png", lambda p, g: Image.fromarray(np.dstack([g, np.full(g.shape[:2], 90, np.uint8)]), "RGBA").save(p),
             "RGBA"),
    "sixteen_bit": (".tif", lambda p, g: tifffile.imwrite(p, g.astype(np.uint16) * 257), "uint16"),
    "one_pixel": (".bmp", lambda p, g: Image.fromarray(g[:1, :1]).save(p, format="BMP"), "1x1"),
    "huge": (".png", lambda p, g: p.write_bytes(_huge_png()), "10000x10000"),
    "all_black": (".bmp", lambda p, g: Image.fromarray(np.zeros_like(g)).save(p, format="BMP"), "blank"),
    "all_white": (".bmp", lambda p, g: Image.fromarray(np.full_like(g, 255)).save(p, format="BMP"), "blank"),
    "symlink_loop": (".bmp", lambda p, g: p.symlink_to(p.name), "symbolic link that loops"),
}


@dataclass
class Corpus:
    """The two dataset copies and, per bad kind, the bad file in ``dirty``."""

    clean: Path
    dirty: Path
    bad: dict[str, Path]


def build_corpus(
    dest: Path, good: Sequence[Path], *, name_bad: Callable[[int, str], str], root_of: Callable[[Path], Path],
    awkward_name: str, duplicate_name: str, extras: Sequence[Path] = (),
) -> Corpus:
    """Write ``dest/clean`` and ``dest/dirty`` from the ``good`` images.

    Parameters
    ----------
    dest : Path
        Empty destination.
    good : sequence of Path
        Good images of one dataset; copied with their path relative to ``root_of(path)``.
    name_bad : callable
        ``(index, suffix) -> file path relative to the dataset root`` for the bad files, so that
        the loader of the layout accepts their names (e.g. ``img/Im9NN_1.tif`` for ALL-IDB2).
    root_of : callable
        Dataset root of a good image.
    awkward_name, duplicate_name : str
        Relative paths (with folders) for the valid-but-awkward copies of the second good image:
        a path with spaces and non-ASCII characters, and a second folder holding a file of the
        same name as another.
    extras : sequence of Path
        Other files of the dataset (e.g. a labels CSV), copied to both sides as they are.
    """
    with Image.open(good[0]) as first:
        template = np.asarray(first.convert("RGB"))
    for side in ("clean", "dirty"):
        top = dest / side
        for path in [*good, *extras]:
            target = top / path.relative_to(root_of(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        for relative in (awkward_name, duplicate_name):
            target = top / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(good[1], target)
        loop = top / Path(awkward_name).parent / "loop"
        loop.symlink_to(top, target_is_directory=True)
    bad = {}
    for i, (kind, (suffix, write, _)) in enumerate(BAD_KINDS.items()):
        target = dest / "dirty" / name_bad(i, suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target, template)
        bad[kind] = target
    return Corpus(dest / "clean", dest / "dirty", bad)

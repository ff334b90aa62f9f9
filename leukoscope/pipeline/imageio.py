"""Read cell images as uint8 RGB arrays and label masks, with a clear reason when a file is unusable.

Rules (documented in docs/reliability.md, "Bad input"):

- 8-bit RGB is read as it is; a file whose content is another format than its extension
  says (a PNG, GIF or WebP named ``.bmp``, ``.png`` or ``.jpg``) is rejected, since it is often
  a mislabelled export; 8-bit RGBA whose alpha is fully opaque drops the alpha channel
  (lossless).
- Rejected, with the reason: anything but a regular file (a named pipe, a device) and files
  over :data:`MAX_FILE_BYTES`, both before a byte is read; empty (0-byte) files, files that are
  no image or are truncated, BMPs whose pixel data would start inside their header, TIFFs of
  several full-size pages (which one is the cell?), grayscale images (the stain colour is what
  segmentation and the colour features read), RGBA with transparency, CMYK and other colour
  spaces, 16-bit, 32-bit or float images (no lossless conversion to 8 bits), and images whose
  sides are outside ``[MIN_SIDE, MAX_SIDE]``.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np

from leukoscope.features.regions import NUCLEUS

MIN_SIDE = 16
MAX_SIDE = 4096
IMAGE_SUFFIXES = (".bmp", ".png", ".tif", ".tiff", ".jpg", ".jpeg")
#: largest file read as a cell image: an uncompressed 4096x4096 RGBA image at 16 bits is 128 MiB
MAX_FILE_BYTES = 256 << 20
#: what a PIL pixel mode other than 8-bit RGB(A) or gray is, for the reason of a rejection
_MODES = {
    "CMYK": "CMYK (print) colour", "YCbCr": "YCbCr colour", "LAB": "CIELAB colour", "HSV": "HSV colour",
    "I": "32-bit integer", "F": "32-bit float", "RGBX": "RGB with padding", "RGBa": "premultiplied RGBA",
}

#: TIFF colour spaces other than RGB and gray, by tifffile's PHOTOMETRIC name
_TIFF_COLOURS = {"SEPARATED": _MODES["CMYK"], "CIELAB": _MODES["LAB"], "ICCLAB": _MODES["LAB"], "ITULAB": _MODES["LAB"]}


class ImageReadError(ValueError):
    """A file cannot be used as a cell image; the message says why and what to do."""


_SUFFIX_FORMAT = {".bmp": "bmp", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}
_MAGIC = (
    (b"BM", "bmp"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"), (b"GIF89a", "gif"),
)


def sniff_format(head: bytes) -> str | None:
    """Image format from a file's first 12 bytes (``bmp``, ``png``, ``tiff``, ``jpeg``, ``gif``,
    ``webp``), else ``None``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def check_regular_file(path: str | Path) -> int:
    """The size of ``path`` when it is a regular file of at most :data:`MAX_FILE_BYTES` bytes.

    Looks at the file's metadata only (a named pipe is never opened: opening one waits for a
    writer); symbolic links are followed.

    Raises
    ------
    ImageReadError
        ``path`` is a named pipe, a device, a socket or a folder, or is larger than the cap.
    OSError
        ``path`` cannot be looked at (missing, a link that loops, no permission).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode)
                or stat.S_ISBLK(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file")
        raise ImageReadError(f"'{Path(path).name}' is {kind}, not an image file; only regular files are read")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageReadError(f"'{Path(path).name}' is {info.st_size} bytes, more than any cell image "
                             f"(at most {MAX_FILE_BYTES >> 20} MiB are read); check that it is the right file")
    return info.st_size


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            height, width = page.shape[:2]
            full = [p for p in tif.pages if not getattr(p, "is_reduced", False)]  # not thumbnails
            if len(full) > 1:
                raise ImageReadError(f"'{path.name}' is a TIFF of {len(full)} full-size pages; leukoscope reads one "
                                     "cell image per file: save each page as its own file")
            _check_size(path, height, width)
            colour = _TIFF_COLOURS.get(getattr(page.photometric, "name", ""))
            if colour:
                raise ImageReadError(f"'{path.name}' holds {colour} pixels (TIFF photometric "
                                     f"{page.photometric.name}); convert it to 8-bit RGB")
            return page.asarray()
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(f"'{path.name}' is not a readable TIFF ({type(exc).__name__}: {exc})") from exc


def _read_plain_bmp(path: Path) -> np.ndarray | None:
    """Read an uncompressed 24-bit BMP (what C-NMC ships) directly, several times faster than PIL.

    Returns ``None`` for any other kind of BMP, which PIL then reads.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 54:
        return None
    (offset,) = struct.unpack_from("<I", data, 10)
    header_size, width, height, planes, bits, compression = struct.unpack_from("<IiiHHI", data, 14)
    if offset < 14 + header_size:
        raise ImageReadError(f"'{path.name}' is a damaged BMP: its pixel data would start at byte {offset}, "
                             f"inside its {14 + header_size}-byte header; copy it again from the original")
    if header_size < 40 or planes != 1 or bits != 24 or compression != 0 or width <= 0 or height == 0:
        return None
    _check_size(path, abs(height), width)
    stride = (3 * width + 3) & ~3  # rows are padded to 4 bytes
    needed = offset + stride * abs(height)
    if len(data) < needed:
        raise ImageReadError(f"'{path.name}' is truncated: its header promises {needed} bytes but the file "
                             f"has {len(data)}; copy it again from the original")
    rows = np.frombuffer(data, np.uint8, count=stride * abs(height), offset=offset).reshape(abs(height), stride)
    bgr = rows[:, :3 * width].reshape(abs(height), width, 3)
    return cv2.cvtColor(bgr[::-1] if height > 0 else bgr, cv2.COLOR_BGR2RGB)  # bottom-up unless height < 0


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _check_size guards
            with Image.open(path) as img:
                width, height = img.size
                _check_size(path, height, width)
                img.load()
                mode = img.mode
                if mode == "P":
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                    mode = img.mode
                if mode not in ("RGB", "RGBA", "L", "LA", "1"):
                    what = _MODES.get(mode) or ("16-bit" if mode.startswith("I;16") else f"pixel mode {mode}")
                    raise ImageReadError(f"'{path.name}' holds {what} pixels (PIL mode {mode}); "
                                         "convert it to 8-bit RGB")
                return np.asarray(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"'{path.name}' is far larger than a cell image ({exc}); sides must be at most {MAX_SIDE}"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"'{path.name}' is not a readable image or is truncated ({exc})") from exc


def _check_size(path: Path, height: int, width: int) -> None:
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE:
        raise ImageReadError(
            f"'{path.name}' is {height}x{width} pixels; cell images must have sides between "
            f"{MIN_SIDE} and {MAX_SIDE}"
        )


def read_image(path: str | Path) -> np.ndarray:
    """Read one cell image.

    Parameters
    ----------
    path : str or Path
        A BMP, PNG, TIFF or JPEG file.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        The RGB image.

    Raises
    ------
    ImageReadError
        The file is no regular file, empty, unreadable, truncated, not 8-bit RGB(A), or of an
        implausible size; the message names the file and the reason.
    """
    path = Path(path)
    try:
        size = check_regular_file(path)
    except OSError as exc:
        raise ImageReadError(f"'{path.name}' cannot be opened ({exc.strerror})") from exc
    if size == 0:
        raise ImageReadError(f"'{path.name}' is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(12)
    content = sniff_format(head)
    expected = _SUFFIX_FORMAT.get(path.suffix.lower())
    if content and expected and content != expected:
        fix = (f"rename it to .{content} so that it is not mistaken for another file"
               if content in _SUFFIX_FORMAT.values() else "convert it to PNG, BMP or TIFF (8-bit RGB)")
        raise ImageReadError(f"'{path.name}' holds a {content.upper()} image but its extension says {path.suffix}; {fix}")
    if content == "tiff":
        array = _read_tiff(path)
    else:
        array = _read_plain_bmp(path) if content == "bmp" else None
        if array is None:
            array = _read_pil(path)
    return _to_rgb8(path, array)


def _to_rgb8(path: Path, array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        raise ImageReadError(f"'{path.name}' is a 1-bit (binary) image; cell images must be 8-bit RGB")
    if array.dtype != np.uint8:
        raise ImageReadError(
            f"'{path.name}' has {array.dtype} pixels (e.g. 16-bit); convert it to 8-bit RGB"
        )
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 2)):
        raise ImageReadError(
            f"'{path.name}' is grayscale; leukoscope reads the stain colour, so it needs an RGB image"
        )
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageReadError(f"'{path.name}' has an unexpected shape {array.shape}; expected (H, W, 3)")
    if array.shape[2] == 4:
        if np.any(array[..., 3] != 255):
            raise ImageReadError(
                f"'{path.name}' is RGBA with transparent pixels; flatten it to RGB first"
            )
        array = array[..., :3]
    return np.ascontiguousarray(array)


class MaskReadError(ValueError):
    """A segmentation mask cannot be used with its image; the message says why."""


def read_label_mask(path: str | Path, *, image_shape: tuple[int, int], image_name: str) -> np.ndarray:
    """Read a label mask PNG written by the segmentation stage and check it against its image.

    Parameters
    ----------
    path : str or Path
        One-channel uint8 PNG: 0 background, 1 cytoplasm, 2 nucleus.
    image_shape : (int, int)
        Height and width of the image the mask belongs to.
    image_name : str
        File name of that image, for the error message.

    Returns
    -------
    labels : (H, W) uint8 ndarray

    Raises
    ------
    MaskReadError
        The file is missing or unreadable, not one 8-bit channel, of another size than its
        image, or holds values other than 0, 1 and 2.
    """
    path = Path(path)
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise MaskReadError(f"mask '{path.name}' cannot be read as an image; rerun 'leukoscope segment'")
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise MaskReadError(f"mask '{path.name}' must be one 8-bit channel of labels 0/1/2, "
                            f"got shape {labels.shape} {labels.dtype}; rerun 'leukoscope segment'")
    if labels.shape != tuple(image_shape):
        raise MaskReadError(f"mask '{path.name}' is {labels.shape[0]}x{labels.shape[1]} but its image "
                            f"'{image_name}' is {image_shape[0]}x{image_shape[1]}")
    if labels.max(initial=0) > NUCLEUS:
        bad = sorted(int(v) for v in np.unique(labels[labels > NUCLEUS]))[:5]
        raise MaskReadError(f"mask '{path.name}' holds label values {bad}; expected 0 (background), "
                            "1 (cytoplasm) and 2 (nucleus)")
    return labels

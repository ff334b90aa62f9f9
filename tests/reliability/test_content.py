"""Content checks (issue #14, case 14): GIF and WebP content under an image extension, a BMP whose
pixels start inside its header, a multi-page TIFF, CMYK pixels, and one image under two labels."""

from __future__ import annotations

import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from leukoscope.pipeline import cli
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.rundir import RunDir

from .integrity_data import class_folders, demo_pool, write_config

RGB = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)


def _bmp_with_offset(path: Path, offset: int) -> None:
    Image.fromarray(RGB).save(path, format="BMP")
    data = bytearray(path.read_bytes())
    data[10:14] = struct.pack("<I", offset)
    path.write_bytes(bytes(data))


#: file name -> (writer, words expected in the reason)
ODD = {
    "gif.png": (lambda p: Image.fromarray(RGB).save(p, format="GIF"), "holds a GIF image but its extension says .png"),
    "webp.jpg": (lambda p: Image.fromarray(RGB).save(p, format="WEBP"), "holds a WEBP image but its extension says"),
    "offset0.bmp": (lambda p: _bmp_with_offset(p, 0), "pixel data would start at byte 0, inside its 54-byte header"),
    "pages.tif": (lambda p: tifffile.imwrite(p, np.stack([RGB, RGB[::-1]])), "TIFF of 2 full-size pages"),
    "cmyk.jpg": (lambda p: Image.fromarray(RGB).convert("CMYK").save(p, format="JPEG"), "holds CMYK (print) colour"),
    "cmyk.tif": (lambda p: Image.fromarray(RGB).convert("CMYK").save(p, format="TIFF"), "CMYK"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_content_is_refused_with_its_reason(tmp_path, name):
    write, words = ODD[name]
    write(tmp_path / name)
    with pytest.raises(ImageReadError, match=name.replace(".", r"\.")) as info:
        read_image(tmp_path / name)
    assert words in str(info.value)


def test_a_tiff_with_a_thumbnail_page_is_read_from_its_full_page(tmp_path):
    path = tmp_path / "thumb.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(RGB, photometric="rgb")
        tif.write(RGB[::4, ::4], photometric="rgb", subfiletype=1)  # a reduced-resolution page
    np.testing.assert_array_equal(read_image(path), RGB)


@pytest.mark.slow
def test_odd_files_are_rejected_and_copies_under_two_labels_are_pointed_out(tmp_path, caplog):
    data = class_folders(tmp_path / "data", demo_pool(tmp_path / "pool", cells=16), 3)
    for name, (write, _) in ODD.items():
        write(data / "all" / name)
    shutil.copyfile(data / "all" / "cell_00.bmp", data / "hem" / "copy.bmp")
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="leukoscope"):
        assert cli.main(["segment", "--config", str(write_config(tmp_path / "c.toml")), "--data", str(data),
                         "--out", str(run)]) == 0
    rejected = RunDir(run).read_rejected().set_index("path")["reason"]
    assert sorted(Path(p).name for p in rejected.index) == sorted(ODD)
    for name, (_, words) in ODD.items():
        assert words in rejected[str(data / "all" / name)], name
    assert "1 images are listed more than once with different labels" in caplog.text
    assert "'cell_00.bmp' (ALL) = 'copy.bmp' (HEM)" in caplog.text
    assert RunDir(run).read_info()["dataset"]["conflicting"] == 1

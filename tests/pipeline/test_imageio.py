import numpy as np
import pytest
import tifffile
from PIL import Image

from leukoscope.pipeline.imageio import ImageReadError, read_image


def _rgb(h=32, w=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".bmp", ".png", ".tif"])
def test_rgb_round_trip(tmp_path, suffix):
    image = _rgb()
    path = tmp_path / f"a{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, image)
    else:
        Image.fromarray(image).save(path)
    got = read_image(path)
    assert got.dtype == np.uint8 and got.shape == (32, 40, 3)
    np.testing.assert_array_equal(got, image)


@pytest.mark.parametrize("width", [37, 38, 39, 40])  # every row padding of 24-bit BMP rows
def test_plain_bmp_reads_like_pil_bottom_up_and_top_down(tmp_path, width):
    image = _rgb(21, width)
    path = tmp_path / "a.bmp"
    Image.fromarray(image).save(path)  # PIL writes bottom-up rows
    np.testing.assert_array_equal(read_image(path), image)
    data = bytearray(path.read_bytes())
    offset, stride = int.from_bytes(data[10:14], "little"), (3 * width + 3) & ~3
    rows = [data[offset + k * stride: offset + (k + 1) * stride] for k in range(21)]
    data[22:26] = (-21).to_bytes(4, "little", signed=True)  # negative height: top-down rows
    data[offset:] = b"".join(reversed(rows))
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(read_image(path), image)


def test_other_bmp_kinds_fall_back_to_pil(tmp_path):
    image = _rgb()
    Image.fromarray(image).convert("P").save(tmp_path / "p.bmp")  # 8-bit palette
    expected = np.asarray(Image.open(tmp_path / "p.bmp").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.bmp"), expected)


def test_opaque_rgba_drops_alpha(tmp_path):
    image = np.dstack([_rgb(), np.full((32, 40), 255, np.uint8)])
    Image.fromarray(image, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image[..., :3])


def test_png_named_bmp_is_rejected(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.bmp", format="PNG")
    with pytest.raises(ImageReadError, match=r"'a.bmp' holds a PNG image but its extension says .bmp"):
        read_image(tmp_path / "a.bmp")


def test_huge_image_is_rejected_from_its_header(tmp_path):
    Image.new("RGB", (10000, 10000)).save(tmp_path / "huge.png")
    with pytest.raises(ImageReadError, match="is 10000x10000 pixels"):
        read_image(tmp_path / "huge.png")


def _write_bad(tmp_path, kind):
    path = tmp_path / f"{kind}.bmp"
    if kind == "text":
        path.write_text("not an image")
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "truncated":
        Image.fromarray(_rgb(64, 64)).save(path)
        path.write_bytes(path.read_bytes()[:500])
    elif kind == "gray":
        Image.fromarray(_rgb()[..., 0]).save(path)
    elif kind == "rgba":
        image = np.dstack([_rgb(), np.full((32, 40), 100, np.uint8)])
        path = tmp_path / "rgba.png"
        Image.fromarray(image, "RGBA").save(path)
    elif kind == "16bit":
        path = tmp_path / "16bit.tif"
        tifffile.imwrite(path, np.zeros((32, 32, 3), np.uint16))
    elif kind == "tiny":
        Image.fromarray(_rgb(1, 1)).save(path)
    elif kind == "truncated_tiff":
        path = tmp_path / "t.tif"
        tifffile.imwrite(path, _rgb(64, 64))
        path.write_bytes(path.read_bytes()[:300])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", r"empty \(0 bytes\)"),
        ("text", "not a readable image"),
        ("truncated", "is truncated"),
        ("gray", "is grayscale"),
        ("rgba", "RGBA with transparent pixels"),
        ("16bit", "uint16 pixels"),
        ("tiny", "is 1x1 pixels; cell images must have sides between"),
        ("truncated_tiff", "not a readable TIFF"),
    ],
)
def test_bad_files_raise_with_reason_and_name(tmp_path, kind, message):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert path.name in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="cannot be opened"):
        read_image(tmp_path / "nope.bmp")

import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from leukoscope.pipeline.atomic import write_png
from leukoscope.pipeline.png import FILTER_NONE, FILTER_SUB, deflate, encode_png, filtered_rows


def test_filtered_rows_by_hand():
    grey = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(filtered_rows(grey), [[FILTER_NONE, 0, 1], [FILTER_NONE, 2, 2]])
    rgb = np.array([[[10, 20, 30], [11, 18, 255]]], dtype=np.uint8)
    # Sub: each byte minus the same channel of the pixel to its left, modulo 256
    np.testing.assert_array_equal(filtered_rows(rgb), [[FILTER_SUB, 10, 20, 30, 1, 254, 225]])


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (450, 450), (7, 4, 3), (233, 247, 3)])
def test_every_reader_decodes_the_same_pixels(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    if len(shape) == 2:
        image = image % 3  # a label mask
    data = encode_png(image)
    with Image.open(io.BytesIO(data)) as pil:
        assert pil.mode == ("L" if image.ndim == 2 else "RGB")
        np.testing.assert_array_equal(np.asarray(pil), image)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded if image.ndim == 2 else decoded[..., ::-1], image)


def test_chunks_carry_valid_crcs_and_the_image_size():
    data = encode_png(np.zeros((2, 3, 3), dtype=np.uint8))
    position, kinds = 8, []
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        assert int.from_bytes(data[position + 8 + length:position + 12 + length], "big") == zlib.crc32(kind + body)
        kinds.append(kind)
        position += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert data[16:24] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big")  # width, height


@pytest.mark.parametrize("use_isal", [True, False])
def test_both_deflaters_give_a_zlib_stream_of_the_data(use_isal):
    data = np.random.default_rng(0).integers(0, 4, 10_000, dtype=np.uint8).tobytes() + bytes(5000)
    stream = deflate(data, use_isal=use_isal)
    assert zlib.decompress(stream) == data and len(stream) < len(data) / 2


def test_a_label_mask_compresses_no_worse_than_opencv():
    labels = np.zeros((450, 450), dtype=np.uint8)
    cv2.circle(labels, (225, 225), 150, 1, -1)
    cv2.circle(labels, (225, 225), 90, 2, -1)
    assert len(encode_png(labels)) <= len(cv2.imencode(".png", labels)[1])


def test_write_png_returns_the_digest_of_the_bytes_written(tmp_path):
    import hashlib

    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    digest = write_png(image, tmp_path / "x.png")
    assert digest == hashlib.sha256((tmp_path / "x.png").read_bytes()).hexdigest()
    assert (tmp_path / "x.png").read_bytes() == encode_png(image)


@pytest.mark.parametrize(("image", "match"), [
    (np.zeros((2, 2), dtype=np.uint16), "must be uint8"),
    (np.zeros((2, 2, 4), dtype=np.uint8), r"\(H, W\) or \(H, W, 3\)"),
    (np.zeros((0, 2), dtype=np.uint8), "non-empty"),
])
def test_refuses_what_it_cannot_write(image, match):
    with pytest.raises(ValueError, match=match):
        encode_png(image)

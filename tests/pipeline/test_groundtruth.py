"""Finding expert masks by file stem and reading them with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from leukoscope.pipeline.groundtruth import ExpertMaskError, index_masks, match_masks, read_expert_mask


def _zheng(path, labels):
    Image.fromarray(np.array([0, 128, 255], np.uint8)[labels]).save(path)


def test_match_by_stem_skips_the_image_itself(tmp_path):
    # Zheng layout: image and mask side by side in one folder
    (tmp_path / "001.bmp").write_bytes(b"image")
    _zheng(tmp_path / "001.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "002.bmp").write_bytes(b"image")
    matches = match_masks([str(tmp_path / "001.bmp"), str(tmp_path / "002.bmp")], tmp_path)
    assert matches[0].path == str((tmp_path / "001.png").resolve()) and matches[0].problem == ""
    assert matches[1].path == "" and matches[1].problem == "missing"


def test_masks_are_found_in_subfolders_and_ambiguity_is_reported(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "masks" / "a").mkdir(parents=True)
    (tmp_path / "masks" / "b").mkdir()
    image = tmp_path / "img" / "Im001_1.tif"
    image.write_bytes(b"x")
    (tmp_path / "masks" / "a" / "Im001_1.tif").write_bytes(b"x")
    assert match_masks([str(image)], tmp_path)[0].path.endswith("Im001_1.tif")
    (tmp_path / "masks" / "b" / "Im001_1.png").write_bytes(b"x")
    match = match_masks([str(image)], tmp_path)[0]
    assert match.path == "" and "2 possible masks for 'Im001_1.tif'" in match.problem
    assert sorted(index_masks(tmp_path / "masks")) == ["Im001_1"]


def test_missing_masks_folder(tmp_path):
    with pytest.raises(ExpertMaskError, match="does not exist or is not a folder"):
        match_masks([], tmp_path / "nowhere")


def test_read_both_formats(tmp_path):
    colours = np.array([[255, 255, 255], [0, 0, 255], [0, 255, 255]], np.uint8)
    labels = np.array([[0, 1], [2, 2]], np.uint8)
    tifffile.imwrite(tmp_path / "allidb.tif", colours[labels])
    _zheng(tmp_path / "zheng.png", labels)
    assert read_expert_mask(tmp_path / "allidb.tif").tolist() == labels.tolist()
    assert read_expert_mask(tmp_path / "zheng.png", image_shape=(2, 2, 3)).tolist() == labels.tolist()


def test_size_mismatch_names_the_file(tmp_path):
    _zheng(tmp_path / "Im004_1.png", np.zeros((257, 250), np.uint8))
    with pytest.raises(ExpertMaskError, match=r"mask 'Im004_1.png' is 257x250 but its image is 257x257"):
        read_expert_mask(tmp_path / "Im004_1.png", image_shape=(257, 257, 3))


@pytest.mark.parametrize("content, message", [
    (b"", "cannot be read"),
    (b"not an image at all", "cannot be read"),
])
def test_unreadable_mask(tmp_path, content, message):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(ExpertMaskError, match=f"mask 'bad.png' {message}"):
        read_expert_mask(tmp_path / "bad.png")


def test_photo_is_not_a_mask(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(tmp_path / "p.png")
    with pytest.raises(ExpertMaskError, match="mask 'p.png': .* is this an expert mask"):
        read_expert_mask(tmp_path / "p.png")


def test_sixteen_bit_mask(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(ExpertMaskError, match="uint16 pixels"):
        read_expert_mask(tmp_path / "m.tif")

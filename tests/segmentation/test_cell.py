"""segment_cell: both kinds of surround, degenerate images, invariances, the real-data target."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from leukoscope.pipeline.config import SegmentationConfig
from leukoscope.segmentation.cell import BLACK_LEVEL, detect_background, is_blank, segment_cell
from leukoscope.segmentation.choices import Background, QCFlag
from leukoscope.segmentation.metrics import label_scores
from leukoscope.segmentation.qc import nucleus_contrast

from .drawn_cells import black_cell, smear_cell


def test_defaults_are_the_config_defaults():
    config = SegmentationConfig()
    for name, parameter in segment_cell.__kwdefaults__.items():
        assert getattr(config, name) == parameter, name
    assert {f.name for f in dataclasses.fields(config)} >= set(segment_cell.__kwdefaults__)


def test_black_background_cell_is_the_non_black_region():
    image, truth = black_cell()
    result = segment_cell(image)
    assert result.background is Background.BLACK
    assert result.cell_threshold == BLACK_LEVEL
    np.testing.assert_array_equal(result.labels > 0, np.any(image > BLACK_LEVEL, axis=2))
    assert label_scores(result.labels, truth)["dice_nucleus"] > 0.98
    assert result.qc_flag == ""


def test_smear_cell_with_a_touching_red_cell():
    image, truth = smear_cell()
    result = segment_cell(image)
    assert result.background is Background.SMEAR
    scores = label_scores(result.labels, truth)
    assert scores["dice_cell"] > 0.97 and scores["dice_nucleus"] > 0.97


def test_measurements_row():
    image, truth = black_cell()
    row = segment_cell(image).measurements()
    assert row["cell_area"] == np.count_nonzero(truth)
    assert row["cell_area"] == row["nucleus_area"] + row["cytoplasm_area"]
    assert row["nucleus_cell_ratio"] == pytest.approx(row["nucleus_area"] / row["cell_area"])
    assert row["background"] == "black"
    assert list(row) == ["background", "cell_threshold", "nucleus_threshold", "cell_area", "nucleus_area",
                         "cytoplasm_area", "nucleus_cell_ratio", "qc_flag", "qc_score", "excluded_area"]
    assert row["qc_flag"] == "" and row["qc_score"] == 0.0 and row["excluded_area"] == 0


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_images_give_an_empty_mask_and_a_flag(value):
    image = np.full((40, 50, 3), value, np.uint8)
    assert is_blank(image)
    result = segment_cell(image)
    assert result.qc_flag == QCFlag.BLANK_IMAGE.value
    assert result.labels.shape == (40, 50) and not result.labels.any()
    row = result.measurements()
    assert row["cell_area"] == 0 and math.isnan(row["nucleus_cell_ratio"])


def test_nearly_black_image_has_no_cell():
    image = np.zeros((40, 40, 3), np.uint8)
    image[::2, ::2] = BLACK_LEVEL  # varies, so not blank, but nothing above the black level
    assert not is_blank(image)
    assert segment_cell(image, background="black").qc_flag == QCFlag.NO_CELL.value


def test_flat_cell_has_no_nucleus():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:30, 10:30] = (180, 165, 215)
    result = segment_cell(image)
    assert result.qc_flag == QCFlag.NO_NUCLEUS.value
    assert (result.labels == 1).sum() == 400 and not (result.labels == 2).any()


def test_detect_background():
    assert detect_background(black_cell()[0]) is Background.BLACK
    assert detect_background(smear_cell()[0]) is Background.SMEAR


@pytest.mark.parametrize("make", [black_cell, smear_cell])
@pytest.mark.parametrize("transform", [np.flipud, np.fliplr, lambda a: np.rot90(a, 1), np.transpose])
def test_flip_and_rotation_invariance(make, transform):
    image, _ = make(seed=4)
    expected = transform(segment_cell(image).labels)
    moved = np.ascontiguousarray(np.transpose(image, (1, 0, 2)) if transform is np.transpose else transform(image))
    np.testing.assert_array_equal(segment_cell(moved).labels, expected)


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        segment_cell(np.zeros((10, 10, 3), np.float64))
    with pytest.raises(ValueError, match="not a valid Channel"):
        segment_cell(black_cell()[0], nucleus_channel="purple")


def _demo_cells(tmp_path) -> list[np.ndarray]:
    from leukoscope.pipeline.demo import generate_demo
    from leukoscope.pipeline.imageio import read_image

    top = generate_demo(tmp_path, subjects=4, cells=16)
    return [read_image(str(path)) for path in sorted(top.rglob("*.bmp"))]


def _adversarial_cells() -> list[np.ndarray]:
    """Synthetic cells whose stain channel is higher on the (bright, bluish) cytoplasm."""
    from leukoscope.pipeline.synthetic import Stain, synthesize_cell

    stain = Stain(nucleus_rgb=(80.0, 60.0, 100.0), cytoplasm_rgb=(150.0, 165.0, 240.0),
                  brightness=1.0, gradient=0.1, noise=5.0)
    return [synthesize_cell(np.random.default_rng(seed), blast=seed % 2 == 0, stain=stain, size=225)[0]
            for seed in range(4)]


def test_no_brighter_nucleus_leaves_without_a_flag(tmp_path):
    """Issue #15: on C-NMC-style cells a "nucleus" brighter than its cytoplasm is fixed or flagged."""
    demo, adversarial = _demo_cells(tmp_path), _adversarial_cells()
    assert len(demo) == 16
    for image in demo + adversarial:
        result = segment_cell(image, background="black")
        if nucleus_contrast(image, result.labels) < 0:
            assert result.qc_flag, "a brighter nucleus left without a flag"
    for image in demo:  # the demo's stains are the usual ones: nothing to fix or flag
        assert segment_cell(image, background="black").qc_flag == ""
    for image in adversarial:  # the stain channel picks the cytoplasm; luminance puts it right
        result = segment_cell(image, background="black")
        assert result.qc_flag == "nucleus_inverted_fixed" and nucleus_contrast(image, result.labels) > 0


@pytest.mark.shared_data
@pytest.mark.slow
def test_allidb2_nucleus_dice_target(shared_data):
    """The issue's target: mean nucleus Dice >= 0.93 on ALL-IDB2 with the default settings."""
    from leukoscope.pipeline.groundtruth import match_masks, read_expert_mask
    from leukoscope.pipeline.imageio import read_image

    paths = sorted(str(p) for p in (shared_data / "all-idb2" / "img").glob("*.tif"))
    assert len(paths) == 260
    nucleus, cell = [], []
    for path, match in zip(paths, match_masks(paths, shared_data / "all-idb2" / "masks")):
        image = read_image(path)
        scores = label_scores(segment_cell(image).labels, read_expert_mask(match.path, image_shape=image.shape))
        nucleus.append(scores["dice_nucleus"])
        cell.append(scores["dice_cell"])
    assert np.mean(nucleus) >= 0.93
    assert np.mean(cell) >= 0.90  # the naive saturation + triangle baseline scores 0.70

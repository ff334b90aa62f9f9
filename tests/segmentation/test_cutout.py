"""C-NMC-like cut-outs of expert-masked crops."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.cutout import expert_cutout


def _crop() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((21, 21, 3), 200, np.uint8)
    labels = np.zeros((21, 21), np.uint8)
    labels[10, 10] = 2
    labels[9:12, 9:12] = np.maximum(labels[9:12, 9:12], 1)
    return image, labels


def test_margin_zero_keeps_the_cell_exactly():
    image, labels = _crop()
    out = expert_cutout(image, labels, margin=0)
    np.testing.assert_array_equal(out.any(axis=2), labels > 0)
    assert image.all()  # the input is not modified


def test_margin_is_a_disc():
    image, labels = _crop()
    kept = expert_cutout(image, labels, margin=3).any(axis=2)
    assert kept[10, 14] and kept[10, 6] and not kept[10, 15] and not kept[10, 5]  # 3 pixels beyond the square (9-11)
    assert kept[13, 13] and not kept[14, 14]  # from the corner (11, 11): (2, 2) is 2.8 away, (3, 3) 4.2
    assert not kept[14, 12]  # (3, 1) from the corner: 3.16 > 3
    np.testing.assert_array_equal(kept, kept.T)


def test_bad_arguments():
    image, labels = _crop()
    with pytest.raises(ValueError, match="margin must be 0 or more"):
        expert_cutout(image, labels, margin=-1)
    with pytest.raises(ValueError, match="must match"):
        expert_cutout(image, labels[:-1], margin=2)


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize(("folder", "pattern", "masks"), [
    ("all-idb2/img", "*.tif", "all-idb2/masks"),
    ("zheng-wbc/dataset1", "*.bmp", "zheng-wbc/dataset1"),
    ("zheng-wbc/dataset2", "*.bmp", "zheng-wbc/dataset2"),
])
def test_cutout_nucleus_dice_target(shared_data, folder, pattern, masks):
    """Issue #15: on cut-outs with a 10-pixel ring of smear, mean nucleus Dice >= 0.93 and no
    nucleus Dice below 0.5 without a qc_flag (all margins: bench/segmentation_dice.py --cutout)."""
    from leukoscope.pipeline.groundtruth import match_masks, read_expert_mask
    from leukoscope.pipeline.imageio import read_image
    from leukoscope.segmentation.cell import segment_cell
    from leukoscope.segmentation.metrics import dice

    paths = sorted(str(p) for p in (shared_data / folder).glob(pattern))
    scores, unflagged = [], []
    for path, match in zip(paths, match_masks(paths, shared_data / masks)):
        image = read_image(path)
        truth = read_expert_mask(match.path, image_shape=image.shape)
        result = segment_cell(expert_cutout(image, truth, margin=10), background="black")
        scores.append(dice(result.labels == 2, truth == 2))
        if scores[-1] < 0.5 and not result.qc_flag:
            unflagged.append(path)
    assert np.mean(scores) >= 0.93
    assert unflagged == []

import dataclasses

import numpy as np
import pytest

from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.refine import (
    MIN_CONFIDENCE,
    _predict,
    keep_outline,
    model_side,
    refine_cells,
    refine_labels,
    refine_result,
    refiner_doubt,
    tidy_labels,
)
from leukoscope.segmentation.unet import build_unet

from .test_unet import cell_image, disc_labels


@pytest.fixture(scope="module")
def untrained():
    """An untrained refiner returns its threshold input (see build_unet)."""
    return build_unet(side=32, depth=2, width=4)


def test_untrained_refiner_keeps_clean_threshold_labels(untrained):
    assert model_side(untrained) == 32
    labels = [disc_labels(64, 24, 10), disc_labels(48, 18, 8)[:, 4:44]]  # square and 48x40
    images = [cell_image(lab) for lab in labels]
    refined = refine_labels(untrained, images, labels, min_size=16, batch_size=1)
    for lab, out in zip(labels, refined):
        assert out.shape == lab.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, lab)  # nothing changed: the full-resolution labels stay


def test_empty_threshold_mask_still_gives_a_label_mask(untrained):
    image = cell_image(disc_labels(40, 15, 6))
    (out,) = refine_labels(untrained, [image], [np.zeros((40, 40), dtype=np.uint8)])
    assert out.shape == (40, 40) and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1, 2}


def test_batches_give_the_same_result_as_single_images(untrained):
    labels = [disc_labels(32, r, r // 2) for r in (8, 10, 12)]
    images = [cell_image(lab) for lab in labels]
    one = refine_labels(untrained, images, labels, batch_size=1, min_size=4)
    many = refine_labels(untrained, images, labels, batch_size=3, min_size=4)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


def test_mismatched_inputs_are_refused(untrained):
    with pytest.raises(ValueError, match="2 images but 1 label masks"):
        refine_labels(untrained, [cell_image(disc_labels(8, 3, 1))] * 2, [disc_labels(8, 3, 1)])


def test_tidy_labels_keeps_the_central_cell_and_its_nucleus():
    labels = np.zeros((12, 12), dtype=np.uint8)
    labels[3:9, 3:9] = 1
    labels[5:7, 5:7] = 2
    labels[4, 4] = 0  # a hole in the cell
    labels[0:2, 10:12] = 2  # a stray "nucleus" outside the cell, 4 pixels
    labels[11, 0] = 1  # a speck
    out = tidy_labels(labels, min_size=8)
    expected = np.zeros((12, 12), dtype=np.uint8)
    expected[3:9, 3:9] = 1
    expected[5:7, 5:7] = 2
    np.testing.assert_array_equal(out, expected)


def test_tidy_labels_of_nothing_is_empty():
    assert not tidy_labels(np.zeros((5, 5), dtype=np.uint8), min_size=4).any()


def test_refine_result_recomputes_the_qc_flag(untrained):
    labels = disc_labels(32, 12, 5)
    image = cell_image(labels)
    result = segment_cell(image, background="smear", min_size=4)
    missed = dataclasses.replace(result, labels=np.zeros_like(labels), qc_flag="no_cell")
    refined, reason = refine_result(untrained, image, missed, min_size=4)
    assert refined.qc_flag == "no_cell" and not refined.labels.any() and reason == ""  # untrained: nothing to add
    kept, reason = refine_result(untrained, image, dataclasses.replace(result, labels=labels), min_size=4)
    assert kept.qc_flag == "" and kept.cell_threshold == result.cell_threshold and reason == ""
    no_nucleus, _ = refine_result(untrained, image, dataclasses.replace(result, labels=(labels > 0).astype(np.uint8)),
                                  min_size=4)
    assert no_nucleus.qc_flag == "no_nucleus"
    # what the image held is kept, what the threshold made of the nucleus is judged again
    flagged = dataclasses.replace(result, labels=labels, qc_flag="multiple_cells;nucleus_inverted_fixed",
                                  excluded_area=7)
    again, _ = refine_result(untrained, image, flagged, min_size=4)
    assert again.qc_flag == "multiple_cells" and again.excluded_area == 7


def test_integer_and_boolean_threshold_masks_are_read_as_labels(untrained):
    labels = disc_labels(40, 15, 6)
    image = cell_image(labels)
    (expected,) = refine_labels(untrained, [image], [labels], min_size=16)
    (from_int,) = refine_labels(untrained, [image], [labels.astype(np.int32)], min_size=16)
    np.testing.assert_array_equal(from_int, expected)
    with pytest.raises(ValueError, match=r"labels holds values \[255\]"):
        refine_labels(untrained, [image], [(labels > 0).astype(np.uint8) * 255])


def test_the_guard_keeps_the_threshold_labels_where_the_refiner_does_harm():
    threshold = disc_labels(60, 15, 8)
    assert refiner_doubt(threshold, threshold) == ""
    blobs = (threshold > 0).astype(np.uint8)
    blobs[29:31, 29:31] = 2  # the nucleus shrunk to a blob (4 of 208 pixels)
    assert refiner_doubt(threshold, blobs).startswith("the refiner kept 2% of the nucleus")
    assert refiner_doubt(threshold, np.zeros_like(threshold)) == "the refiner removed the whole cell"
    assert refiner_doubt(threshold, disc_labels(60, 19, 8)) == ""  # 1.6x the area: 36% of the union changed
    grown = disc_labels(60, 26, 8)  # 3x the area: 66% of the union changed class
    assert refiner_doubt(threshold, grown).startswith("the refiner changed 66% of the cell (> 60%)")
    assert refiner_doubt(np.zeros_like(threshold), threshold) == ""  # a cell found where none was: allowed
    assert refiner_doubt(threshold, threshold, confidence=MIN_CONFIDENCE) == ""
    assert refiner_doubt(threshold, threshold, confidence=0.61) == "the refiner's mean confidence is 0.61 (< 0.7)"


def test_keep_outline_takes_the_threshold_cell_and_the_refined_nucleus_inside_it():
    threshold = np.array([[0, 1, 1, 1],
                          [0, 1, 2, 1],
                          [0, 1, 2, 1]], dtype=np.uint8)
    refined = np.array([[1, 2, 1, 0],
                        [1, 2, 2, 0],
                        [0, 1, 1, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(keep_outline(threshold, refined), [[0, 2, 1, 1],
                                                                     [0, 2, 2, 1],
                                                                     [0, 1, 1, 1]])


def test_on_a_black_surround_only_the_nucleus_is_refined():
    model = build_unet(side=32, depth=2, width=4)
    kernel, bias = model.get_layer("threshold_prior").get_weights()
    model.get_layer("threshold_prior").set_weights([kernel, bias + np.array([20.0, 0.0, 0.0], dtype=np.float32)])
    labels = disc_labels(32, 12, 5)
    image = cell_image(labels)
    (smear,), (black,) = (refine_cells(model, [image], [labels], min_size=4, black=b) for b in ([False], [True]))
    assert not smear.labels.any()  # this refiner calls every pixel background
    np.testing.assert_array_equal(black.labels, (labels > 0).astype(np.uint8))  # the cell stays, without nucleus


def test_confidence_of_an_untrained_refiner_is_its_prior(untrained):
    """Untrained, every pixel gets logit 3 for the threshold class and 0 for the other two."""
    labels = disc_labels(48, 16, 7)
    (cell,) = refine_cells(untrained, [cell_image(labels)], [labels], min_size=16)
    assert cell.confidence == pytest.approx(np.exp(3) / (np.exp(3) + 2), abs=1e-5)
    np.testing.assert_array_equal(cell.labels, labels)


def test_flips_average_eight_views_and_keep_an_equivariant_answer(untrained):
    labels = disc_labels(48, 16, 7, shift=3)
    image = cell_image(labels)
    (plain,), (flipped,) = (refine_cells(untrained, [image], [labels], min_size=16, flips=f) for f in (False, True))
    np.testing.assert_array_equal(flipped.labels, plain.labels)  # pixel-wise prior: the same in every view
    assert flipped.confidence == pytest.approx(plain.confidence, abs=1e-5)
    model = build_unet(side=32, depth=2, width=4, seed=3)
    correction = model.get_layer("correction_logits")
    rng = np.random.default_rng(1)
    correction.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in correction.get_weights()])
    x = np.random.default_rng(0).random((1, 32, 32, 5), dtype=np.float32)
    turned = np.rot90(x, 1, axes=(1, 2))[:, :, ::-1]
    # the averaged answer turns with its input; the plain one does not
    np.testing.assert_allclose(_predict(model, turned, flips=True),
                               np.rot90(_predict(model, x, flips=True), 1, axes=(1, 2))[:, :, ::-1], atol=1e-5)
    assert not np.allclose(_predict(model, turned, flips=False),
                           np.rot90(_predict(model, x, flips=False), 1, axes=(1, 2))[:, :, ::-1], atol=1e-3)


def test_refine_result_skips_a_refiner_that_erases_the_nucleus():
    model = build_unet(side=32, depth=2, width=4)
    prior = model.get_layer("threshold_prior")
    prior.set_weights([np.zeros_like(w) for w in prior.get_weights()])
    correction = model.get_layer("correction_logits")
    kernel, bias = correction.get_weights()
    correction.set_weights([np.zeros_like(kernel), np.array([0.0, 10.0, 0.0], dtype=bias.dtype)])  # all cytoplasm
    labels = disc_labels(32, 12, 5)
    image = cell_image(labels)
    result = segment_cell(image, background="smear", min_size=4)
    out, reason = refine_result(model, image, dataclasses.replace(result, labels=labels), min_size=4)
    assert out.qc_flag == "refiner_skipped" and "of the nucleus" in reason
    np.testing.assert_array_equal(out.labels, labels)
    flagged = dataclasses.replace(result, labels=labels, qc_flag="debris_removed")
    assert refine_result(model, image, flagged, min_size=4)[0].qc_flag == "debris_removed;refiner_skipped"

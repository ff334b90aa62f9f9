"""Colour and size signatures of cell images, and the nearest-neighbour test of unlike images."""

import cv2
import numpy as np
import pytest

from leukoscope.segmentation.domain import SIGNATURE_NAMES, TrainingDomain, image_signature


def test_signature_of_flat_colours_worked_out_by_hand():
    image = np.zeros((10, 10, 3), np.uint8)
    image[2:8, 2:8] = (255, 255, 255)  # the cell: white, its nucleus a 2x2 pure red
    image[4:6, 4:6] = (255, 0, 0)
    labels = np.zeros((10, 10), np.uint8)
    labels[2:8, 2:8] = 1
    labels[4:6, 4:6] = 2
    red = cv2.cvtColor(np.array([[[255, 0, 0]]], np.uint8), cv2.COLOR_RGB2LAB)[0, 0]
    signature = image_signature(image, labels)
    assert signature.shape == (len(SIGNATURE_NAMES),)
    np.testing.assert_array_equal(signature[:3], red)
    np.testing.assert_array_equal(signature[3:6], [255, 128, 128])  # 32 of the 36 cell pixels are white
    assert signature[6] == pytest.approx(np.log(np.sqrt(4 * 36 / np.pi)))


def test_no_signature_without_a_nucleus():
    labels = np.zeros((5, 5), np.uint8)
    labels[1:4, 1:4] = 1
    assert image_signature(np.zeros((5, 5, 3), np.uint8), labels) is None


def _line(values):
    signatures = np.zeros((len(values), len(SIGNATURE_NAMES)))
    signatures[:, 0] = values
    return signatures


def test_limit_and_distance_worked_out_by_hand():
    domain = TrainingDomain.fit(_line([0, 1, 2, 3, 4, 5]), neighbours=1, quantile=0.95, factor=1.5)
    scale = np.std([0, 1, 2, 3, 4, 5])  # sqrt(35 / 12)
    assert domain.scale[0] == pytest.approx(scale)
    assert domain.limit == pytest.approx(1.5 / scale)  # every point's nearest other point is 1 away
    assert domain.distance(_line([5.5])[0]) == pytest.approx(0.5 / scale)
    assert domain.unlike(_line([5.5])[0]) == ""
    assert domain.distance(_line([7])[0]) == pytest.approx(2 / scale)
    assert domain.unlike(_line([7])[0]).startswith("the image's colours and cell size are unlike")
    off = _line([2])[0]
    off[3] = 0.001  # a feature that never varied in training: any change of it is unlike
    assert domain.unlike(off)
    assert domain.unlike(None) == ""


def test_the_kth_neighbour_lets_an_image_between_two_clusters_be_unlike_both():
    clusters = np.concatenate([_line(np.linspace(0, 1, 20)), _line(np.linspace(10, 11, 20))])
    domain = TrainingDomain.fit(clusters)
    assert not domain.unlike(_line([0.5])[0]) and not domain.unlike(_line([10.5])[0])
    assert domain.unlike(_line([5.5])[0])  # near the mean of all, far from every training image


def test_round_trip_through_a_json_record_and_bad_records():
    domain = TrainingDomain.fit(np.random.default_rng(0).normal(size=(30, len(SIGNATURE_NAMES))))
    again = TrainingDomain.from_dict(domain.to_dict())
    point = np.full(len(SIGNATURE_NAMES), 0.3)
    assert again.distance(point) == pytest.approx(domain.distance(point), abs=1e-3)
    assert again.limit == pytest.approx(domain.limit) and again.neighbours == domain.neighbours
    with pytest.raises(ValueError, match="a training domain of features"):
        TrainingDomain.from_dict({**domain.to_dict(), "features": ["l", "a", "b"]})
    with pytest.raises(ValueError, match="arrays of shapes"):
        TrainingDomain.from_dict({**domain.to_dict(), "scale": [1.0, 2.0]})
    with pytest.raises(ValueError, match="needs more than 5 signatures, got 5"):
        TrainingDomain.fit(np.zeros((5, len(SIGNATURE_NAMES))))
    with pytest.raises(ValueError, match=r"signatures must be \(n, 7\)"):
        TrainingDomain.fit(np.zeros((10, 3)))

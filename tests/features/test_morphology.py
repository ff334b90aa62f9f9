import math

import numpy as np
import pytest
from scipy.spatial import ConvexHull
from skimage.measure import perimeter_crofton, regionprops

from leukoscope.features.morphology import COLUMNS, convex_hull_measures, morphology_features, shape_features


def _image(labels):
    return np.zeros((*labels.shape, 3), np.uint8)


def test_hand_computed_rectangle():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:9] = 1  # 4 x 6 pixels
    f = shape_features(mask)
    assert f["area"] == 24.0
    # a chain of 16 axial steps round the 3 x 5 rectangle of boundary pixel centres (Kulpa)
    assert f["perimeter"] == pytest.approx(16 * math.pi / 8 * (1 + math.sqrt(2)))
    assert f["equivalent_diameter"] == pytest.approx(math.sqrt(4 * 24 / math.pi))
    # coordinates are uniform on 0..5 and 0..3: variances 35/12 and 15/12
    assert f["major_axis"] == pytest.approx(4 * math.sqrt(35 / 12))
    assert f["minor_axis"] == pytest.approx(4 * math.sqrt(15 / 12))
    assert f["eccentricity"] == pytest.approx(math.sqrt(1 - 15 / 35))
    assert (f["solidity"], f["convexity"]) == (1.0, 1.0)
    assert f["circularity"] == pytest.approx(4 * math.pi * 24 / f["perimeter"] ** 2)
    assert f["hu_1"] == pytest.approx((24 * 35 / 12 + 24 * 15 / 12) / 24**2)
    assert f["hu_3"] == pytest.approx(0.0, abs=1e-15)


def test_matches_skimage_regionprops(cell):
    _, labels = cell
    nucleus = (labels == 2).astype(np.uint8)
    props = regionprops(nucleus)[0]
    f = shape_features(nucleus)
    assert f["area"] == props.area
    assert f["major_axis"] == pytest.approx(props.axis_major_length, rel=1e-10)
    assert f["minor_axis"] == pytest.approx(props.axis_minor_length, rel=1e-10)
    assert f["eccentricity"] == pytest.approx(props.eccentricity, rel=1e-10)
    hu = props.moments_hu.copy()
    hu[6] = abs(hu[6])
    np.testing.assert_allclose([f[f"hu_{k}"] for k in range(1, 8)], hu, rtol=1e-6, atol=1e-15)
    assert f["perimeter"] == pytest.approx(perimeter_crofton(nucleus, directions=4), rel=0.03)


def test_disc_is_round_and_smooth():
    yy, xx = np.mgrid[:101, :101]
    disc = ((yy - 50) ** 2 + (xx - 50) ** 2 <= 40**2).astype(np.uint8)
    f = shape_features(disc)
    assert f["perimeter"] == pytest.approx(2 * math.pi * 40, rel=0.01)
    assert f["circularity"] == pytest.approx(1.0, abs=0.02)
    assert f["eccentricity"] < 0.05 and f["solidity"] > 0.98 and f["convexity"] > 0.99
    assert f["roughness"] < 0.5
    sector = (np.arctan2(yy - 50, xx - 50) * 8 // np.pi) % 2  # 16 alternating sectors
    star = ((yy - 50) ** 2 + (xx - 50) ** 2 <= np.where(sector == 0, 30, 40) ** 2).astype(np.uint8)
    g = shape_features(star)
    assert g["roughness"] > 2 * f["roughness"] and g["solidity"] < f["solidity"]
    assert g["convexity"] < f["convexity"]


@pytest.mark.parametrize("transform", [np.rot90, np.fliplr, np.flipud, lambda a: np.rot90(a, 3)],
                         ids=["rot90", "fliplr", "flipud", "rot270"])
def test_invariant_to_right_angle_rotations_and_flips(cell, transform):
    image, labels = cell
    expected = morphology_features(image, labels)
    moved = morphology_features(np.ascontiguousarray(transform(image)), np.ascontiguousarray(transform(labels)))
    assert list(moved) == list(expected)
    np.testing.assert_allclose(list(moved.values()), list(expected.values()), rtol=1e-9, atol=1e-15)


def test_ratio_lobes_and_cytoplasm_area():
    labels = np.zeros((8, 8), np.uint8)
    labels[1:7, 1:7] = 1  # 36-pixel cell
    labels[2, 2] = labels[3, 3] = 2  # diagonal neighbours: one 8-connected lobe
    labels[5, 5] = labels[5, 4] = 2  # a second lobe
    f = morphology_features(_image(labels), labels)
    assert f["morph_nc_ratio"] == pytest.approx(4 / 36)
    assert f["morph_lobes_nucleus"] == 2.0
    assert f["morph_area_cytoplasm"] == 32.0
    assert list(f) == [c.name for c in COLUMNS]


def test_missing_nucleus_gives_nan_not_zero():
    labels = np.zeros((8, 8), np.uint8)
    labels[1:7, 1:7] = 1
    f = morphology_features(_image(labels), labels)
    nucleus = [k for k in f if "nucleus" in k or k == "morph_nc_ratio"]
    assert nucleus and all(math.isnan(f[k]) for k in nucleus)
    assert f["morph_area_cell"] == 36.0


@pytest.mark.parametrize("seed", range(5))
def test_convex_hull_measures_are_exact(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(2, 30, size=(12, 2))
    pixels, perimeter = convex_hull_measures(points)
    vertices = points[ConvexHull(points).vertices]  # brute force: half-plane test of every pixel
    yy, xx = np.mgrid[:32, :32]
    inside = np.ones((32, 32), bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    assert pixels == inside.sum()
    assert perimeter == pytest.approx(shape_features(inside)["perimeter"])  # its traced boundary


def test_convex_hull_measures_of_degenerate_hulls():
    kulpa = math.pi / 8 * (1 + math.sqrt(2))
    # a segment (0, 0)-(2, 1): its two end pixels; one axial and one diagonal step, there and back
    assert convex_hull_measures(np.array([[0, 0], [2, 1]])) == (2, pytest.approx(kulpa * 2 * (1 + math.sqrt(2))))
    assert convex_hull_measures(np.array([[3, 3]]))[0] == 1

import math
import re
from pathlib import Path

import numpy as np
import pytest

from leukoscope.features import colour, haralick, intensity, morphology
from leukoscope.features.choices import Family
from leukoscope.features.registry import (
    DICTIONARY_COLUMNS,
    FAMILIES,
    compute_features,
    data_dictionary,
    feature_names,
)
from leukoscope.segmentation import as_label_mask

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"
PREFIX = {Family.INTENSITY: "intensity_", Family.HARALICK: "haralick_", Family.MORPHOLOGY: "morph_",
          Family.COLOUR: "colour_"}


def test_every_family_returns_exactly_what_it_declares(cell):
    image, labels = cell
    for family, spec in FAMILIES.items():
        declared = [c.name for c in spec.columns]
        assert list(spec.compute(image, labels)) == declared, family
        assert all(name.startswith(PREFIX[family]) for name in declared)
        assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) for name in declared)
    names = feature_names()
    assert len(names) == len(set(names))
    result = compute_features(image, labels)
    assert list(result.values) == names
    assert result.qc_flag == ""


def test_data_dictionary_describes_every_column():
    table = data_dictionary()
    assert list(table.columns) == DICTIONARY_COLUMNS
    assert list(table["name"]) == feature_names()
    assert (table["description"].str.len() > 10).all() and (table["unit"] != "").all()
    assert set(table["family"]) == {f.value for f in Family}
    assert set(table["region"]) <= {"nucleus", "cytoplasm", "cell", "nucleus+cell", "nucleus+cytoplasm"}


def test_docs_document_every_feature_word():
    text = DOCS.read_text(encoding="utf-8")
    words = [*intensity.STATS, *intensity.CHANNELS, *haralick.FEATURES, *haralick.AGGREGATES,
             *morphology.SHAPE, "morph_area_cytoplasm", "morph_nc_ratio", "morph_lobes_nucleus",
             *colour.PER_REGION, *colour.CONTRASTS]
    missing = [w for w in words if f"`{w}`" not in text and w not in text]
    assert not missing, f"{DOCS.name} does not document {missing}"


def test_families_are_chosen_and_ordered():
    image = np.full((6, 6, 3), 40, np.uint8)
    labels = np.ones((6, 6), np.uint8)
    values = compute_features(image, labels, families=["haralick", Family.INTENSITY]).values
    assert list(values) == feature_names([Family.INTENSITY, Family.HARALICK])


def test_empty_nucleus_gives_nan_and_a_flag_never_a_crash():
    image = np.random.default_rng(0).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    labels = np.zeros((12, 12), np.uint8)
    labels[2:10, 2:10] = 1
    result = compute_features(image, labels)
    nucleus_columns = [c.name for spec in FAMILIES.values() for c in spec.columns
                       if "nucleus" in c.region]
    assert all(math.isnan(result.values[name]) for name in nucleus_columns)
    assert not math.isnan(result.values["morph_area_cell"])
    flags = result.qc_flag.split(";")
    for expected in ("intensity:nucleus:empty", "haralick:nucleus:empty", "morphology:nucleus:empty",
                     "morphology:nucleus+cell:empty", "colour:nucleus+cytoplasm:empty"):
        assert expected in flags
    nothing = compute_features(image, np.zeros((12, 12), np.uint8))
    assert all(math.isnan(v) for v in nothing.values.values())
    assert "morphology:cell:empty" in nothing.qc_flag.split(";")


def test_flat_and_one_pixel_regions_are_flagged_with_their_reason():
    image = np.full((8, 8, 3), 120, np.uint8)
    image[2:6, 2:6] = (60, 30, 140)  # flat nucleus colour
    labels = np.zeros((8, 8), np.uint8)
    labels[1:7, 1:7] = 1
    labels[2:6, 2:6] = 2
    flags = compute_features(image, labels).qc_flag.split(";")
    assert "haralick:nucleus:flat" in flags and "intensity:nucleus:flat" in flags
    assert not any(flag.startswith("morphology:") for flag in flags)  # shape is defined
    labels[2:6, 2:6] = 1
    labels[3, 3] = 2
    assert "morphology:nucleus:one_pixel" in compute_features(image, labels).qc_flag


@pytest.mark.parametrize("transform", [np.rot90, np.fliplr, lambda a: np.rot90(np.flipud(a))],
                         ids=["rot90", "fliplr", "transpose"])
def test_all_features_are_invariant_to_right_angle_rotations_and_flips(cell, transform):
    image, labels = cell
    expected = compute_features(image, labels).values
    moved = compute_features(np.ascontiguousarray(transform(image)), np.ascontiguousarray(transform(labels)))
    np.testing.assert_allclose(list(moved.values.values()), list(expected.values()), rtol=1e-7, atol=1e-12)


def test_position_in_the_frame_does_not_matter(cell):
    image, labels = cell
    big_image = np.zeros((200, 260, 3), np.uint8)
    big_labels = np.zeros((200, 260), np.uint8)
    big_image[50:50 + image.shape[0], 90:90 + image.shape[1]] = image
    big_labels[50:50 + labels.shape[0], 90:90 + labels.shape[1]] = labels
    assert compute_features(big_image, big_labels) == compute_features(image, labels)


@pytest.mark.parametrize("form", ["int32", "int64", "uint16", "cell_and_nucleus"])
def test_any_integer_mask_or_two_boolean_masks_give_the_uint8_values(cell, form):
    image, labels = cell
    mask = as_label_mask(cell=labels > 0, nucleus=labels == 2) if form == "cell_and_nucleus" else labels.astype(form)
    assert compute_features(image, mask) == compute_features(image, labels)
    for family, spec in FAMILIES.items():
        assert spec.compute(image, mask) == spec.compute(image, labels), family


def test_a_boolean_mask_is_a_cell_without_nucleus(cell):
    image, labels = cell
    read, expected = compute_features(image, labels > 0), compute_features(image, (labels > 0).astype(np.uint8))
    np.testing.assert_equal(read.values, expected.values)  # NaN (empty nucleus) in the same places
    assert read.qc_flag == expected.qc_flag and "intensity:nucleus:empty" in read.qc_flag


def test_a_mask_with_other_values_is_refused_with_the_fix(cell):
    image, labels = cell
    with pytest.raises(ValueError, match=r"labels holds values \[255\].*as_label_mask\(cell=mask > 0\)"):
        compute_features(image, (labels > 0).astype(np.int32) * 255)
    with pytest.raises(ValueError, match="labels must be an integer or boolean array, got float64"):
        compute_features(image, labels.astype(float))

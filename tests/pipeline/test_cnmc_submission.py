"""C-NMC submission files: one 0/1 line per numbered image, zipped as isbi_valid.predict."""

from __future__ import annotations

import zipfile

import pytest

from leukoscope.pipeline.cnmc_submission import (
    MEMBER,
    image_number,
    missing_numbers,
    submission_text,
    write_submission,
)


def test_image_numbers():
    assert image_number("/x/C-NMC_test_prelim_phase_data/17.bmp") == 17
    assert image_number("3.BMP") == 3
    assert image_number("UID_11_10_1_all.bmp") is None and image_number("17.png") is None


def test_lines_follow_the_image_numbers():
    assert submission_text({2: 0, 1: 1, 3: 1}) == "1\n0\n1\n"


def test_a_gap_is_refused_and_named():
    assert missing_numbers({1: 1, 4: 0}) == [2, 3]
    with pytest.raises(ValueError, match="2 image number.*first 2"):
        submission_text({1: 1, 4: 0})
    with pytest.raises(ValueError, match="1 \\(ALL\\) or 0"):
        submission_text({1: 2})


def test_the_zip_holds_one_member(tmp_path):
    target = tmp_path / "sub.zip"
    write_submission({1: 0, 2: 1}, target)
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == [MEMBER]
        assert archive.read(MEMBER) == b"0\n1\n"

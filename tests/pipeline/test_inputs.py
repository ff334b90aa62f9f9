"""Input checks before any stage: regular files only, under the size cap; copies pointed out."""

from __future__ import annotations

import logging
import os

import pandas as pd
import pytest

from leukoscope.pipeline import imageio
from leukoscope.pipeline.inputs import hash_input, warn_about_copies

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_regular_file_is_hashed(tmp_path):
    (tmp_path / "a.bmp").write_bytes(b"")
    assert hash_input(str(tmp_path / "a.bmp")) == (EMPTY_SHA256, "")  # empty: read_image says why later


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_a_device_and_a_folder_are_refused_unread(tmp_path):
    os.mkfifo(tmp_path / "p.bmp")  # opening it would wait for a writer forever
    (tmp_path / "d.bmp").mkdir()
    assert "is a named pipe (FIFO), not an image file" in hash_input(str(tmp_path / "p.bmp"))[1]
    assert "is a folder, not an image file" in hash_input(str(tmp_path / "d.bmp"))[1]
    if os.path.exists("/dev/zero"):
        assert "is a device, not an image file" in hash_input("/dev/zero")[1]


def test_a_file_over_the_cap_is_refused_from_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(imageio, "MAX_FILE_BYTES", 4)
    (tmp_path / "big.bmp").write_bytes(b"12345")
    assert hash_input(str(tmp_path / "big.bmp")) == ("", "'big.bmp' is 5 bytes, more than any cell image "
                                                         "(at most 0 MiB are read); check that it is the right file")


def test_missing_files_and_broken_links_say_so(tmp_path):
    (tmp_path / "loop.bmp").symlink_to("loop.bmp")
    assert hash_input(str(tmp_path / "gone.bmp")) == ("", "file does not exist")
    assert "symbolic link that loops" in hash_input(str(tmp_path / "loop.bmp"))[1]


def test_copies_are_counted_and_a_copy_under_another_label_is_named(caplog):
    samples = pd.DataFrame({"path": ["/d/a.bmp", "/d/b.bmp", "/d/c.bmp", "/d/d.bmp", "/d/e.bmp"],
                            "label": ["ALL", "HEM", "ALL", "ALL", ""],
                            "sha256": ["1", "1", "2", "2", "3"]})
    with caplog.at_level(logging.WARNING):
        assert warn_about_copies(samples) == {"copies": 2, "conflicting": 1}
    assert "listed more than once with different labels (e.g. 'a.bmp' (ALL) = 'b.bmp' (HEM))" in caplog.text
    assert "1 images are byte-identical copies of another image with the same label" in caplog.text
    caplog.clear()
    assert warn_about_copies(samples.iloc[[0, 2, 4]]) == {"copies": 0, "conflicting": 0} and not caplog.text

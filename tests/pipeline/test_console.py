"""Progress off a terminal, framework noise, once-per-command messages."""

from __future__ import annotations

import logging

from leukoscope.pipeline.console import FRAMEWORK_NOISE, Progress, first_time, new_command, warn_once


def test_progress_off_a_terminal_logs_each_tenth_once(caplog):
    with caplog.at_level(logging.INFO, logger="leukoscope"):
        bar = Progress(20, "segment")
        for _ in range(20):
            bar.update()
        bar.close()
    assert [r.getMessage() for r in caplog.records] == [f"segment: {n}/20 img ({5 * n}%)" for n in range(2, 21, 2)]


def test_progress_of_few_items_logs_each_item_and_quiet_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="leukoscope"):
        bar = Progress(3, "fit", unit="fit")
        bar.update(3)
        quiet = Progress(3, "x", quiet=True)
        quiet.update(3)
    assert [r.getMessage() for r in caplog.records] == ["fit: 3/3 fit (100%)"]


def test_framework_noise_is_recognised_and_nothing_else():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796192494.373665    4806 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1796192494.544389    4806 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow",
    ]
    kept = ["E0000 00:00:1796192494.1 4806 gpu.cc:1] could not open the GPU", "Traceback (most recent call last):"]
    assert all(FRAMEWORK_NOISE.search(line) for line in noise)
    assert not any(FRAMEWORK_NOISE.search(line) for line in kept)


def test_a_message_once_per_command(caplog):
    new_command()
    with caplog.at_level(logging.WARNING, logger="leukoscope"):
        warn_once("k", "said %d", 1)
        warn_once("k", "said %d", 2)
        new_command()
        warn_once("k", "said %d", 3)
    assert [r.getMessage() for r in caplog.records] == ["said 1", "said 3"]
    assert first_time("other") and not first_time("other")

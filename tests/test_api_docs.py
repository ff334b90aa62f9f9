"""docs/api.md: every example runs and prints what the page says; every public name has one."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import leukoscope.classifiers
import leukoscope.features
import leukoscope.segmentation

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PACKAGES = (leukoscope.segmentation, leukoscope.features, leukoscope.classifiers)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _sections() -> list[tuple[str, str, int]]:
    """``(title, text, first line index)`` of every ``###`` section of the page."""
    lines = API_DOC.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("### ")]
    return [(lines[start][4:].strip(), "".join(lines[start:end]), start)
            for start, end in zip(starts, starts[1:] + [len(lines)])]


def _param(title: str, text: str, start: int):
    marks = [pytest.mark.slow] if "(Keras)" in title else []  # building and running networks
    return pytest.param(title, text, start, marks=marks, id=re.sub(r"\W+", "-", title).strip("-"))


@pytest.mark.parametrize(("title", "text", "start"), [_param(*section) for section in _sections()])
def test_the_examples_of_each_section_run_as_written(title, text, start):
    test = doctest.DocTestParser().get_doctest(text, {}, title, str(API_DOC), start)
    assert test.examples, f"section '{title}' of docs/api.md has no example"
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_public_name_has_an_example():
    code = "\n".join(example.source for _, text, _ in _sections()
                     for example in doctest.DocTestParser().get_examples(text))
    used = set(re.findall(r"\w+", code))
    missing = [f"{package.__name__}.{name}" for package in PACKAGES for name in package.__all__ if name not in used]
    assert not missing, f"public names without an example in docs/api.md: {missing}"

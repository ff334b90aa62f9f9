"""Report rendering: Markdown and HTML say the same, and the page fits 800 and 1280 px screens (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.report import write_report
from leukoscope.pipeline.report_html import Block, to_html, to_markdown

from .test_report import fake_evaluation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = ("<script>document.body.setAttribute('data-width', document.documentElement.scrollWidth + ' ' + "
         "document.documentElement.clientWidth);</script></body>")


def test_second_line_is_smaller_numbers_right_aligned_headline_shaded(tmp_path):
    table = pd.DataFrame({"model": ["knn", "svm"], "balanced accuracy": ["0.950\n[0.915, 0.981]", "n/a"]})
    blocks = [Block("p", "Warning: few subjects.", style="warning"), Block("table", table=table, highlight=(0,))]
    assert to_markdown(blocks) == ("> Warning: few subjects.\n\n| model | balanced accuracy |\n|---|---|\n"
                                   "| knn | 0.950 [0.915, 0.981] |\n| svm | n/a |\n")
    page = to_html(blocks, tmp_path)
    assert ('<tr class="highlight"><td>knn</td><td class="num">0.950<span class="sub">[0.915, 0.981]</span></td>'
            '</tr><tr><td>svm</td><td class="num">n/a</td></tr>') in page
    assert '<p class="warning">Warning: few subjects.</p>' in page and "white-space:nowrap" in page


def widths(page: str, width: int, folder) -> tuple[int, int]:
    """``(document scroll width, viewport width)`` of ``page`` rendered ``width`` px wide."""
    path = folder / f"probe-{width}.html"
    path.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    assert CHROMIUM is not None
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--window-size={width},900", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'data-width="(\d+) (\d+)"', dom)
    assert found is not None, dom[-500:]
    return int(found.group(1)), int(found.group(2))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", [800, 1280])
def test_report_fits_the_screen_in_chromium(tmp_path, width):
    long_path = "/data/" + "very_long_folder_name_" * 8 + "cells"  # no space to break at
    config = Config().with_overrides({"data.path": long_path})
    write_report(tmp_path, evaluation=fake_evaluation(), config=config,
                 info={"started": "2024-05-01", "argv": ["leukoscope", "compare", "--data", long_path]})
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    scroll, client = widths(page, width, tmp_path)
    assert client == width and scroll <= client  # wide tables scroll inside their own box
    # the probe does see overflow: the same tables outside their scroll boxes run off the screen
    bare = page.replace('<div class="scroll">', "<div>")
    assert widths(bare, width, tmp_path)[0] > width

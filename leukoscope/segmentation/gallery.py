"""A self-contained HTML gallery of segmented cells, most doubtful first, for a person to check.

:func:`gallery_html` returns one HTML page as a string (the pipeline writes it): a card per
cell with its overlay as an inline base64 PNG thumbnail, sample id, label, N/C area ratio,
QC flags and ``qc_score``, sorted by ``qc_score`` (highest first), and two drop-downs that
show only the cells of one label and/or one flag (a few lines of inline JavaScript; a link
ending ``#flag=multiple_cells&label=ALL`` opens the page so filtered). It loads
nothing from the network, so it opens the same offline, from an archive or an e-mail.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np
import pandas as pd

from leukoscope.segmentation.channels import check_rgb
from leukoscope.segmentation.qc import split_flags

REQUIRED_COLUMNS = ("sample_id", "label", "nucleus_cell_ratio", "qc_flag", "qc_score")
ANY_FLAG, NO_FLAG, UNLABELLED = "(any flag)", "(no flag)", "(unlabelled)"

_STYLE = """
body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}
h1{font-size:1.2em}
.bar{margin-bottom:1em}
.bar select{margin-right:1em}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.card{background:#222;border:2px solid #333;border-radius:4px;padding:4px;width:%(card)dpx;font-size:11px}
.card.flagged{border-color:#c83}
.card img{display:block;margin:auto;max-width:100%%}
.id{font-weight:bold;word-break:break-all}
.flags{color:#fb6;word-break:break-all}
.none{height:%(side)dpx;display:flex;align-items:center;justify-content:center;color:#777}
"""

_SCRIPT = """
function show(){
  var label=document.getElementById('label').value, flag=document.getElementById('flag').value, n=0;
  document.querySelectorAll('.card').forEach(function(card){
    var flags=card.dataset.flags ? card.dataset.flags.split(';') : [];
    var flagged=flag==='' || (flag==='%(any)s' ? flags.length>0 :
      flag==='%(none)s' ? flags.length===0 : flags.indexOf(flag)>=0);
    var ok=(label==='' || card.dataset.label===label) && flagged;
    card.style.display=ok ? '' : 'none'; if(ok){n++;}
  });
  document.getElementById('count').textContent=n;
}
window.addEventListener('load', function(){  // e.g. gallery.html#flag=multiple_cells&label=ALL
  new URLSearchParams(location.hash.slice(1)).forEach(function(value, key){
    var element=document.getElementById(key); if(element){element.value=value;}
  });
  show();
});
"""


def thumbnail_png(image: np.ndarray, *, side: int = 128) -> bytes:
    """PNG bytes of an RGB image scaled to fit a ``side`` square (never enlarged).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image, e.g. an overlay.
    side : int
        Longest side of the thumbnail, in pixels.
    """
    image = check_rgb(image)
    scale = min(1.0, side / max(image.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise ValueError("OpenCV could not encode the thumbnail as PNG")
    return encoded.tobytes()


def _ratio(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{number:.2f}"


def _options(element: str, title: str, values: Iterable[str]) -> str:
    items = [f'<option value="">{html.escape(title)}: all</option>']
    items += [f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values]
    return f'<select id="{element}" onchange="show()">{"".join(items)}</select>'


def _label(value: Any) -> str:
    return UNLABELLED if pd.isna(value) or str(value) == "" else str(value)


def _card(row: Mapping[str, Any], png: bytes | None) -> str:
    flags = [flag.value for flag in split_flags(str(row["qc_flag"] or ""))]
    label = _label(row["label"])
    if png is None:
        picture = '<div class="none">no image</div>'
    else:
        picture = f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
    return (
        f'<div class="card{" flagged" if flags else ""}" data-label="{html.escape(label)}" '
        f'data-flags="{html.escape(";".join(flags))}">{picture}'
        f'<div class="id">{html.escape(str(row["sample_id"]))}</div>'
        f'<div>{html.escape(label)} &middot; N/C {_ratio(row["nucleus_cell_ratio"])} '
        f'&middot; QC {float(row["qc_score"]):.2f}</div>'
        f'<div class="flags">{html.escape(", ".join(flags))}</div></div>'
    )


def gallery_html(
    rows: pd.DataFrame,
    thumbnails: Mapping[str, np.ndarray | bytes],
    *,
    title: str = "leukoscope segmentation QC",
    side: int = 128,
) -> str:
    """One self-contained HTML page of cells sorted by ``qc_score``, filterable by label and flag.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per cell with at least :data:`REQUIRED_COLUMNS` (the segmentation table:
        ``sample_id, label, nucleus_cell_ratio, qc_flag, qc_score``); an empty or missing
        ``label`` shows as "(unlabelled)".
    thumbnails : mapping of str to (H, W, 3) uint8 ndarray or bytes
        The picture of each sample id: an RGB image (scaled with :func:`thumbnail_png`) or
        PNG bytes used as they are. A sample without one gets a "no image" card.
    title : str
        Page title and heading.
    side : int
        Longest side of the thumbnails made from arrays, in pixels.

    Returns
    -------
    str
        The HTML page. Cards are ordered by ``qc_score`` (highest first), then sample id; an
        empty table gives a page that says so.

    Raises
    ------
    ValueError
        ``rows`` lacks a required column.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in rows.columns]
    if missing:
        raise ValueError(f"the gallery needs the columns {', '.join(missing)}; pass the segmentation table")
    ordered = rows.assign(_score=rows["qc_score"].astype(float)).sort_values(
        ["_score", "sample_id"], ascending=[False, True], kind="stable")
    cards = []
    for row in ordered.to_dict("records"):
        picture = thumbnails.get(str(row["sample_id"]))
        png = picture if isinstance(picture, bytes) or picture is None else thumbnail_png(picture, side=side)
        cards.append(_card(row, png))
    labels = sorted({_label(v) for v in rows["label"]})
    flags = sorted({flag.value for text in rows["qc_flag"] for flag in split_flags(str(text or ""))})
    filters = (_options("label", "label", labels)
               + _options("flag", "flag", [ANY_FLAG, NO_FLAG, *flags])
               + f'<span><span id="count">{len(cards)}</span> of {len(cards)} cells</span>')
    body = "".join(cards) if cards else "<p>No segmented cells.</p>"
    style = _STYLE % {"card": side + 12, "side": side}
    script = _SCRIPT % {"any": ANY_FLAG, "none": NO_FLAG}
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{style}</style><script>{script}</script></head>"
        f"<body><h1>{html.escape(title)}</h1><div class=\"bar\">{filters}</div>"
        f"<div class=\"grid\">{body}</div></body></html>\n"
    )

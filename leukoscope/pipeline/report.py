"""The comparison report: confusion-matrix grid, ROC curves, ``report.md`` and a self-contained ``report.html``.

The report is built once as a list of blocks (headings, paragraphs, tables, images) and
rendered twice, as Markdown and as HTML with the images embedded as base64, so the two
always say the same thing. The HTML opens in a browser from disk, with no server and no
network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.featuresets import cnn_name, head_name
from leukoscope.classifiers.metrics import METRICS, confusion_matrix
from leukoscope.pipeline.atomic import write_png, write_text
from leukoscope.pipeline.choices import FIELD_KINDS
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.figures import figure_to_array

PAPER_TABLE1 = pd.DataFrame(
    [
        ("VGG16", "vgg16", 0.70455, 0.5035, 0.9886),
        ("VGG19", "vgg19", 0.7227, 0.5497, 0.9182),
        ("Inception", "inceptionv3", 0.7341, 0.7101, 0.7682),
        ("Xception", "xception", 0.7386, 0.7310, 0.7659),
        ("Efficient Net B0", "efficientnetb0", 0.5000, 0.5000, 1.0000),
        ("ResNet101", "resnet101", 0.7636, 0.7585, 0.7636),
        ("ResNet50", "resnet50", 0.7591, 0.7585, 0.7636),
    ],
    columns=["paper_model", "backbone", "accuracy", "precision", "recall"],
)
"""Table 1 ("Validation Metric") of the reference study (../shared/docs/reference-paper.txt):
fine-tuned ImageNet backbones with a GlobalMaxPooling-Dropout-sigmoid head on C-NMC 2019."""

PROTOCOL_NOTES = {
    Protocol.OFFICIAL: (
        "official C-NMC 2019 split: trained on the training folds (fold_*), tested on the "
        "preliminary test set, whose subjects are not in the training folds"
    ),
    Protocol.GROUP_CV: (
        "stratified k-fold cross-validation grouped by subject (StratifiedGroupKFold): no subject "
        "has cells on both sides of any split; metrics pool the out-of-fold predictions"
    ),
    Protocol.STRATIFIED_CV: (
        "stratified k-fold cross-validation over images: the data has no subject ids, so cells of "
        "one patient may sit on both sides of a split, which can inflate every figure"
    ),
    Protocol.BLOCKED_CV: (
        "stratified k-fold cross-validation grouped by blocks of consecutive image numbers, a proxy for "
        "the source fields the crops were cut from (the data has no subject ids)"
    ),
}
MAX_PANELS = 36
CONFUSION_PNG = "confusion_matrices.png"
ROC_PNG = "roc_curves.png"


@dataclass(frozen=True)
class Block:
    """One piece of the report: ``kind`` is h1, h2, p, table or img (``text`` = its file name)."""

    kind: str
    text: str = ""
    table: pd.DataFrame | None = None
    caption: str = ""


# -- figures --------------------------------------------------------------------------------
def _best_per_feature_set(results: pd.DataFrame) -> pd.DataFrame:
    ranked = results.sort_values("balanced_accuracy", ascending=False, na_position="last", kind="stable")
    return ranked.drop_duplicates(["feature_set", "protocol"])




def _rows_of(predictions: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    keys = ["model", "feature_set", "protocol"]
    mask = np.logical_and.reduce([predictions[k] == row[k] for k in keys])
    return predictions[mask]


def confusion_grid(
    results: pd.DataFrame, predictions: pd.DataFrame, *, max_panels: int = MAX_PANELS
) -> tuple[np.ndarray, str]:
    """Confusion matrices of the results rows as one image, and what it shows.

    Every results row gets a panel when there are at most ``max_panels`` rows; otherwise only
    the best model (balanced accuracy) of each feature set does.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    caption : str
    """
    if len(results) <= max_panels:
        rows, shown = results, "every model on every feature set"
    else:
        rows, shown = _best_per_feature_set(results), "the best model (balanced accuracy) of each feature set"
    cols = min(5, max(len(rows), 1))
    nrows = max(1, -(-len(rows) // cols))
    fig = Figure(figsize=(2.6 * cols, 2.6 * nrows), dpi=90)
    for k, (_, row) in enumerate(rows.iterrows()):
        ax = fig.add_subplot(nrows, cols, k + 1)
        part = _rows_of(predictions, row)
        cm = confusion_matrix(part["y_true"], part["y_pred"])[::-1, ::-1]  # ALL first
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(cm.max(), 1))
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["ALL", "HEM"], fontsize=7)
        ax.set_yticks([0, 1], ["ALL", "HEM"], fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax.set_title(f"{row['model']} / {row['feature_set']}", fontsize=7)
    fig.tight_layout()
    return figure_to_array(fig), f"Confusion matrices ({shown}); rows true, columns predicted."


def roc_figure(results: pd.DataFrame, predictions: pd.DataFrame) -> tuple[np.ndarray, str]:
    """ROC curves of the best model of each feature set as one image, and what it shows."""
    fig = Figure(figsize=(6.5, 5.5), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    for _, row in _best_per_feature_set(results).iterrows():
        part = _rows_of(predictions, row)
        if part["y_true"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(part["y_true"], part["y_score"])
        ax.plot(fpr, tpr, label=f"{row['feature_set']} ({row['model']}), AUC {row['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("1 - specificity (HEM called ALL)")
    ax.set_ylabel("sensitivity (ALL found)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return figure_to_array(fig), "ROC curves of the best model (balanced accuracy) of each feature set."


# -- report ---------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """The results as displayed: sorted by balanced accuracy, metrics with their 95 % CI."""
    ranked = results.sort_values("balanced_accuracy", ascending=False, na_position="last", kind="stable")
    shown = ranked[["model", "feature_set", "weights", "n_train", "n_test"]].astype(str).copy()
    for name in METRICS:
        shown[name] = [
            f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]"
            for v, lo, hi in zip(ranked[name], ranked[f"{name}_ci_low"], ranked[f"{name}_ci_high"])
        ]
    shown["subject_accuracy"] = [
        "n/a" if n == 0 else f"{_fmt(v)} ({n})" for v, n in zip(ranked["subject_accuracy"], ranked["n_test_subjects"])
    ]
    return shown


def _as_printed(value: float) -> str:
    """The paper's own digits: four decimals, five where it printed five (0.70455)."""
    text = f"{value:.5f}"
    return text[:-1] if text.endswith("0") else text


def paper_table(results: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 beside this run's head and best classical model on each backbone."""
    rows = []
    for paper in PAPER_TABLE1.itertuples(index=False):
        printed = " / ".join(_as_printed(v) for v in (paper.accuracy, paper.precision, paper.recall))
        row = {"model (paper)": paper.paper_model, "paper acc / prec / rec": printed}
        for label, feature_set in (("head", head_name(paper.backbone)),
                                   ("best classical on embeddings", cnn_name(paper.backbone))):
            ours = _best_per_feature_set(results[results["feature_set"] == feature_set])
            row[f"ours: {label} acc / prec / rec"] = (
                "not run" if ours.empty else
                " / ".join(_fmt(ours.iloc[0][m]) for m in ("accuracy", "precision", "recall"))
                + f" ({ours.iloc[0]['model']}, {ours.iloc[0]['weights']} weights)"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def fields_origin(config: Config) -> str:
    """The report's sentence on cells cut out of whole smear fields (``""`` for a dataset of cells)."""
    if config.data.dataset not in FIELD_KINDS:
        return ""
    return (f" The cells were cut out of whole smear fields by leukoscope's white-cell detection (red-cell diameter "
            f"{config.fields.red_cell_diameter:g} pixels; fields/cells.csv and fields/overlays/ in the run directory); "
            "each cell's subject is the field it came from, so no field has cells on both sides of a split.")


def build_blocks(
    *, results: pd.DataFrame, feature_sets: pd.DataFrame, protocol: Protocol, config: Config,
    n_folds: int, captions: dict[str, str], sections: Sequence[Block] = (),
) -> list[Block]:
    """The report's content, independent of its format; ``sections`` come last (e.g.
    :func:`leukoscope.pipeline.report_statistics.statistics_section`)."""
    folds = "one split" if protocol is Protocol.OFFICIAL else f"{n_folds} folds, seed {config.run.seed}"
    blocks = [
        Block("h1", "leukoscope comparison report"),
        Block("p", f"Data: {config.data.path} (dataset {config.data.dataset.value}).{fields_origin(config)} "
                   f"Protocol: {protocol.value} ({folds}): {PROTOCOL_NOTES[protocol]}. "
                   f"Hyper-parameters tuned by {config.compare.inner_folds}-fold inner cross-validation on each "
                   "training part only (grouped by subject when subjects are known). ALL is the positive class; "
                   "a cell is called ALL when P(ALL) >= 0.5."),
        Block("p", f"95 % confidence intervals: percentile bootstrap, {config.compare.bootstrap} replicates, "
                   "resampling subjects (cells where subjects are unknown) within each class. "
                   "subject_accuracy: per-subject majority vote (number of test subjects)."),
    ]
    random_weights = results["weights"].astype(str).str.contains("random")
    if random_weights.any():
        blocks.append(Block("p", "Warning: rows with weights 'random' come from untrained CNNs (no ImageNet "
                                 "weights were available); they are not ImageNet results."))
    if protocol is Protocol.STRATIFIED_CV:
        blocks.append(Block("p", "Warning: image-level splits can leak: with several cells per patient, "
                                 "these figures are optimistic."))
    blocks += [Block("h2", "Results")]
    best = _best_per_feature_set(results).head(1)
    if len(best) and pd.notna(best["balanced_accuracy"].iloc[0]):
        top = best.iloc[0]
        blocks.append(Block("p", f"Best balanced accuracy: {top['model']} on {top['feature_set']} "
                                 f"(weights: {top['weights']}), {_fmt(top['balanced_accuracy'])} "
                                 f"[{_fmt(top['balanced_accuracy_ci_low'])}, {_fmt(top['balanced_accuracy_ci_high'])}]."))
    blocks += [
        Block("table", table=results_table(results)),
        Block("h2", "Beside the reference study's Table 1"),
        Block("p", "The paper reports validation accuracy, precision and recall of fine-tuned backbones on "
                   "C-NMC 2019 without stating its split; it is not shown to be subject-disjoint, so its "
                   "numbers may be inflated by patient leakage. Our rows use the protocol above, on this "
                   "run's data."),
        Block("table", table=paper_table(results)),
        Block("h2", "Feature sets and missing values"),
        Block("p", "Rule: a row whose features are all NaN (rejected or degenerate cell) is dropped; a row "
                   "with some NaN is kept and its gaps are imputed by the training-part median inside each "
                   "fold. n_missing: labelled samples with no row in the features file."),
        Block("table", table=feature_sets.astype(str)),
        Block("h2", "Figures"),
        Block("img", CONFUSION_PNG, caption=captions[CONFUSION_PNG]),
        Block("img", ROC_PNG, caption=captions[ROC_PNG]),
    ]
    return blocks + list(sections)


def _md_table(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """Render the blocks as Markdown (images linked by file name)."""
    parts = []
    for block in blocks:
        if block.kind == "h1":
            parts.append(f"# {block.text}")
        elif block.kind == "h2":
            parts.append(f"## {block.text}")
        elif block.kind == "p":
            parts.append(block.text)
        elif block.kind == "table":
            parts.append(_md_table(block.table))
        else:
            parts.append(f"![{block.caption}]({block.text})\n\n{block.caption}")
    return "\n\n".join(parts) + "\n"


def to_html(blocks: list[Block], folder: Path) -> str:
    """Render the blocks as one HTML page with every image embedded (base64 PNG)."""
    body = []
    for block in blocks:
        if block.kind in ("h1", "h2", "p"):
            body.append(f"<{block.kind}>{html.escape(block.text)}</{block.kind}>")
        elif block.kind == "table":
            body.append(block.table.to_html(index=False, border=0, escape=True))
        else:
            data = base64.b64encode((folder / block.text).read_bytes()).decode("ascii")
            caption = html.escape(block.caption)
            body.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eee}"
             "img{max-width:100%}figcaption{font-size:13px;color:#444}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>leukoscope comparison report</title><style>{style}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(
    folder: Path, *, results: pd.DataFrame, predictions: pd.DataFrame, feature_sets: pd.DataFrame,
    protocol: Protocol, config: Config, n_folds: int, sections: Sequence[Block] = (),
) -> list[Path]:
    """Write the two figures, ``report.md`` and ``report.html`` into ``folder``; return their paths.

    ``sections``: further blocks at the end; their images are paths relative to ``folder``."""
    folder = Path(folder)
    captions = {}
    for name, make in ((CONFUSION_PNG, confusion_grid), (ROC_PNG, roc_figure)):
        image, captions[name] = make(results, predictions)
        write_png(image, folder / name)
    blocks = build_blocks(results=results, feature_sets=feature_sets, protocol=protocol, config=config,
                          n_folds=n_folds, captions=captions, sections=sections)
    write_text(to_markdown(blocks), folder / "report.md")
    write_text(to_html(blocks, folder), folder / "report.html")
    return [folder / CONFUSION_PNG, folder / ROC_PNG, folder / "report.md", folder / "report.html"]

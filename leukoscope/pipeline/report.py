"""The comparison report: its sections as a list of blocks, written as ``report.md`` and ``report.html``.

:func:`build_blocks` concatenates one list of :class:`~leukoscope.pipeline.report_html.Block`
per section (a new section is one more function appended there); :func:`write_report` draws the
figures and renders the blocks twice, as Markdown and as one self-contained HTML page
(:mod:`leukoscope.pipeline.report_html`), so the two always say the same thing.

The report leads with what can be claimed: the selection-corrected headline, the majority
baseline, the warnings (synthetic data, few subjects, a background that gives the label away,
untrained CNN weights, image-level splits), and which rows the paired test cannot tell from the
headline. No sentence names a "best" row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from leukoscope import __version__
from leukoscope.classifiers.baselines import CLEAR_MARGIN
from leukoscope.classifiers.calibration import brier_score, reliability_bins
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.featuresets import head_name
from leukoscope.classifiers.metrics import THRESHOLD
from leukoscope.features.backbones import get_backbone
from leukoscope.pipeline.atomic import write_png, write_text
from leukoscope.pipeline.calibration_figures import reliability_figure
from leukoscope.pipeline.choices import FIELD_KINDS
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.evaluation import BASELINE, HEADLINE, Evaluation, Role
from leukoscope.pipeline.report_figures import confusion_grid, roc_figure
from leukoscope.pipeline.report_html import Block, to_html, to_markdown
from leukoscope.pipeline.report_tables import (
    chosen_display,
    confound_display,
    counts_display,
    fmt,
    glossary,
    paired_display,
    results_table,
    verdict,
    with_interval,
)

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
sigmoid heads (GlobalMaxPooling, Dropout, Dense(2, sigmoid)) trained on frozen ImageNet backbones,
which it calls fine-tuning, on C-NMC 2019; up to 15 epochs, input size and split not stated."""

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
        "one patient or source field may sit on both sides of a split, which can inflate every figure"
    ),
    Protocol.BLOCKED_CV: (
        "stratified k-fold cross-validation grouped by blocks of consecutive image numbers, a proxy for "
        "the source fields the crops were cut from (the data has no subject ids; a block is not a known patient)"
    ),
}
CONFUSION_PNG = "confusion_matrices.png"
ROC_PNG = "roc_curves.png"
RELIABILITY_PNG = "reliability.png"
RUN_ONLY = ("out", "jobs", "backend", "scheduler", "quiet")
"""``run`` keys that do not change a result (the repeatability tests check it): left out of the digest."""


def config_digest(config: Config) -> str:
    """First 12 hex digits of the SHA-256 of the resolved config, without :data:`RUN_ONLY` keys."""
    values = config.to_dict()
    values["run"] = {k: v for k, v in values["run"].items() if k not in RUN_ONLY}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def fields_origin(config: Config) -> str:
    """The report's sentence on cells cut out of whole smear fields (``""`` for a dataset of cells)."""
    if config.data.dataset not in FIELD_KINDS:
        return ""
    return (f" The cells were cut out of whole smear fields by leukoscope's white-cell detection (red-cell diameter "
            f"{config.fields.red_cell_diameter:g} pixels; fields/cells.csv and fields/overlays/ in the run directory); "
            "each cell's subject is the field it came from, so no field has cells on both sides of a split.")


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(f"{m} on {f}" for m, f in zip(frame["model"], frame["feature_set"])) or "none"


# -- sections ---------------------------------------------------------------------------------
def header_blocks(evaluation: Evaluation, config: Config, info: dict[str, Any]) -> list[Block]:
    """Title, provenance, and every warning that qualifies the numbers below."""
    argv = [str(a) for a in info.get("argv", [])]
    command = " ".join(["leukoscope", *argv[1:]]) if argv else "not recorded"
    blocks = [
        Block("h1", "leukoscope comparison report"),
        Block("p", f"Run stamp: started {info.get('started', 'not recorded')}; command: {command}", style="stamp"),
        Block("p", f"leukoscope {__version__}; config digest {config_digest(config)} (the resolved config is in "
                   f"run.json); data: {config.data.path} (dataset {config.data.dataset.value}).", style="meta"),
    ]
    if origin := fields_origin(config):
        blocks.append(Block("p", origin.strip()))
    if config.data.demo:
        blocks.append(Block("p", "Synthetic data: these cells were drawn by leukoscope's demo generator "
                                 "(leukoscope/pipeline/synthetic.py). No number in this report says anything about "
                                 "real cells.", style="banner"))
    if evaluation.warning:
        blocks.append(Block("p", evaluation.warning, style="warning"))
    if len(evaluation.confound) and evaluation.confound["confound"].any():
        blocks.append(Block("p", f"Warning: the pixels outside the cells alone tell ALL from HEM (a balanced-accuracy "
                                 f"interval above {CLEAR_MARGIN}; see 'Confound check'). Every result here may rest on "
                                 "the background, not the cell.", style="warning"))
    if evaluation.results["weights"].astype(str).str.contains("random").any():
        blocks.append(Block("p", "Warning: rows with weights 'random' come from untrained CNNs (no ImageNet weights "
                                 "were available); they are not ImageNet results.", style="warning"))
    if evaluation.protocol is Protocol.STRATIFIED_CV:
        blocks.append(Block("p", "Warning: image-level splits can leak: with several cells per patient or source "
                                 "field, these figures are optimistic (protocol 'blocked-cv' groups consecutive "
                                 "image numbers instead).", style="warning"))
    return blocks


def headline_blocks(evaluation: Evaluation) -> list[Block]:
    """The selection-corrected headline, the baseline, and what the paired test can tell apart."""
    blocks = [Block("h2", "Headline")]
    results = evaluation.results.set_index(["model", "feature_set"])
    head = evaluation.headline()
    unit = "cells" if evaluation.protocol is Protocol.STRATIFIED_CV else evaluation.unit_name
    if head is None:
        blocks.append(Block("p", f"No selection-corrected headline ({evaluation.notes.get('nested', 'not run')}). "
                                 "Every row below is one fixed model on one feature set, scored on the folds a "
                                 "choice among them would be made on: picking the highest after the fact "
                                 "overstates what it would give on new data."))
    else:
        chosen = "; ".join(f"{c.fold}: {c.model} on {c.feature_set}" for c in evaluation.chosen.itertuples())
        value, interval = with_interval(head["balanced_accuracy"], head["balanced_accuracy_ci_low"],
                                        head["balanced_accuracy_ci_high"], head["balanced_accuracy_ci_note"]
                                        ).partition("\n")[::2]
        shown = (f"{value} {interval} (95 % interval resampling {unit})" if interval.startswith("[") else
                 f"{value} ({interval or 'no interval: compare.bootstrap = 0'})")
        blocks.append(Block("p", f"Selection-corrected balanced accuracy: {shown}. It scores the procedure 'choose the model and "
                                 f"feature set on inner folds of each training part, then test the choice on the "
                                 f"outer test part' ({evaluation.notes.get('folds', '')}); chosen per fold: {chosen}. "
                                 "Every other row is one fixed model on one feature set, not selection-corrected: "
                                 "picking the highest of them after the fact overstates what it would give."))
    if BASELINE in results.index:
        base = results.loc[BASELINE]
        blocks.append(Block("p", f"Majority-class baseline (every test cell called its training part's commoner "
                                 f"class): balanced accuracy {fmt(base['balanced_accuracy'])}, accuracy "
                                 f"{fmt(base['accuracy'])}. A row whose interval does not clear it has not shown "
                                 "that it learnt anything from the image."))
    if len(evaluation.paired):
        groups = {v: evaluation.paired[[verdict(r) == v for _, r in evaluation.paired.iterrows()]]
                  for v in ("indistinguishable", "worse", "better")}
        blocks.append(Block("p", f"Paired with the headline on the same cells: statistically indistinguishable: "
                                 f"{_names(groups['indistinguishable'])}; worse: {_names(groups['worse'])}; better: "
                                 f"{_names(groups['better'])} (see 'Paired comparisons')."))
    return blocks


def protocol_blocks(evaluation: Evaluation, config: Config) -> list[Block]:
    """How the cells were split, tuned, thresholded and resampled, and the class counts."""
    protocol = evaluation.protocol
    folds = "one split" if protocol is Protocol.OFFICIAL else f"{evaluation.n_folds} folds, seed {config.run.seed}"
    block = f", blocks of {config.compare.block_size}" if protocol is Protocol.BLOCKED_CV else ""
    unit = {Protocol.BLOCKED_CV: "blocks", Protocol.STRATIFIED_CV: "cells"}.get(protocol, "subjects")
    return [
        Block("h2", "Protocol"),
        Block("p", f"Protocol: {protocol.value} ({folds}{block}): {PROTOCOL_NOTES[protocol]}. Hyper-parameters "
                   f"tuned by {config.compare.inner_folds}-fold inner cross-validation on each training part only, "
                   f"grouped like the outer folds. ALL is the positive class; a cell is called ALL when P(ALL) >= "
                   f"{THRESHOLD}, for every model and head."),
        Block("p", f"95 % intervals: percentile bootstrap, {config.compare.bootstrap} replicates, resampling {unit} "
                   "within each class; an interval resting on a class with fewer than 5 subjects or blocks (or 3 "
                   "resampled units) is shown as not estimable. Cells, and subjects or blocks, per class in each "
                   "part:"),
        Block("table", table=counts_display(evaluation.class_counts, evaluation.unit_name,
                                            subjects_known=protocol is not Protocol.STRATIFIED_CV)),
    ]


def results_blocks(evaluation: Evaluation) -> list[Block]:
    """Every row, headline first and shaded, intervals on a second line."""
    table, highlight = results_table(evaluation)
    blocks = [Block("h2", "Results"),
              Block("p", "Rows in a fixed order (headline, baseline, every model on every feature set, heads), not "
                         "ranked: their order says nothing about which is better (see 'Paired comparisons')."),
              Block("table", table=table, highlight=highlight)]
    if len(evaluation.repeats):
        blocks.append(Block("p", f"across repeats: {int(evaluation.repeats['repeats'].max())} outer cross-validations "
                                 "with fold seeds run.seed onwards (heads are not repeated)."))
    if len(evaluation.chosen):
        blocks += [Block("p", "The headline's choice in each outer fold (nested_inner_scores.csv has every "
                              "candidate's inner score):"), Block("table", table=chosen_display(evaluation.chosen))]
    return blocks


def paired_blocks(evaluation: Evaluation) -> list[Block]:
    """Every row against the headline."""
    if not len(evaluation.paired):
        return []
    return [Block("h2", "Paired comparisons with the headline"),
            Block("p", "Each row against the headline on the cells both scored: the difference in balanced accuracy "
                       "with a paired bootstrap interval resampling the same units, and the exact McNemar test, "
                       "Holm-adjusted across rows. A row is called better or worse only when the Holm p is below "
                       "0.05 and the interval excludes 0."),
            Block("table", table=paired_display(evaluation.paired))]


def calibration_blocks(evaluation: Evaluation, captions: dict[str, str]) -> list[Block]:
    """The reliability diagram of the headline (Brier scores are in the results table)."""
    if RELIABILITY_PNG not in captions:
        return []
    return [Block("h2", "Calibration"),
            Block("p", "Brier score per row: results table. Does the headline's P(ALL) mean what it says?"),
            Block("img", RELIABILITY_PNG, caption=captions[RELIABILITY_PNG])]


def confound_blocks(evaluation: Evaluation) -> list[Block]:
    """Models trained on the colour outside the cell only."""
    blocks = [Block("h2", "Confound check: the background alone")]
    if not len(evaluation.confound):
        return blocks + [Block("p", f"Confound check {evaluation.notes.get('confound', 'not run')}.")]
    strongest = evaluation.confound.sort_values("balanced_accuracy_ci_low", ascending=False, na_position="last").iloc[0]
    return blocks + [
        Block("p", "Every model trained on 15 colour statistics of the pixels outside the segmented cell (label 0, "
                   "not black) only, on the same folds. The label is a property of the cell, so such a model should "
                   f"sit at the baseline. {strongest['verdict']} (highest lower bound of {len(evaluation.confound)} "
                   "models.)"),
        Block("table", table=confound_display(evaluation.confound)),
    ]


def _as_printed(value: float) -> str:
    """The paper's own digits: four decimals, five where it printed five (0.70455)."""
    text = f"{value:.5f}"
    return text[:-1] if text.endswith("0") else text


def paper_table(evaluation: Evaluation, config: Config) -> pd.DataFrame:
    """The reference study's Table 1 rows of the backbones whose heads ran, beside ours counted both ways."""
    heads = evaluation.results[evaluation.results["role"] == Role.HEAD.value]
    keras = evaluation.keras.set_index("feature_set") if len(evaluation.keras) else pd.DataFrame()
    rows = []
    for paper in PAPER_TABLE1.itertuples(index=False):
        ours = heads[heads["feature_set"] == head_name(paper.backbone)]
        if ours.empty:
            continue
        row = ours.iloc[0]
        k = keras.loc[row["feature_set"]] if row["feature_set"] in keras.index else None
        size = config.heads.input_size or get_backbone(paper.backbone).input_size
        data = "synthetic demo cells" if config.data.demo else f"{config.data.dataset.value} data"
        rows.append({
            "paper model": paper.paper_model,
            "paper acc / prec / rec": " / ".join(_as_printed(v) for v in (paper.accuracy, paper.precision, paper.recall)),
            "ours, Keras element-wise": "n/a (heads/predictions.csv predates out_hem, out_all: rerun the heads)"
            if k is None or pd.isna(k["keras_accuracy"]) else
            " / ".join(fmt(k[f"keras_{m}"]) for m in ("accuracy", "precision", "recall")),
            "ours, ALL class": " / ".join(fmt(row[m]) for m in ("accuracy", "precision", "recall")),
            "differs in": "\n".join([  # one difference a line
                f"data: {data}, {row['n_test']} test cells (paper: C-NMC 2019 validation);",
                f"split: {evaluation.protocol.value} (paper: not stated);",
                f"weights: {row['weights']} (paper: ImageNet);",
                f"input: {size} px (paper: not stated);",
                f"epochs: up to {config.heads.epochs} (paper: up to 15)"]),
        })
    return pd.DataFrame(rows)


def paper_blocks(evaluation: Evaluation, config: Config) -> list[Block]:
    """The side-by-side with the reference study: like for like, or a sentence saying why not."""
    blocks = [Block("h2", "Beside the reference study's Table 1")]
    table = paper_table(evaluation, config)
    if table.empty:
        return blocks + [Block("p", "No head ran here (heads.backbones is empty), and the study's Table 1 reports "
                                    "sigmoid heads trained on frozen backbones (the paper's fine-tuning): there is "
                                    "nothing like for like to put beside it.")]
    return blocks + [
        Block("p", "Our heads, like the study's, are sigmoid heads trained on frozen backbones (the paper's "
                   "fine-tuning); only the backbones whose heads ran here are listed. "
                   "The study's precision and recall fit Keras' element-wise counting over both one-hot sigmoid "
                   "outputs, not precision and recall of the ALL class: its EfficientNet B0 row (0.5 / 0.5 / 1.0, "
                   "'classified the images into one class') is exactly what both outputs on for every cell gives "
                   "under that counting. Our heads are shown counted both ways; the study's split is not shown to be "
                   "subject-disjoint, so its numbers may be inflated by patient leakage."),
        Block("table", table=table),
    ]


def feature_set_blocks(evaluation: Evaluation) -> list[Block]:
    """Missing values per feature set."""
    return [Block("h2", "Feature sets and missing values"),
            Block("p", "Rule: a row whose features are all NaN (rejected or degenerate cell) is dropped; a row with "
                       "some NaN is kept and its gaps are imputed by the training-part median inside each fold. "
                       "n_missing: labelled samples with no row in the features file."),
            Block("table", table=evaluation.feature_sets.astype(str).rename(columns={"feature_set": "feature set"}))]


def figure_blocks(captions: dict[str, str]) -> list[Block]:
    return [Block("h2", "Figures"), Block("img", CONFUSION_PNG, caption=captions[CONFUSION_PNG]),
            Block("img", ROC_PNG, caption=captions[ROC_PNG])]


def glossary_blocks(blocks: list[Block]) -> list[Block]:
    """What every column of the tables above means."""
    tables = [b.table for b in blocks if b.kind == "table" and b.table is not None]
    return [Block("h2", "Glossary"), Block("table", table=glossary(tables))]


def build_blocks(*, evaluation: Evaluation, config: Config, info: dict[str, Any],
                 captions: dict[str, str], sections: Sequence[Block] = ()) -> list[Block]:
    """The report's content, independent of its format: the sections in order, then ``sections``
    (:func:`leukoscope.pipeline.report_statistics.statistics_section`), the glossary last."""
    blocks = [
        *header_blocks(evaluation, config, info),
        *headline_blocks(evaluation),
        *protocol_blocks(evaluation, config),
        *results_blocks(evaluation),
        *paired_blocks(evaluation),
        *calibration_blocks(evaluation, captions),
        *confound_blocks(evaluation),
        *paper_blocks(evaluation, config),
        *feature_set_blocks(evaluation),
        *figure_blocks(captions),
        *sections,
    ]
    return blocks + glossary_blocks(blocks)


def _figures(folder: Path, evaluation: Evaluation) -> dict[str, str]:
    """Draw the figures into ``folder``; their captions by file name."""
    results, predictions = evaluation.results, evaluation.predictions
    captions = {}
    for name, make in ((CONFUSION_PNG, confusion_grid), (ROC_PNG, roc_figure)):
        image, captions[name] = make(results, predictions)
        write_png(image, folder / name)
    headline = predictions[(predictions["model"] == HEADLINE[0]) & (predictions["feature_set"] == HEADLINE[1])]
    (folder / RELIABILITY_PNG).unlink(missing_ok=True)
    if len(headline):
        weights = evaluation.results.set_index(["model", "feature_set"]).loc[HEADLINE, "weights"]
        label = (f"headline (nested / selected{'' if weights == 'none' else f', {weights} weights'}), "
                 f"Brier {brier_score(headline['y_true'], headline['y_score']):.3f}")
        image, captions[RELIABILITY_PNG] = reliability_figure({label: reliability_bins(headline["y_true"],
                                                                                       headline["y_score"])})
        write_png(image, folder / RELIABILITY_PNG)
    return captions


def write_report(folder: Path, *, evaluation: Evaluation, config: Config, info: dict[str, Any],
                 sections: Sequence[Block] = ()) -> list[Path]:
    """Write the figures, ``report.md`` and ``report.html`` into ``folder``; return their paths.

    Parameters
    ----------
    folder : Path
        The compare stage's folder.
    evaluation : Evaluation
    config : Config
    info : dict
        ``run.json`` (``started`` and ``argv`` give the run stamp).
    sections : sequence of Block
        Further blocks before the glossary; their images are paths relative to ``folder``.
    """
    folder = Path(folder)
    captions = _figures(folder, evaluation)
    blocks = build_blocks(evaluation=evaluation, config=config, info=info, captions=captions, sections=sections)
    write_text(to_markdown(blocks), folder / "report.md")
    write_text(to_html(blocks, folder), folder / "report.html")
    return [folder / name for name in captions] + [folder / "report.md", folder / "report.html"]


__all__ = ["PAPER_TABLE1", "PROTOCOL_NOTES", "build_blocks", "config_digest", "paper_table", "write_report"]

import os
from pathlib import Path

import pandas as pd
import pytest

from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.dataset_base import MAX_ID
from leukoscope.pipeline.datasets import (
    DatasetError,
    detect_kind,
    load_dataset,
    load_manifest,
    make_sample_id,
    parse_cnmc_name,
)
from leukoscope.pipeline.layout import RUN_MARKER

from .cnmc_tree import PRELIM, TRAIN, make_cnmc_tree, tiny_bmp


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UID_H10_43_1_hem.bmp", ("H10", "HEM")),
        ("UID_11_10_1_all", ("11", "ALL")),
        ("uid_h3_1_2_HEM.BMP", ("H3", "HEM")),
        ("1.bmp", None),
        ("UID_11_10_all.bmp", None),
    ],
)
def test_parse_cnmc_name(name, expected):
    assert parse_cnmc_name(name) == expected


def test_sample_id_is_file_name_safe_and_stable():
    assert make_sample_id("training_data/fold_0/all/UID_1_2_3_all.bmp") == "training_data__fold_0__all__UID_1_2_3_all"
    assert make_sample_id("my cells/élan (1).png") == "my_cells__elan_1_"


def _check_cnmc(samples: pd.DataFrame, *, folds: bool = True) -> None:
    train = samples[samples["split"].str.startswith("fold") | (samples["split"] == "train")]
    assert len(train) == 2 * len(TRAIN)
    expected = {(s, c.upper(), f if folds else "train") for f, s, c in TRAIN}
    assert set(zip(train["subject"], train["label"], train["split"])) == expected
    prelim = samples[samples["split"] == "prelim_test"]
    assert set(zip(prelim["subject"], prelim["label"])) == {(s, c.upper()) for s, c in PRELIM}
    final = samples[samples["split"] == "final_test"]
    assert len(final) == 2 and set(final["label"]) == {""} and set(final["subject"]) == {""}
    assert samples["sample_id"].is_unique
    assert list(samples.columns) == ["sample_id", "path", "label", "subject", "split"]


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"top": False},
        {"folds": False},
        {"upper": True},
        {"prelim_names": "uid"},
    ],
)
def test_cnmc_layout_and_mirror_variants(tmp_path, variant):
    make_cnmc_tree(tmp_path, **variant)
    assert detect_kind(tmp_path) is DatasetKind.CNMC
    loaded = load_dataset(tmp_path)
    assert loaded.kind is DatasetKind.CNMC
    assert loaded.rejected == []
    _check_cnmc(loaded.samples, folds=variant.get("folds", True))


def test_cnmc_sample_ids_do_not_depend_on_the_top_folder(tmp_path):
    a = load_dataset(make_cnmc_tree(tmp_path / "a")).samples
    b = load_dataset(make_cnmc_tree(tmp_path / "b", top=False)).samples
    assert list(a["sample_id"]) == list(b["sample_id"])


def test_cnmc_partial_prelim_match_is_reported_not_fatal(tmp_path):
    make_cnmc_tree(tmp_path, drop_prelim_files=1, extra_prelim_files=1)
    loaded = load_dataset(tmp_path)
    reasons = sorted(r["reason"] for r in loaded.rejected)
    assert len(reasons) == 2
    assert any("has no image file" in r for r in reasons)
    assert any("no row for this file" in r for r in reasons)
    assert (loaded.samples["split"] == "prelim_test").sum() == len(PRELIM) - 1


def test_cnmc_labels_csv_matching_nothing_stops(tmp_path):
    base = make_cnmc_tree(tmp_path)
    csv = base / "validation_data" / "C-NMC_test_prelim_phase_data_labels.csv"
    csv.write_text("Patient_ID,new_names,labels\nUID_99_1_1_all.bmp,999.bmp,1\n")
    with pytest.raises(DatasetError, match="matches none of the 3 images"):
        load_dataset(tmp_path)


def test_allidb2_names(tmp_path):
    for name in ("Im001_1.tif", "Im002_1.tif", "Im131_0.tif"):
        tiny_bmp(tmp_path / "img" / name)
    assert detect_kind(tmp_path) is DatasetKind.ALLIDB2
    samples = load_dataset(tmp_path).samples
    assert list(samples["label"]) == ["ALL", "ALL", "HEM"]
    assert set(samples["subject"]) == {""}


def test_class_folders(tmp_path):
    tiny_bmp(tmp_path / "blast" / "a.png")
    tiny_bmp(tmp_path / "normal" / "sub" / "b.jpg")
    tiny_bmp(tmp_path / "0" / "UID_H7_1_1_hem.bmp")
    tiny_bmp(tmp_path / "mixed" / "UID_8_1_1_all.bmp")
    tiny_bmp(tmp_path / "mixed" / "c.tif")
    loaded = load_dataset(tmp_path)
    assert loaded.kind is DatasetKind.FOLDER
    got = {r.sample_id: (r.label, r.subject) for r in loaded.samples.itertuples()}
    assert got == {
        "0__UID_H7_1_1_hem": ("HEM", "H7"),
        "blast__a": ("ALL", ""),
        "mixed__UID_8_1_1_all": ("ALL", "8"),
        "mixed__c": ("", ""),
        "normal__sub__b": ("HEM", ""),
    }


def test_run_directories_inside_the_data_are_not_scanned(tmp_path):
    tiny_bmp(tmp_path / "all" / "a.png")
    tiny_bmp(tmp_path / "all" / "run" / "segmentation" / "overlays" / "all__a.png")
    (tmp_path / "all" / "run" / RUN_MARKER).write_text("a run directory")
    assert list(load_dataset(tmp_path).samples["sample_id"]) == ["all__a"]


def test_long_sample_ids_end_with_a_hash_and_names_that_are_not_utf8_are_rejected(tmp_path):
    long_id = make_sample_id("d" * 60 + "/" + "c" * 248 + ".bmp")
    assert len(long_id) == MAX_ID and long_id.startswith("d" * 60 + "__c") and long_id[-17] == "_"
    assert make_sample_id("d" * 60 + "/" + "c" * 247 + "x.bmp") != long_id
    tiny_bmp(tmp_path / "hem" / "b.png")
    bad = os.fsencode(tmp_path / "hem") + b"/caf\xe9.png"
    Path(os.fsdecode(bad)).write_bytes((tmp_path / "hem" / "b.png").read_bytes())
    loaded = load_dataset(tmp_path)
    assert list(loaded.samples["sample_id"]) == ["hem__b"]
    assert [row["path"] for row in loaded.rejected] == [f"{tmp_path / 'hem'}/caf\\xe9.png"]
    assert "not valid UTF-8" in loaded.rejected[0]["reason"]


def test_same_stem_other_extension_gets_distinct_ids(tmp_path):
    tiny_bmp(tmp_path / "001.bmp")
    tiny_bmp(tmp_path / "001.png")
    assert sorted(load_dataset(tmp_path).samples["sample_id"]) == ["001_bmp", "001_png"]


def test_manifest(tmp_path):
    tiny_bmp(tmp_path / "imgs" / "a.bmp")
    tiny_bmp(tmp_path / "imgs" / "b.bmp")
    (tmp_path / "m.csv").write_text(
        "path,label,subject,split\n"
        "imgs/a.bmp,all,P1,train\n"
        f"{tmp_path / 'imgs' / 'b.bmp'},HEM,P2,test\n"
        "imgs/missing.bmp,ALL,P3,\n"
        "../escape.bmp,ALL,P3,\n"
        "imgs/a.bmp,maybe,P3,\n"
    )
    loaded = load_dataset(tmp_path / "m.csv")
    assert loaded.kind is DatasetKind.MANIFEST
    assert list(loaded.samples["label"]) == ["ALL", "HEM"]
    assert list(loaded.samples["subject"]) == ["P1", "P2"]
    reasons = " | ".join(r["reason"] for r in loaded.rejected)
    assert "file does not exist" in reasons and "contains '..'" in reasons and "is not ALL/HEM" in reasons


def test_manifest_missing_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,class\na.bmp,ALL\n")
    with pytest.raises(DatasetError, match="needs path,label"):
        load_dataset(tmp_path / "m.csv")


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found in .*empty"):
        load_dataset(tmp_path / "empty")


def test_symlink_loop_does_not_hang(tmp_path):
    tiny_bmp(tmp_path / "all" / "a.bmp")
    (tmp_path / "all" / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert len(load_dataset(tmp_path).samples) == 1


def test_file_link_loop_is_listed_for_rejection_not_resolved(tmp_path):
    tiny_bmp(tmp_path / "all" / "a.bmp")
    (tmp_path / "all" / "b.bmp").symlink_to("b.bmp")
    assert list(load_dataset(tmp_path).samples["path"]) == [
        str((tmp_path / "all" / "a.bmp").resolve()), str(tmp_path.resolve() / "all" / "b.bmp")]
    (tmp_path / "m.csv").write_text("path,label\nall/a.bmp,ALL\nall/b.bmp,ALL\n")
    (rejected,) = load_manifest(tmp_path / "m.csv").rejected
    assert "row 3 of manifest 'm.csv': file is a symbolic link that loops" in rejected["reason"]


@pytest.mark.shared_data
def test_allidb2_real(shared_data):
    samples = load_dataset(shared_data / "all-idb2" / "img").samples
    assert len(samples) == 260
    assert samples["label"].value_counts().to_dict() == {"ALL": 130, "HEM": 130}
    assert load_dataset(shared_data / "all-idb2").kind is DatasetKind.ALLIDB2

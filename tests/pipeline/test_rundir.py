import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from leukoscope.pipeline.atomic import atomic_path, write_csv
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.rundir import RunDir, RunDirError


def test_sha256_of_known_bytes(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_reject_keeps_every_distinct_row_once(tmp_path):
    run = RunDir(tmp_path / "run")
    run.ensure_rejected()
    assert list(run.read_rejected().columns) == ["path", "stage", "reason"]
    run.reject([{"path": "a.bmp", "reason": "row 2: empty"}], stage="segment")
    run.reject([{"path": "a.bmp", "reason": "row 3: empty"}, {"path": "b.bmp", "reason": "x"}], stage="segment")
    run.reject([{"path": "a.bmp", "stage": "features", "reason": "no mask"}, {"path": "b.bmp", "stage": "segment",
                                                                               "reason": "x"}])
    table = run.read_rejected()
    assert table.values.tolist() == [["a.bmp", "segment", "row 2: empty"], ["a.bmp", "segment", "row 3: empty"],
                                     ["a.bmp", "features", "no mask"], ["b.bmp", "segment", "x"]]


def test_a_rejected_path_that_is_not_utf8_is_written_with_escapes(tmp_path):
    run = RunDir(tmp_path / "run")
    run.reject([{"path": os.fsdecode(b"/d/bad\xffname.bmp"), "reason": "r"}], stage="load")
    assert run.read_rejected()["path"].tolist() == ["/d/bad\\xffname.bmp"]


def test_a_foreign_rejected_csv_is_refused_with_its_path(tmp_path):
    run = RunDir(tmp_path / "run")
    run.rejected_path.write_text("id,comment\n1,mine\n", encoding="utf-8")
    with pytest.raises(RunDirError, match=r"rejected.csv' has the columns \['id', 'comment'\].*not written by"):
        run.read_rejected()


def test_a_run_json_that_is_no_record_is_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    run.info_path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(RunDirError, match="run.json' is not a run record leukoscope wrote"):
        run.read_info()


def test_stage_records_are_written_read_and_cleared(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.read_stage_record("handcrafted") == {}
    run.write_stage_record("handcrafted", {"key": "k"})
    assert run.stage_record("handcrafted") == run.path / "features" / ".handcrafted.stage.json"
    assert run.read_stage_record("handcrafted") == {"key": "k"}
    run.clear_stage_record("handcrafted")
    assert run.read_stage_record("handcrafted") == {}


def test_reset_keeps_the_caches_and_deletes_the_rest(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start("segment", {})
    kept = run.cache_root("segmentation") / "segment-1" / "a.npz"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"entry")
    run.mask_path("x").parent.mkdir(parents=True)
    run.mask_path("x").write_bytes(b"png")
    run.segmentation_table.write_text("t")
    run.reset()
    assert sorted(p.relative_to(run.path).as_posix() for p in run.path.rglob("*")) == [
        "segmentation", "segmentation/cache", "segmentation/cache/segment-1", "segmentation/cache/segment-1/a.npz"]


def test_run_json_records_config_versions_and_times(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start("segment", {"data": {"path": "x"}})
    run.update_info(weights={"resnet50": "random"})
    run.update_info(weights={"vgg16": "imagenet"})
    run.finish()
    info = json.loads(run.info_path.read_text())
    assert info["command"] == "segment" and info["status"] == "ok"
    assert info["config"]["data"]["path"] == "x"
    assert {"python", "numpy", "leukoscope"} <= set(info["versions"])
    assert info["weights"] == {"resnet50": "random", "vgg16": "imagenet"}
    assert info["started"] <= info["finished"]


def test_manifest_round_trip_keeps_strings(tmp_path):
    run = RunDir(tmp_path)
    samples = pd.DataFrame({"sample_id": ["a"], "path": ["/x/a.bmp"], "label": [""], "subject": ["007"],
                            "split": [""], "sha256": ["ab"]})
    run.write_manifest(samples)
    back = run.read_manifest()
    assert back.loc[0, "subject"] == "007" and back.loc[0, "label"] == ""


def test_cache_round_trip_and_settings_isolation(tmp_path):
    key = "ab" * 32
    cache = ResultCache(tmp_path, "handcrafted", {"levels": 64})
    assert cache.load(key) is None
    cache.save(key, {"values": pd.Series([1.0, 2.0]).to_numpy()})
    assert key in cache
    assert list(cache.load(key)["values"]) == [1.0, 2.0]
    assert ResultCache(tmp_path, "handcrafted", {"levels": 32}).load(key) is None
    with pytest.raises(ValueError, match="hex digest"):
        cache.load("../../etc/passwd")


def test_cache_entries_hold_no_time_stamp(tmp_path, monkeypatch):
    arrays = {"values": np.arange(3.0), "qc_flag": np.array("morphology:nucleus:empty")}
    ResultCache(tmp_path / "a", "x", {}).save("ab", arrays)
    monkeypatch.setattr(time, "localtime", lambda *a: (2033, 5, 18, 3, 33, 20, 2, 138, 0))  # another day
    ResultCache(tmp_path / "b", "x", {}).save("ab", arrays)
    first, second = (next((tmp_path / n).glob("x-*/ab.npz")).read_bytes() for n in "ab")
    assert first == second
    assert str(ResultCache(tmp_path / "a", "x", {}).load("ab")["qc_flag"]) == "morphology:nucleus:empty"


def test_damaged_cache_entry_is_recomputed(tmp_path):
    key = "cd" * 32
    cache = ResultCache(tmp_path, "x", {})
    (cache.folder / f"{key}.npz").write_bytes(b"garbage")
    assert cache.load(key) is None
    assert key not in cache


def test_write_csv_floats_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [0.1, 1 / 3, float("nan")]})
    write_csv(frame, tmp_path / "f.csv")
    back = pd.read_csv(tmp_path / "f.csv")
    assert back["a"].dtype == float
    assert abs(back["a"][1] - 1 / 3) < 1e-9


def test_kept_drops_the_samples_any_stage_rejected(tmp_path):
    run = RunDir(tmp_path)
    samples = pd.DataFrame({"sample_id": ["a", "b", "c"], "path": ["/d/a.bmp", "/d/b.bmp", "/d/c.bmp"]})
    run.reject([{"path": "/d/b.bmp", "reason": "blank"}], stage="segmentation")
    run.reject([{"path": "/d/masks/c.png", "reason": "unusable mask"}], stage="segmentation")
    assert list(run.kept(samples)["sample_id"]) == ["a", "c"]
    assert list(run.kept(samples).index) == [0, 1]


def test_clear_rejected_forgets_one_stage_only(tmp_path):
    run = RunDir(tmp_path)
    run.reject([{"path": "/d/a.bmp", "reason": "blank"}], stage="segmentation")
    run.reject([{"path": "/d/b.bmp", "reason": "empty"}], stage="load")
    run.clear_rejected("segmentation")
    assert run.read_rejected()[["path", "stage"]].values.tolist() == [["/d/b.bmp", "load"]]
    run.clear_rejected("features")  # nothing of that stage: the file is left as it is
    assert len(run.read_rejected()) == 1


def test_write_image_takes_the_format_from_the_suffix(tmp_path):
    from leukoscope.pipeline.atomic import write_image
    from leukoscope.pipeline.imageio import read_image

    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    for name, magic in (("a.bmp", b"BM"), ("a.png", b"\x89PNG")):
        digest = write_image(image, tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(magic) and digest == sha256_file(tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), image)  # lossless, RGB kept
    with pytest.raises(ValueError, match="BMP output .* must be uint8"):
        write_image(image.astype(np.float32), tmp_path / "b.bmp")

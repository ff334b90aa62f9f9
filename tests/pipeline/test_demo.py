import hashlib

import numpy as np
import pytest

from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.demo import generate_demo, plan_demo
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.synthetic import Stain, synthesize_cell


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_plan_default_is_balanced_with_subject_disjoint_splits():
    plan = plan_demo()
    assert len(plan) == 240
    assert len({c.subject for c in plan}) == 12
    assert sum(c.blast for c in plan) == 120
    test_subjects = {c.subject for c in plan if "prelim" in c.relative}
    train_subjects = {c.subject for c in plan if "training_data" in c.relative}
    assert test_subjects and train_subjects and not test_subjects & train_subjects


@pytest.mark.parametrize(("subjects", "cells"), [(3, 10), (2, 10), (4, 3)])
def test_plan_rejects_impossible_requests(subjects, cells):
    with pytest.raises(ValueError, match="demo needs"):
        plan_demo(subjects=subjects, cells=cells)


def test_demo_is_deterministic_and_reads_back_as_cnmc(tmp_path):
    generate_demo(tmp_path / "a", subjects=6, cells=12, seed=3)
    generate_demo(tmp_path / "b", subjects=6, cells=12, seed=3)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    loaded = load_dataset(tmp_path / "a")
    samples = loaded.samples
    assert loaded.kind.value == "cnmc" and loaded.rejected == []
    assert len(samples) == 12
    assert samples["label"].value_counts().to_dict() == {"ALL": 6, "HEM": 6}
    assert set(samples["split"]) == {"fold_0", "fold_1", "prelim_test"}
    for subject, group in samples.groupby("subject"):
        assert group["label"].nunique() == 1 and group["split"].nunique() == 1
        assert group["label"].iloc[0] == ("HEM" if subject.startswith("H") else "ALL")
    image = read_image(samples["path"].iloc[0])
    assert image.shape == (450, 450, 3)
    masks = sorted((tmp_path / "a" / "masks").glob("*.png"))
    assert len(masks) == 12


def test_seed_changes_the_images(tmp_path):
    generate_demo(tmp_path / "a", subjects=4, cells=4, seed=0)
    generate_demo(tmp_path / "b", subjects=4, cells=4, seed=1)
    assert _digests(tmp_path / "a") != _digests(tmp_path / "b")


def test_blasts_have_larger_nuclei_and_higher_nc_ratio():
    stain = Stain.random(np.random.default_rng(0))
    stats = {True: [], False: []}
    for i in range(40):
        blast = i % 2 == 0
        image, labels = synthesize_cell(np.random.default_rng(i), blast=blast, stain=stain)
        assert image[labels == 0].max() == 0  # black background, as in C-NMC
        nucleus, cell = (labels == 2).sum(), (labels > 0).sum()
        stats[blast].append((nucleus, nucleus / cell))
    blast, normal = np.array(stats[True]), np.array(stats[False])
    assert blast[:, 0].mean() > 1.3 * normal[:, 0].mean()
    assert blast[:, 1].mean() > normal[:, 1].mean() + 0.05
    # overlapping, not trivially separable: some normal nuclei are larger than some blast nuclei
    assert normal[:, 0].max() > blast[:, 0].min()

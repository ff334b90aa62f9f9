import pytest

from leukoscope.features.choices import Backbone
from leukoscope.pipeline.config_rules import ConfigError, Interval, PathRule, coerce


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Interval(1), ">= 1"),
        (Interval(0, open_low=True), "> 0"),
        (Interval(0, 1, open_low=True, open_high=True), "(0, 1)"),
        (Interval(0, 1, open_low=True), "(0, 1]"),
        (Interval(4, multiple_of=2), "even, >= 4"),
        (Interval(1, extra=(-1,), meaning="-1: all"), ">= 1 or -1 (-1: all)"),
        (Interval(0.5, 2.25), "[0.5, 2.25]"),
    ],
)
def test_interval_describes_its_values(rule, text):
    assert rule.describe() == text


@pytest.mark.parametrize(
    ("rule", "allowed", "refused"),
    [
        (Interval(0, 1, open_low=True, open_high=True), [1e-9, 0.5, 1 - 1e-9], [0, 1, -0.5]),
        (Interval(0, 1), [0, 1], [-1e-9, 1.0000001]),
        (Interval(4, multiple_of=2), [4, 6, 100], [2, 5, 7]),
        (Interval(1, extra=(-1,)), [-1, 1, 7], [0, -2]),
    ],
)
def test_interval_bounds(rule, allowed, refused):
    assert all(rule.problem(v) is None for v in allowed)
    assert all(rule.problem(v) == f"{v!r} is out of range" for v in refused)


def test_path_rule(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"")
    files = PathRule("file", "a model", empty=True)
    assert files.problem("") is None and files.problem(str(tmp_path / "m.keras")) is None
    assert files.problem(str(tmp_path)) == f"'{tmp_path}' is not a file"
    assert files.problem("nope.keras") == "file 'nope.keras' does not exist"
    folders = PathRule("folder", "of weights", words=("auto",))
    assert folders.problem("auto") is None and folders.problem(str(tmp_path)) is None
    assert folders.problem("") == "'' is no keyword and no existing folder"
    assert PathRule("file", "a model").problem("") == "file '' does not exist"
    assert folders.describe() == "'auto' or an existing folder (of weights)"


@pytest.mark.parametrize(
    ("value", "annotation", "strict", "expected"),
    [
        (3, int, True, 3),
        (3, float, True, 3.0),
        ("3", int, False, 3),
        ("0.5", float, False, 0.5),
        ("FALSE", bool, False, False),
        (["vgg16"], tuple[Backbone, ...], True, (Backbone.VGG16,)),
        (["all"], tuple[Backbone, ...], True, tuple(Backbone)),
        ([], tuple[Backbone, ...], True, ()),
        ("vgg16, resnet50", tuple[Backbone, ...], False, (Backbone.VGG16, Backbone.RESNET50)),
        ("none", tuple[Backbone, ...], False, ()),
    ],
)
def test_coerce(value, annotation, strict, expected):
    got = coerce(value, annotation, "k", strict=strict)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("3", int, r"^k: expected an integer, got the string '3'; in TOML write numbers"),
        (True, float, r"^k: expected a number, got the boolean True$"),
        ("true", bool, r"^k: expected a boolean, got the string 'true'"),
        (1.5, int, r"^k: expected an integer, got the number 1\.5$"),
        (["vgg16", 1], tuple[Backbone, ...], r"^k: 1 is not allowed; allowed: 'vgg16'"),
    ],
)
def test_coerce_refuses_wrong_toml_types(value, annotation, message):
    with pytest.raises(ConfigError, match=message):
        coerce(value, annotation, "k", strict=True)

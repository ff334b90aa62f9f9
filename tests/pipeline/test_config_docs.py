from pathlib import Path

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.config_docs import COMMAND, config_reference, main

REPO = Path(__file__).resolve().parents[2]


def test_committed_reference_is_current():
    committed = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == config_reference(), f"docs/config.md is out of date: run `{COMMAND}` in the repository root"


def test_every_key_is_described_once():
    text = config_reference()
    for section, values in Config().to_dict().items():
        assert f"\n## [{section}]\n" in text
        for key in values:
            assert text.count(f"| `{key}` |") >= 1
    assert "|  |" not in text  # no empty allowed-values or meaning cell


def test_main_writes_the_reference(tmp_path, capsys):
    out = tmp_path / "config.md"
    assert main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == config_reference()
    assert str(out) in capsys.readouterr().out

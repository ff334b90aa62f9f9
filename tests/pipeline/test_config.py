from pathlib import Path

import pytest

from leukoscope.features.choices import Backbone
from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.config import Config, ConfigError, load_config
from leukoscope.segmentation.choices import ThresholdMethod

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo.toml", "cnmc.toml", "allidb2.toml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / "configs" / name)
    assert isinstance(config, Config)


def test_values_are_converted_to_enums(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\ndataset = "cnmc"\n[segmentation]\nnucleus_method = "zack"\n[features]\nbackbones = ["resnet50", "vgg16"]\n')
    config = load_config(path)
    assert config.data.dataset is DatasetKind.CNMC
    assert config.segmentation.nucleus_method is ThresholdMethod.ZACK
    assert config.features.backbones == (Backbone.RESNET50, Backbone.VGG16)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().data.path = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[dataa]\npath = "x"\n', r"c\.toml: unknown section \[dataa\]; allowed sections: compare, data"),
        ('[data]\npth = "x"\n', r"c\.toml: unknown key 'data\.pth'; allowed keys in \[data\]: path, dataset"),
        ('[data]\ndataset = "kaggle"\n', r"c\.toml: key 'data\.dataset': 'kaggle' is not allowed; allowed: 'auto', 'cnmc'"),
        ("[run]\njobs = \"many\"\n", r"key 'run\.jobs': expected an integer, got 'many'"),
        ("[run]\njobs = -1\n", r"key 'run\.jobs': expected a non-negative integer"),
        ("[run]\nquiet = 1\n", r"key 'run\.quiet': expected true or false"),
        ('[features]\nbackbones = ["resnet51"]\n', r"'resnet51' is not allowed; allowed: 'vgg16', 'vgg19'"),
        ("[data\n", r"c\.toml' is not valid TOML"),
    ],
)
def test_errors_name_file_key_and_allowed_values(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_overrides_from_the_command_line():
    config = Config().with_overrides({"run.jobs": 4, "data.path": None, "features.backbones": "all"})
    assert config.run.jobs == 4
    assert config.data.path == Config().data.path
    assert config.features.backbones == tuple(Backbone)
    assert Config().with_overrides({"features.backbones": "none"}).features.backbones == ()
    with pytest.raises(ConfigError, match="command line: unknown key 'run.job'"):
        Config().with_overrides({"run.job": 2})


def test_to_dict_is_plain():
    plain = Config().to_dict()
    assert plain["data"]["dataset"] == "auto"
    assert isinstance(plain["features"]["families"], list)

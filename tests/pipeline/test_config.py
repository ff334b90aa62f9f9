import os

import pytest

from leukoscope.features.choices import Backbone, Family
from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.config import Config, ConfigError, config_names, config_text, load_config
from leukoscope.segmentation.choices import ThresholdMethod


@pytest.mark.parametrize("name", ["demo", "cnmc", "allidb2"])
def test_shipped_configs_load_by_name(name):
    assert name in config_names()
    config = load_config(name)
    assert isinstance(config, Config)
    assert config_text(name).startswith("#")


def test_shipped_config_paths_stay_relative_to_the_current_directory():
    assert load_config("demo").data.path == "data/demo"


def test_unknown_shipped_name():
    with pytest.raises(ConfigError, match="no shipped config is called 'dem'; shipped: allidb2, cnmc, demo"):
        config_text("dem")


def test_a_path_is_read_as_a_file(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text('[run]\nout = "runs/mine"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config("mine.toml").run.out == "runs/mine"
    assert load_config(tmp_path / "mine.toml").run.out == "runs/mine"


def test_values_are_converted_to_enums(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\ndataset = "cnmc"\n[segmentation]\nnucleus_method = "zack"\n'
                    '[features]\nbackbones = ["resnet50", "vgg16"]\n')
    config = load_config(path)
    assert config.data.dataset is DatasetKind.CNMC
    assert config.segmentation.nucleus_method is ThresholdMethod.ZACK
    assert config.features.backbones == (Backbone.RESNET50, Backbone.VGG16)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().data.path = "x"  # type: ignore[misc]


def test_the_defaults_pass_every_check():
    assert load_config(None) == Config()
    assert Config().with_overrides({}) == Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[dataa]\npath = "x"\n', r"c\.toml: unknown section \[dataa\]; allowed sections: compare, data"),
        ('[data]\npth = "x"\n', r"c\.toml: unknown key 'data\.pth'; allowed keys in \[data\]: path, dataset"),
        ('[data]\ndataset = "kaggle"\n',
         r"c\.toml: key 'data\.dataset': 'kaggle' is not allowed; allowed: 'auto', 'cnmc'"),
        ("[run]\njobs = \"many\"\n", r"c\.toml: key 'run\.jobs': expected an integer, got the string 'many'"),
        ("[run]\njobs = \"4\"\n", r"c\.toml: key 'run\.jobs': expected an integer, got the string '4'; in TOML write "
                                  "numbers and true/false without quotes"),
        ("[run]\njobs = 2.0\n", r"key 'run\.jobs': expected an integer, got the number 2\.0"),
        ("[run]\njobs = true\n", r"key 'run\.jobs': expected an integer, got the boolean True"),
        ("[run]\njobs = 0\n", r"c\.toml: key 'run\.jobs': 0 is out of range; allowed: >= 1 or -1 \(-1: every core"),
        ("[run]\njobs = -2\n", r"key 'run\.jobs': -2 is out of range"),
        ("[run]\nquiet = 1\n", r"key 'run\.quiet': expected a boolean, got the integer 1"),
        ('[run]\nquiet = "true"\n', r"key 'run\.quiet': expected a boolean, got the string 'true'"),
        ("[run]\nseed = -1\n", r"key 'run\.seed': -1 is out of range; allowed: \[0, 4294967295\]"),
        ("[run]\nout = 3\n", r"key 'run\.out': expected a string, got the integer 3"),
        ('[heads]\nlearning_rate = "0.1"\n', r"key 'heads\.learning_rate': expected a number, got the string '0\.1'"),
        ("[heads]\nlearning_rate = 0\n", r"key 'heads\.learning_rate': 0\.0 is out of range; allowed: > 0"),
        ("[segmentation]\nsplit_solidity = 1.5\n",
         r"key 'segmentation\.split_solidity': 1\.5 is out of range; allowed: \(0, 1\]"),
        ("[segmentation]\nmin_size = 0\n", r"key 'segmentation\.min_size': 0 is out of range; allowed: >= 1"),
        ("[compare]\nfolds = 1\n", r"key 'compare\.folds': 1 is out of range; allowed: >= 2"),
        ("[data]\ndemo_subjects = 5\n", r"key 'data\.demo_subjects': 5 is out of range; allowed: even, >= 4"),
        ("[data]\ndemo_cells = 3\n", r"c\.toml: data\.demo_cells = 3 is below data\.demo_subjects = 12"),
        ('[features]\nbackbones = ["resnet51"]\n', r"'resnet51' is not allowed; allowed: 'vgg16', 'vgg19'"),
        ('[features]\nbackbones = "vgg16"\n',
         r"key 'features\.backbones': expected a list of strings, e\.g\. \[\"vgg16\"\], got the string 'vgg16'"),
        ('[features]\nfamilies = ["colour", "colour"]\n', r"key 'features\.families': 'colour' listed more than once"),
        ('[features]\nweights = "imagnet"\n',
         r"c\.toml: key 'features\.weights': 'imagnet' is no keyword and no existing folder; "
         r"allowed: 'auto', 'imagenet', 'random' or an existing folder"),
        ("[features]\nharalick_levels = 300\n",
         r"c\.toml: haralick grey levels must be between 2 and 255 .*features\.haralick_levels"),
        ("[features]\nharalick_distance = 0\n", r"c\.toml: haralick distance must be .*features\.haralick_distance"),
        ('[features]\nbackbones = ["inceptionv3"]\ninput_size = 32\n',
         r"c\.toml: key 'features\.input_size': inceptionv3 needs an input of at least 75x75 pixels, got 32"),
        ('[segmentation]\nrefiner_model = "nope.keras"\n',
         r"c\.toml: key 'segmentation\.refiner_model': file 'nope\.keras' does not exist; "
         r"allowed: '' \(unset\) or an existing file"),
        ('[run]\nscheduler = "tcp://host:8786"\n', r"c\.toml: run\.scheduler is set but run\.backend is 'loky'"),
        ("[data]\nx = 1\ny = 2\n[data.z]\n", r"unknown key 'data\.x'"),
        ("[data]\npath = {a = 1}\n", r"key 'data\.path': expected a string, got the table \{'a': 1\}"),
        ("[heads]\nvalidation_fraction = 1.0\n",
         r"key 'heads\.validation_fraction': 1\.0 is out of range; allowed: \(0, 1\)"),
        ("[heads]\ndropout = 1\n", r"key 'heads\.dropout': 1\.0 is out of range; allowed: \[0, 1\)"),
        ("[heads]\nunfreeze_top = 2\n", r"c\.toml: heads\.unfreeze_top = 2 asks for a second fine-tuning phase but "
                                        r"heads\.fine_tune_epochs is 0"),
        ("[compare]\nprotocol = \"official\"\nrepeats = 5\n",
         r"c\.toml: compare\.repeats = 5 repeats a cross-validation .* 'official' is one fixed split"),
        ("[compare]\nblock_size = 0\n", r"key 'compare\.block_size': 0 is out of range; allowed: >= 1"),
        ("[data\n", r"c\.toml' is not valid TOML"),
    ],
)
def test_errors_name_file_key_and_allowed_values(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_a_weights_folder_must_hold_the_backbones_files(tmp_path):
    from leukoscope.features.backbones import get_backbone

    with pytest.raises(ConfigError, match=r"key 'features\.weights': the folder '.*' lacks "
                                          r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        Config().with_overrides({"features.weights": str(tmp_path), "features.backbones": "vgg16"})
    (tmp_path / get_backbone("vgg16").weights_file).write_bytes(b"")
    config = Config().with_overrides({"features.weights": str(tmp_path), "features.backbones": "vgg16"})
    assert config.features.weights == str(tmp_path)


def test_an_override_replaces_a_missing_file_of_the_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[features]\nweights = "/no/such/folder"\n')
    assert load_config(path, {"features.weights": "random"}).features.weights == "random"
    with pytest.raises(ConfigError, match=r"c\.toml: key 'features\.weights'"):
        load_config(path, {"features.weights": None})


def test_jobs_minus_one_is_every_usable_core():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert Config().with_overrides({"run.jobs": -1}).run.jobs == cores


def test_overrides_from_the_command_line():
    config = Config().with_overrides({"run.jobs": 4, "data.path": None, "features.backbones": "all"})
    assert config.run.jobs == 4
    assert config.data.path == Config().data.path
    assert config.features.backbones == tuple(Backbone)
    assert Config().with_overrides({"features.backbones": "none"}).features.backbones == ()
    with pytest.raises(ConfigError, match="command line: unknown key 'run.job'"):
        Config().with_overrides({"run.job": 2})


def test_command_line_strings_are_parsed():
    config = Config().with_overrides({"run.jobs": "3", "run.quiet": "True", "heads.dropout": "0.25",
                                      "features.families": "colour, haralick", "compare.protocol": "group-cv"})
    assert (config.run.jobs, config.run.quiet, config.heads.dropout) == (3, True, 0.25)
    assert config.features.families == (Family.COLOUR, Family.HARALICK)
    message = r"^command line: key 'run\.jobs': expected an integer, got the string '3\.5'$"
    with pytest.raises(ConfigError, match=message):
        Config().with_overrides({"run.jobs": "3.5"})


def test_to_dict_is_plain():
    plain = Config().to_dict()
    assert plain["data"]["dataset"] == "auto"
    assert isinstance(plain["features"]["families"], list)


def test_to_dict_round_trips_through_overrides():
    config = load_config("cnmc")
    flat = {f"{s}.{k}": v for s, values in config.to_dict().items() for k, v in values.items()}
    assert Config().with_overrides(flat) == config

import json

import pytest

from lrgan_edge import PRESETS, RunConfig, get_preset
from lrgan_edge.errors import ConfigError


def test_round_trip_through_dict():
    cfg = PRESETS["demo"]
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg


def test_overrides_are_typed_and_checked(tiny):
    cfg = tiny.with_overrides({"lr_g": "1e-3", "model.lrm_combine": "matmul", "train.amp": "false",
                               "lrm_qk_channels": "none", "steps": 7})
    assert cfg.train.lr_g == 1e-3 and cfg.train.steps == 7 and cfg.train.amp is False
    assert cfg.model.lrm_combine == "matmul" and cfg.model.lrm_qk_channels is None
    assert tiny.train.lr_g == 2e-4                                  # frozen: the preset is untouched


def test_unknown_key_lists_known_ones(tiny):
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.lrm_size'.*model\.lrm_resolution"):
        tiny.with_overrides({"model.lrm_size": 3})
    with pytest.raises(ConfigError, match="expected a int"):
        tiny.with_overrides({"steps": "many"})
    with pytest.raises(ConfigError, match="unknown TrainConfig key"):
        RunConfig.from_dict({"format_version": 1, "train": {"stepz": 3}})


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="known presets: paper-ffhq, paper-cub, demo, tiny"):
        get_preset("paper-church")


def test_cross_field_checks(tiny):
    with pytest.raises(ConfigError, match="batch_size=0"):
        tiny.with_overrides({"batch_size": 0})
    with pytest.raises(ConfigError, match="first stage"):
        tiny.with_overrides({"num_stages": 4})


def test_export_and_benchmarks_install_under_the_package():
    """DESIGN §2: the top-level export/ and benchmarks/ folders install as lrgan_edge.export / .benchmarks."""
    import lrgan_edge.benchmarks
    import lrgan_edge.export
    assert lrgan_edge.export.__file__.replace("\\", "/").endswith("export/__init__.py")
    assert lrgan_edge.benchmarks.__file__.replace("\\", "/").endswith("benchmarks/__init__.py")

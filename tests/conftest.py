import dataclasses

import pytest
import torch

from lrgan_edge import PRESETS
from lrgan_edge.rundir import run_training


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny():
    return PRESETS["tiny"]


def with_model(cfg, **changes):
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **changes))


def with_train(cfg, **changes):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny run of two steps on synthetic data, shared by the tests of one module."""
    out = tmp_path_factory.mktemp("run")
    run_training("synthetic:longrange:16", out, "tiny", {"train.steps": 2}, on_message=lambda m: None)
    return out

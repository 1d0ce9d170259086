import dataclasses

import pytest
import torch

from lrgan_edge import PRESETS


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

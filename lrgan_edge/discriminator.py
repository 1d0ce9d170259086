"""One discriminator per stage: a down-sampling conv encoder ending in a real/fake logit."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .config import ModelConfig


class StageDiscriminator(nn.Module):
    """4x4 stride-2 convs from `resolution` down to 4x4, then a 4x4 conv to one logit per image.

    Spectral normalisation keeps the small multi-stage GAN stable and needs no batch statistics,
    so it behaves the same on one rank or many.
    """

    def __init__(self, resolution: int, base_channels: int, max_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, out_ch, res = 3, base_channels, resolution
        while res > 4:
            layers += [spectral_norm(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            in_ch, out_ch, res = out_ch, min(out_ch * 2, max_channels), res // 2
        self.encoder = nn.Sequential(*layers)
        self.logit = spectral_norm(nn.Conv2d(in_ch, 1, 4))
        self.resolution = resolution

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.logit(self.encoder(image)).flatten()   # (B,)


class Discriminators(nn.Module):
    """The per-stage discriminators, in stage order."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.stages = nn.ModuleList(StageDiscriminator(r, cfg.d_base_channels, cfg.d_max_channels)
                                    for r in cfg.stage_resolutions)

    def forward(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        return [d(x) for d, x in zip(self.stages, images)]


def build_discriminators(cfg) -> Discriminators:
    return Discriminators(getattr(cfg, "model", cfg))

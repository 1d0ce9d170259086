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

    def __init__(self, resolution: int, base_channels: int, max_channels: int, mbstd_group: int = 0) -> None:
        super().__init__()
        self.mbstd_group = mbstd_group
        layers: list[nn.Module] = []
        in_ch, out_ch, res = 3, base_channels, resolution
        while res > 4:
            layers += [spectral_norm(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            in_ch, out_ch, res = out_ch, min(out_ch * 2, max_channels), res // 2
        self.encoder = nn.Sequential(*layers)
        self.logit = spectral_norm(nn.Conv2d(in_ch + (1 if mbstd_group else 0), 1, 4))
        self.resolution = resolution

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.encoder(image)                                   # (B, C, 4, 4)
        if self.mbstd_group:
            h = minibatch_stddev(h, self.mbstd_group)             # (B, C + 1, 4, 4)
        return self.logit(h).flatten()                            # (B,)


def minibatch_stddev(h: torch.Tensor, group: int) -> torch.Tensor:
    """PGGAN's minibatch standard deviation: one extra channel telling D how varied a group of
    samples is, so that a collapsed generator is easy to spot (Karras et al. 2018, §3)."""
    B, C, H, W = h.shape
    g = min(group, B)
    while B % g:
        g -= 1
    std = h.float().view(g, B // g, C, H, W).var(dim=0, unbiased=False).add(1e-8).sqrt()   # (B/g, C, H, W)
    feat = std.mean(dim=(1, 2, 3)).to(h.dtype).view(-1, 1, 1, 1).repeat(g, 1, H, W)     # (B, 1, H, W)
    return torch.cat([h, feat], dim=1)


class Discriminators(nn.Module):
    """The per-stage discriminators, in stage order."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.stages = nn.ModuleList(StageDiscriminator(r, cfg.d_base_channels, cfg.d_max_channels, cfg.d_mbstd_group)
                                    for r in cfg.stage_resolutions)

    def forward(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        return [d(x) for d, x in zip(self.stages, images)]


def build_discriminators(cfg) -> Discriminators:
    return Discriminators(getattr(cfg, "model", cfg))

"""Baselines of the paper's Table 1, written from their papers' architectures, for speed and size.

Random weights are enough for latency and parameter counts. Both generators are built for any
power-of-two output size (the bench builds them at the size of the model it compares against);
at 256x256 their parameter counts sit beside the ones the LR-GAN paper reports (23.3 M / 23.3 M
for PGGAN, 13.3 M / 51.6 M for SAGAN).

- PGGAN (Karras et al. 2018, Table 2): latent 512 with pixel norm; 4x4 dense + conv3x3; per
  doubling nearest x2 + two conv3x3, each LeakyReLU(0.2) + pixel norm; width
  min(8192 / 2**(log2 R - 1), 512); 1x1 to-RGB. Equalized learning rate is a per-layer constant
  that folds into the weights at inference, so plain convs stand for it. D mirrors G with
  minibatch-stddev and a 4x4 conv + dense head.
- SAGAN (Zhang et al. 2019, the authors' released code): linear to 4x4, residual up-blocks
  (BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3, 1x1 shortcut), the self-attention block at
  64x64 (feat64, the paper's best placement for larger maps), BN, ReLU, conv3x3, tanh. The
  authors released a 128x128 model; for 256x256 we take BigGAN-256's width multipliers
  (the same group's follow-up at 256x256) and a base width that lands near the 13.3 M the
  LR-GAN paper reports for its SAGAN. Spectral norm folds into the weights at inference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lrgan_edge.self_attention import SelfAttention

BASELINES = ("pggan", "sagan")
PAPER_NOP = {"pggan": (23.3e6, 23.3e6), "sagan": (13.3e6, 51.6e6), "lrgan": (7.0e6, 7.6e6)}  # LR-GAN Table 1


# ---------------------------------------------------------------- PGGAN

def pggan_channels(res: int) -> int:
    return min(8192 // (res // 2), 512)       # fmap_base 8192, fmap_max 512: 512 up to 32x32, then halving


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def _pg_conv(in_ch: int, out_ch: int, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, k, padding=k // 2), nn.LeakyReLU(0.2), PixelNorm()]


class PGGANGenerator(nn.Module):
    def __init__(self, resolution: int = 256, z_dim: int = 512) -> None:
        super().__init__()
        self.z_dim, self.resolution = z_dim, resolution
        c4 = pggan_channels(4)
        self.dense = nn.Linear(z_dim, c4 * 16)       # PGGAN's 4x4 "conv" on a 1x1 latent
        layers: list[nn.Module] = [nn.LeakyReLU(0.2), PixelNorm(), *_pg_conv(c4, c4)]
        res, ch = 4, c4
        while res < resolution:
            res, out = res * 2, pggan_channels(res * 2)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_pg_conv(ch, out), *_pg_conv(out, out)]
            ch = out
        self.body = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(ch, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)          # pixel norm of the latent
        h = self.dense(z).view(z.shape[0], -1, 4, 4)                                # (B, 512, 4, 4)
        return self.to_rgb(self.body(h))                                            # (B, 3, R, R), linear output


class MinibatchStddev(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.std(dim=0, unbiased=False).mean().expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, std], dim=1)


class PGGANDiscriminator(nn.Module):
    def __init__(self, resolution: int = 256) -> None:
        super().__init__()
        ch = pggan_channels(resolution)
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 1), nn.LeakyReLU(0.2)]    # from-RGB
        res = resolution
        while res > 4:
            out = pggan_channels(res // 2)
            layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2),
                       nn.Conv2d(ch, out, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
            res, ch = res // 2, out
        layers += [MinibatchStddev(), nn.Conv2d(ch + 1, ch, 3, padding=1), nn.LeakyReLU(0.2),
                   nn.Conv2d(ch, ch, 4), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(ch, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# ---------------------------------------------------------------- SAGAN

SAGAN_G_WIDTH = 38        # base width: at 256x256 NoP-G is 13.6 M (LR-GAN paper: 13.3 M)
SAGAN_D_WIDTH = 93        # at 256x256 NoP-D is 51.8 M (LR-GAN paper: 51.6 M)
SAGAN_ATTENTION_AT = 64


def sagan_multipliers(resolution: int) -> list[int]:
    """Width multipliers from 4x4 up to `resolution` (BigGAN-256's 16,16,8,8,4,2,1; shorter below 256)."""
    full = [16, 16, 8, 8, 4, 2, 1]
    n = int(math.log2(resolution)) - 1          # feature maps 4 .. resolution
    return full[-n:] if n <= len(full) else [16] * (n - len(full)) + full


class SAGANUpBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class SAGANGenerator(nn.Module):
    def __init__(self, resolution: int = 256, z_dim: int = 128, width: int = SAGAN_G_WIDTH) -> None:
        super().__init__()
        self.z_dim, self.resolution = z_dim, resolution
        chans = [m * width for m in sagan_multipliers(resolution)]          # widths at 4, 8, ..., resolution
        self.linear = nn.Linear(z_dim, chans[0] * 16)
        blocks: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans, chans[1:])):
            blocks.append(SAGANUpBlock(cin, cout))
            if 8 << i == min(SAGAN_ATTENTION_AT, resolution // 2):          # feat64 (or the middle, when smaller)
                blocks.append(SelfAttention(cout))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], 3, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], -1, 4, 4)                        # (B, 16w, 4, 4)
        return self.head(self.blocks(h))                                     # (B, 3, R, R) in [-1, 1]


class SAGANDownBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class SAGANDiscriminator(nn.Module):
    def __init__(self, resolution: int = 256, width: int = SAGAN_D_WIDTH) -> None:
        super().__init__()
        chans = [m * width for m in reversed(sagan_multipliers(resolution))]   # widths at resolution .. 4
        chans[0] = width
        blocks: list[nn.Module] = [SAGANDownBlock(3, chans[0], first=True)]
        for i, (cin, cout) in enumerate(zip(chans, chans[1:-1])):
            if (resolution >> (i + 1)) == min(SAGAN_ATTENTION_AT, resolution // 2):
                blocks.append(SelfAttention(cin))
            blocks.append(SAGANDownBlock(cin, cout))
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(chans[-2], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))                          # global sum pooling
        return self.linear(h)


def build_baseline(name: str, resolution: int) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of a baseline at `resolution`, random weights, eval mode."""
    if name == "pggan":
        return PGGANGenerator(resolution).eval(), PGGANDiscriminator(resolution).eval()
    if name == "sagan":
        return SAGANGenerator(resolution).eval(), SAGANDiscriminator(resolution).eval()
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")

"""Building blocks of the generator (paper appendix A, DESIGN §4)."""

from __future__ import annotations

import torch
from torch import nn


class GLU(nn.Module):
    """Gated linear unit over channels: x[:, :C] * sigmoid(x[:, C:])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)  # followed by IN, so a bias is redundant


class UpBlock(nn.Module):
    """Nearest x2 -> conv3x3 (to 2*out) -> InstanceNorm -> GLU (Fig. 7)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = conv3x3(in_ch, 2 * out_ch)
        self.norm = nn.InstanceNorm2d(2 * out_ch, affine=True)
        self.glu = GLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.glu(self.norm(self.conv(self.up(x))))


class ResBlock(nn.Module):
    """conv3x3 -> IN -> GLU -> conv3x3 -> IN, plus the identity (Fig. 6)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, 2 * channels), nn.InstanceNorm2d(2 * channels, affine=True), GLU(),
            conv3x3(channels, channels), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BottleneckResBlock(nn.Module):
    """x + IN(conv1x1(ReLU(IN(conv3x3(x -> C/4))))): the paper's "w/ Residual" ablation in place of the
    LRM, a local block of about the LRM's size (10,400 vs 10,448 parameters at 64 channels, 32x32)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(channels // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 3, padding=1, bias=False), nn.InstanceNorm2d(mid, affine=True), nn.ReLU(),
            nn.Conv2d(mid, channels, 1, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ToRGB(nn.Module):
    """conv3x3 + tanh: a stage's image in [-1, 1]."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))

"""The long-range module (LRM) of the paper, §3.2, Fig. 2b/2c, Eqs. 2-3 (DESIGN §3).

Softmax maps (alpha over positions, beta over channels) scale *signed* learnable weights
(w per position, c per channel), so the module can express negative relations, which plain
self-attention cannot. Only 1x1 conv, reshape/transpose, bmm, softmax, mul and add are used
on the plain path, so every export target takes it as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


class SpatialLongRange(nn.Module):
    """h_s[c, j] = sum_i h[c, i] * w[i] * alpha[j, i], alpha = softmax(q^T k) (Eq. 2)."""

    def __init__(self, channels: int, height: int, width: int, qk_channels: int, combine: str,
                 weight_std: float = 1.0) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, qk_channels, 1)
        self.key = nn.Conv2d(channels, qk_channels, 1)
        self.weight = nn.Parameter(torch.randn(height * width) * weight_std)  # w ~ N(0, 1), one per position
        self.combine = combine
        self.fast = False  # scaled_dot_product_attention path; export keeps the plain one

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        q = self.query(h).flatten(2)                        # (B, Cqk, N)
        k = self.key(h).flatten(2)                          # (B, Cqk, N)
        h_flat = h.flatten(2)                               # (B, C, N)
        if self.combine == "matmul":
            # Literal reading: W_n = alpha^T @ W' has equal columns, so h_s is constant over positions.
            alpha = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)       # (B, N, N)
            v = torch.matmul(self.weight, alpha)                                  # (B, N): v[i] = sum_k w[k] alpha[k, i]
            h_s = torch.bmm(h_flat, v.unsqueeze(-1))                               # (B, C, 1)
            return h_s.expand(B, C, H * W).reshape(B, C, H, W)
        scaled = h_flat * self.weight                       # (B, C, N): values scaled by signed w[i]
        if self.fast:
            # Same maths as below with scale=1 (Eq. 2 has no 1/sqrt(d)); never holds alpha on CUDA.
            h_s = F.scaled_dot_product_attention(q.transpose(1, 2).unsqueeze(1), k.transpose(1, 2).unsqueeze(1),
                                                 scaled.transpose(1, 2).unsqueeze(1), scale=1.0)  # (B, 1, N, C)
            return h_s.squeeze(1).transpose(1, 2).reshape(B, C, H, W)
        alpha = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)           # (B, N, N), Eq. 2
        h_s = torch.bmm(scaled, alpha.transpose(1, 2))                             # (B, C, N)
        return h_s.reshape(B, C, H, W)


class ChannelLongRange(nn.Module):
    """h_c[i, p] = sum_j beta[i, j] * c[j] * h[j, p], beta = softmax(hc1 hc2^T) (Eq. 3)."""

    def __init__(self, channels: int, combine: str, weight_std: float = 1.0) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.weight = nn.Parameter(torch.randn(channels) * weight_std)  # c ~ N(0, 1), one per channel
        self.combine = combine

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        hc1 = self.query(h).flatten(2)                      # (B, C, N)
        hc2 = self.key(h).flatten(2)                        # (B, C, N)
        beta = torch.softmax(torch.bmm(hc1, hc2.transpose(1, 2)), dim=-1)        # (B, C, C), Eq. 3
        h_flat = h.flatten(2)                               # (B, C, N)
        if self.combine == "matmul":
            u = torch.matmul(self.weight, beta)                                   # (B, C): u[j] = sum_k c[k] beta[k, j]
            h_c = torch.bmm(u.unsqueeze(1), h_flat)                                # (B, 1, N), same for every channel
            return h_c.expand(B, C, H * W).reshape(B, C, H, W)
        h_c = torch.bmm(beta, h_flat * self.weight.view(1, C, 1))                  # (B, C, N)
        return h_c.reshape(B, C, H, W)


class LongRangeModule(nn.Module):
    """h + h_s + h_c, the ⊕ of Fig. 2, on a feature map of fixed size (channels, height, width)."""

    def __init__(self, channels: int, height: int, width: int, qk_channels: int | None = None,
                 combine: str = "hadamard", weight_std: float = 1.0) -> None:
        super().__init__()
        if combine not in ("hadamard", "matmul"):
            raise ConfigError(f"combine={combine!r}: known kinds are hadamard, matmul")
        self.channels, self.height, self.width = channels, height, width
        # weight_std scales the N(0, 1) initialisation of w and c; 0 starts the module as the identity
        # (like SAGAN's gamma = 0), a study option beside the paper's N(0, 1).
        self.spatial = SpatialLongRange(channels, height, width, qk_channels or max(channels // 8, 1), combine, weight_std)
        self.channel = ChannelLongRange(channels, combine, weight_std)

    @property
    def fast(self) -> bool:
        return self.spatial.fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self.spatial.fast = value

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[1:] != (self.channels, self.height, self.width):
            raise ValueError(f"LongRangeModule expects (B, {self.channels}, {self.height}, {self.width}), "
                             f"got {tuple(h.shape)}")
        return h + self.spatial(h) + self.channel(h)

"""SAGAN's self-attention block (Zhang et al. 2019), for the paper's "w/ SA" ablation and the SAGAN baseline.

Written as the SAGAN authors' released code does it (`sn_non_local_block_sim`): query/key at
C/8 channels, value at C/2, keys and values max-pooled 2x2 (a quarter of the positions), a 1x1
output conv and a learnable gate `gamma` that starts at 0. Unlike the LRM, the softmax map
scales the values only by positive weights (paper §3.2). Spectral norm, which SAGAN applies to
these convs during training, folds into the weights at inference and is left out here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"SelfAttention needs >= 8 channels (query/key are C/8 wide), got {channels}")
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))          # attention gated in gradually, as in SAGAN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = self.query(x).flatten(2)                        # (B, C/8, N)
        k = F.max_pool2d(self.key(x), 2).flatten(2)         # (B, C/8, N/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)       # (B, C/2, N/4)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)   # (B, N, N/4), rows sum to 1
        o = torch.bmm(v, attn.transpose(1, 2)).view(B, C // 2, H, W)    # (B, C/2, H, W)
        return x + self.gamma * self.out(o)

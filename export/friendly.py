"""Exactly equivalent, export-friendly forms of the generator's blocks.

Today's XNNPACK partitioner leaves InstanceNorm2d, nearest-neighbour upsampling and chunk-based
GLU to slow portable kernels. For export they are rewritten as ops it delegates:
- instance norm as explicit mean / variance / rsqrt arithmetic;
- GLU by slicing;
- nearest x2 upsampling followed by a 3x3 convolution folded into one 4x4 stride-2 transposed
  convolution (each output phase sees the sum of the 3x3 taps that land on the same input pixel).
Each rewrite is proven equal to the training form by a test.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lrgan_edge.blocks import GLU, UpBlock
from lrgan_edge.generator import Generator

# Rows: taps of the 4-tap transposed kernel; columns: taps of the 3-tap kernel after nearest x2.
# out[2i] = W0 x[i-1] + (W1 + W2) x[i] -> K3 = W0, K1 = W1 + W2
# out[2i+1] = (W0 + W1) x[i] + W2 x[i+1] -> K2 = W0 + W1, K0 = W2
FOLD = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class SliceGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        return x[:, :c] * torch.sigmoid(x[:, c:])


class ExplicitInstanceNorm(nn.Module):
    """InstanceNorm2d(affine=True, no running stats) as mean / variance arithmetic."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = nn.Parameter(norm.weight.detach().clone().view(1, -1, 1, 1))
        self.bias = nn.Parameter(norm.bias.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)                   # (B, C, 1, 1)
        centred = x - mean
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)  # biased, as InstanceNorm2d
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias


def fold_upsample_conv(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """nearest x2 then `conv` (3x3, padding 1) as one ConvTranspose2d(k=4, s=2, p=1)."""
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
    w = conv.weight.detach()                                      # (Cout, Cin, 3, 3)
    fold = FOLD.to(w)
    k = torch.einsum("ka,oiab,lb->iokl", fold, w, fold)           # (Cin, Cout, 4, 4)
    deconv = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1,
                                bias=conv.bias is not None)
    deconv.weight.data.copy_(k)
    if conv.bias is not None:
        deconv.bias.data.copy_(conv.bias.detach())
    return deconv


class FoldedUpBlock(nn.Module):
    def __init__(self, block: UpBlock) -> None:
        super().__init__()
        self.deconv = fold_upsample_conv(block.conv)
        self.norm = ExplicitInstanceNorm(block.norm)
        self.glu = SliceGLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.glu(self.norm(self.deconv(x)))


def export_friendly(generator: Generator) -> Generator:
    """A copy of `generator` with every block in its delegable form (same outputs)."""
    G = copy.deepcopy(generator)
    _swap(G)
    return G.eval()


def _swap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, UpBlock):
            setattr(module, name, FoldedUpBlock(child))
        elif isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, ExplicitInstanceNorm(child))
        elif isinstance(child, GLU):
            setattr(module, name, SliceGLU())
        else:
            _swap(child)

"""Each export-friendly rewrite equals the training form it replaces."""

import torch

from lrgan_edge import PRESETS, build_generator
from lrgan_edge.blocks import GLU, ResBlock, UpBlock
from lrgan_edge.export.friendly import (ExplicitInstanceNorm, FoldedUpBlock, SliceGLU, export_friendly,
                                        fold_upsample_conv)


def test_slice_glu():
    x = torch.randn(3, 8, 5, 5)
    torch.testing.assert_close(SliceGLU()(x), GLU()(x), rtol=0, atol=0)


def test_explicit_instance_norm():
    norm = torch.nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 7, 9) * 3 + 1
    torch.testing.assert_close(ExplicitInstanceNorm(norm)(x), norm(x), rtol=1e-5, atol=1e-5)


def test_upsample_conv_folds_into_one_transposed_conv():
    conv = torch.nn.Conv2d(5, 7, 3, padding=1, bias=True)
    x = torch.randn(2, 5, 6, 4)
    expected = conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(fold_upsample_conv(conv)(x), expected, rtol=1e-5, atol=1e-5)


def test_folded_up_block_and_res_block():
    block = UpBlock(4, 3)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(FoldedUpBlock(block)(x), block(x), rtol=1e-5, atol=1e-5)
    res = ResBlock(4)
    torch.testing.assert_close(export_friendly_module(res)(x), res(x), rtol=1e-5, atol=1e-5)


def export_friendly_module(module):
    from lrgan_edge.export.friendly import _swap
    import copy
    m = copy.deepcopy(module)
    _swap(m)
    assert not any(isinstance(c, (torch.nn.InstanceNorm2d, GLU, UpBlock)) for c in m.modules())
    return m


def test_whole_generator_unchanged():
    for name in ("tiny", "demo"):
        G = build_generator(PRESETS[name]).eval()
        F = export_friendly(G)
        assert not any(isinstance(m, (torch.nn.InstanceNorm2d, GLU, UpBlock, torch.nn.Upsample)) for m in F.modules())
        z, meta = torch.randn(3, G.z_dim), torch.randn(3, 512)
        for a, b in zip(F.forward_stages(z, meta), G.forward_stages(z, meta)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

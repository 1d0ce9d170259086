"""The LRM against a direct transcription of Eqs. 2-3 and Fig. 2b/2c that materialises W', W_n, c', c_n."""

import pytest
import torch

from lrgan_edge.errors import ConfigError
from lrgan_edge.lrm import LongRangeModule


def reference_lrm(m: LongRangeModule, h: torch.Tensor, combine: str) -> torch.Tensor:
    B, C, H, W = h.shape
    N = H * W
    out = []
    for b in range(B):
        hb = h[b:b + 1]
        hf = hb.reshape(C, N)                                     # C x N
        # Spatial direction, Fig. 2b.
        q = m.spatial.query(hb).reshape(-1, N)
        k = m.spatial.key(hb).reshape(-1, N)
        n = q.T @ k                                               # N x N
        alpha = torch.exp(n) / torch.exp(n).sum(dim=1, keepdim=True)   # Eq. 2, row softmax
        w = m.spatial.weight.reshape(N, 1)
        w_rep = w.repeat(1, N)                                    # W'[i, j] = w[i]
        W_n = alpha.T * w_rep if combine == "hadamard" else alpha.T @ w_rep
        h_s = hf @ W_n                                            # C x N
        # Channel direction, Fig. 2c.
        hc1 = m.channel.query(hb).reshape(C, N)
        hc2 = m.channel.key(hb).reshape(C, N)
        z = hc1 @ hc2.T                                           # C x C
        beta = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)    # Eq. 3
        c_rep = m.channel.weight.reshape(C, 1).repeat(1, C)       # c'[i, j] = c[i]
        c_n = beta.T * c_rep if combine == "hadamard" else beta.T @ c_rep
        h_c = (hf.T @ c_n).T                                      # (N x C) @ (C x C), back to C x N
        out.append((hf + h_s + h_c).reshape(C, H, W))
    return torch.stack(out)


@pytest.mark.parametrize("combine", ["hadamard", "matmul"])
def test_lrm_matches_paper_equations(combine):
    torch.manual_seed(1)
    m = LongRangeModule(16, 4, 6, combine=combine).double()
    h = torch.randn(2, 16, 4, 6, dtype=torch.double) * 0.5
    torch.testing.assert_close(m(h), reference_lrm(m, h, combine), rtol=1e-9, atol=1e-9)


def test_matmul_reading_degenerates():
    """Taken literally, h_s is constant over positions and h_c constant over channels (DESIGN §3)."""
    m = LongRangeModule(8, 4, 4, combine="matmul")
    h = torch.randn(1, 8, 4, 4)
    h_s, h_c = m.spatial(h), m.channel(h)
    assert torch.allclose(h_s, h_s[..., :1, :1].expand_as(h_s), atol=1e-5)
    assert torch.allclose(h_c, h_c[:, :1].expand_as(h_c), atol=1e-5)
    assert h_s.std() > 0 and h_c.std() > 0


def test_fast_path_equals_plain_path():
    torch.manual_seed(2)
    m = LongRangeModule(32, 8, 8)
    h = torch.randn(3, 32, 8, 8, requires_grad=True)
    plain = m(h)
    grad_plain = torch.autograd.grad(plain.square().sum(), [h, m.spatial.weight, m.spatial.query.weight])
    m.fast = True
    fast = m(h)
    grad_fast = torch.autograd.grad(fast.square().sum(), [h, m.spatial.weight, m.spatial.query.weight])
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(grad_fast, grad_plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_public_shape_and_defaults():
    m = LongRangeModule(64, 16, 8)
    assert isinstance(m.spatial.query, torch.nn.Conv2d) and m.spatial.query.out_channels == 8   # C // 8
    assert m.spatial.key.out_channels == 8
    assert m.spatial.weight.shape == (16 * 8,)
    assert m.channel.query.out_channels == 64 and m.channel.key.out_channels == 64
    assert m.channel.weight.shape == (64,)
    assert LongRangeModule(4, 2, 2).spatial.query.out_channels == 1                             # max(C // 8, 1)
    assert LongRangeModule(64, 4, 4, qk_channels=5).spatial.key.out_channels == 5


def test_signed_weights_allow_negative_relations():
    """With w < 0 the spatial term opposes the input: what plain softmax attention cannot do."""
    m = LongRangeModule(8, 4, 4)
    with torch.no_grad():
        m.spatial.weight.fill_(-1.0)
    h = torch.rand(1, 8, 4, 4) + 0.1                      # strictly positive features
    assert (m.spatial(h) < 0).all()


def test_rejects_wrong_input_shape_and_unknown_combine():
    with pytest.raises(ValueError, match=r"expects \(B, 8, 4, 4\)"):
        LongRangeModule(8, 4, 4)(torch.randn(1, 8, 8, 8))
    with pytest.raises(ConfigError, match="hadamard, matmul"):
        LongRangeModule(8, 4, 4, combine="dot")


def test_zero_weight_std_starts_as_the_identity_and_still_learns():
    torch.manual_seed(0)
    m = LongRangeModule(8, 4, 4, weight_std=0.0)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(m(x), x)                                    # h + 0 + 0
    m(x).square().sum().backward()
    assert m.spatial.weight.grad.abs().sum() > 0 and m.channel.weight.grad.abs().sum() > 0
    torch.manual_seed(0)
    paper = LongRangeModule(8, 4, 4)                               # default: the paper's N(0, 1)
    assert 0.5 < float(paper.spatial.weight.std()) < 1.5 and not torch.equal(paper(x), x)
    from lrgan_edge import PRESETS
    with pytest.raises(ConfigError, match="lrm_weight_std=-1.0: must be >= 0"):
        PRESETS["tiny"].with_overrides({"model.lrm_weight_std": "-1"})

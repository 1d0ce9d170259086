import pytest
import torch

from lrgan_edge import PRESETS, build_generator, count_parameters
from lrgan_edge.blocks import GLU, ResBlock, UpBlock
from lrgan_edge.config import ModelConfig
from lrgan_edge.discriminator import build_discriminators, minibatch_stddev
from lrgan_edge.errors import ConfigError
from lrgan_edge.lrm import LongRangeModule

from .conftest import with_model


def test_glu():
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(GLU()(x), x[:, :3] * torch.sigmoid(x[:, 3:]))


def test_up_and_res_blocks():
    assert UpBlock(8, 4)(torch.randn(2, 8, 5, 5)).shape == (2, 4, 10, 10)
    block = ResBlock(6)
    x = torch.randn(2, 6, 4, 4)
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.body[-1].weight.zero_()      # last IN scale 0 -> the block is the identity
        block.body[-1].bias.zero_()
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("name, nop_g, nop_d", [("paper-ffhq", 7.0e6, 7.6e6), ("paper-cub", 7.0e6, 7.6e6)])
def test_paper_presets_match_paper_parameter_counts(name, nop_g, nop_d):
    cfg = PRESETS[name]
    assert abs(count_parameters(build_generator(cfg)) / nop_g - 1) <= 0.10
    assert abs(count_parameters(build_discriminators(cfg)) / nop_d - 1) <= 0.10
    assert cfg.model.stage_resolutions == (64, 128, 256)


@pytest.mark.parametrize("name, lrm_res", [("paper-ffhq", 32), ("paper-cub", 64)])
def test_lrm_placement(name, lrm_res):
    G = build_generator(PRESETS[name])
    lrms = [m for m in G.modules() if isinstance(m, LongRangeModule)]
    assert len(lrms) == 1 and (lrms[0].height, lrms[0].width) == (lrm_res, lrm_res)


def test_generator_stages_shapes_and_range(tiny):
    G = build_generator(tiny)
    z, meta = torch.randn(3, G.z_dim), torch.randn(3, G.meta_dim)
    stages = G.forward_stages(z, meta)
    assert [s.shape for s in stages] == [(3, 3, 16, 16), (3, 3, 32, 32)]
    assert all(s.abs().max() <= 1 for s in stages)
    torch.testing.assert_close(G(z, meta), stages[-1])
    assert (G.z_dim, G.meta_dim, G.img_resolution) == (16, 512, 32)
    assert len(G.forward_stages(z, meta, num_stages=1)) == 1


def test_generator_uses_metadata(tiny):
    G = build_generator(tiny).eval()
    z = torch.randn(2, G.z_dim)
    assert not torch.allclose(G(z, torch.zeros(2, 512)), G(z, torch.randn(2, 512)))


def test_lrm_in_later_stage_and_ablation(tiny):
    G = build_generator(with_model(tiny, lrm_resolution=32))
    assert [m.height for m in G.modules() if isinstance(m, LongRangeModule)] == [32]
    assert G(torch.randn(1, 16), torch.randn(1, 512)).shape == (1, 3, 32, 32)
    none = build_generator(with_model(tiny, attention="none"))
    assert not any(isinstance(m, LongRangeModule) for m in none.modules())


def test_bad_model_config():
    with pytest.raises(ConfigError, match="feature maps at 4, 8, 16, 32"):
        ModelConfig(resolution=32, num_stages=2, lrm_resolution=64)
    with pytest.raises(ConfigError, match="power of two"):
        ModelConfig(resolution=100)
    with pytest.raises(ConfigError, match="known kinds"):
        ModelConfig(attention="transformer")


def test_discriminators_one_logit_per_image(tiny):
    D = build_discriminators(tiny)
    logits = D([torch.randn(5, 3, 16, 16), torch.randn(5, 3, 32, 32)])
    assert [l.shape for l in logits] == [(5,), (5,)]


def test_sample_is_seeded_and_uses_bank(tiny):
    G = build_generator(tiny).eval()
    G.meta_bank = torch.randn(4, 512)
    a, b, c = G.sample(6, seed=3), G.sample(6, seed=3), G.sample(6, seed=4)
    assert a.shape == (6, 3, 32, 32)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_minibatch_stddev_feature():
    same = torch.randn(1, 5, 4, 4).repeat(4, 1, 1, 1)
    out = minibatch_stddev(same, group=4)
    assert out.shape == (4, 6, 4, 4) and out[:, 5].max() < 1e-3          # identical samples: no spread
    varied = minibatch_stddev(torch.randn(6, 5, 4, 4), group=4)          # 6 % 4 != 0: groups of 3
    assert varied.shape == (6, 6, 4, 4) and varied[:, 5].min() > 0.5


def test_self_attention_matches_sagan_formula():
    """o_j = sum_i softmax_i(q_j . k_i) v_i over 2x2-max-pooled keys/values; y = x + gamma * W_o o."""
    from lrgan_edge.self_attention import SelfAttention
    sa = SelfAttention(16).double()
    torch.nn.init.constant_(sa.gamma, 0.7)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    q = torch.einsum("oc,bchw->bohw", sa.query.weight[:, :, 0, 0], x).flatten(2)          # (B, 2, 64)
    pool = torch.nn.functional.max_pool2d
    k = pool(torch.einsum("oc,bchw->bohw", sa.key.weight[:, :, 0, 0], x), 2).flatten(2)    # (B, 2, 16)
    v = pool(torch.einsum("oc,bchw->bohw", sa.value.weight[:, :, 0, 0], x), 2).flatten(2)  # (B, 8, 16)
    expected = torch.empty(2, 8, 64, dtype=torch.float64)
    for b in range(2):
        for j in range(64):
            weights = torch.softmax(q[b, :, j] @ k[b], dim=0)                                 # (16,)
            expected[b, :, j] = (v[b] * weights).sum(dim=1)
    y = x + 0.7 * torch.einsum("oc,bcn->bon", sa.out.weight[:, :, 0, 0], expected).view(2, 16, 8, 8)
    torch.testing.assert_close(sa(x), y)


def test_sa_ablation_replaces_the_lrm(tiny):
    from lrgan_edge.self_attention import SelfAttention
    G = build_generator(with_model(tiny, attention="sa"))
    kinds = [type(m) for m in G.modules()]
    assert SelfAttention in kinds and LongRangeModule not in kinds
    assert G(torch.randn(2, G.z_dim), torch.randn(2, 512)).shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError, match="attention='transformer'"):
        ModelConfig(attention="transformer")


def test_residual_ablation_is_a_local_block_the_size_of_the_lrm():
    from lrgan_edge.blocks import BottleneckResBlock
    lrm_g = build_generator(PRESETS["paper-ffhq"])
    res_g = build_generator(with_model(PRESETS["paper-ffhq"], attention="residual"))
    [block] = [m for m in res_g.modules() if isinstance(m, BottleneckResBlock)]
    [lrm] = [m for m in lrm_g.modules() if isinstance(m, LongRangeModule)]
    assert abs(count_parameters(block) / count_parameters(lrm) - 1) < 0.05
    assert not any(isinstance(m, LongRangeModule) for m in res_g.modules())
    assert [m.kernel_size for m in block.modules() if isinstance(m, torch.nn.Conv2d)] == [(3, 3), (1, 1)]
    assert block(torch.randn(2, 64, 32, 32)).shape == (2, 64, 32, 32)

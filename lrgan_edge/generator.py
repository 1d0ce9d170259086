"""The multi-stage generator (paper §3.1, Fig. 2a; DESIGN §4).

Stage 1 maps [z ; projected metadata] to a 4x4 map and upsamples it to the first stage's
resolution, with the LRM after the feature map of `lrm_resolution`. Each later stage runs
residual blocks and one upsampling block on the previous stage's hidden features. Every stage
emits an image; inference and export need only the last.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import GLU, BottleneckResBlock, ResBlock, ToRGB, UpBlock
from .config import ModelConfig
from .lrm import LongRangeModule
from .self_attention import SelfAttention


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c4 = cfg.g_channels_at(4)
        self.meta_proj = nn.Linear(cfg.meta_dim, cfg.meta_proj_dim) if cfg.meta_proj_dim else None
        in_dim = cfg.z_dim + (cfg.meta_proj_dim or cfg.meta_dim)
        self.fc = nn.Sequential(nn.Linear(in_dim, 2 * c4 * 16), GLU())   # GLU halves to c4 * 16

        self.stages = nn.ModuleList()
        res, ch = 4, c4
        stage1: list[nn.Module] = [self._maybe_attention(res, ch)]
        while res < cfg.base_resolution:
            res, out = res * 2, cfg.g_channels_at(res * 2)
            stage1 += [UpBlock(ch, out), self._maybe_attention(res, out)]
            ch = out
        self.stages.append(nn.Sequential(*[m for m in stage1 if m is not None]))
        for _ in range(1, cfg.num_stages):
            res = res * 2
            blocks = [ResBlock(ch) for _ in range(cfg.num_res_blocks)] + [UpBlock(ch, ch), self._maybe_attention(res, ch)]
            self.stages.append(nn.Sequential(*[m for m in blocks if m is not None]))
        self.to_rgb = nn.ModuleList(ToRGB(ch) for _ in range(cfg.num_stages))   # every stage ends at width ch
        self.meta_bank: torch.Tensor | None = None   # [K, meta_dim] rows for sample(); set by training/loading
        self.metadata_source = "none"                # reported by every output that depends on it

    def _maybe_attention(self, res: int, ch: int) -> nn.Module | None:
        """The LRM (or, for the ablation, what replaces it) after the feature map at `lrm_resolution`."""
        cfg = self.cfg
        if res != cfg.lrm_resolution or cfg.attention == "none":
            return None
        if cfg.attention == "sa":
            return SelfAttention(ch)
        if cfg.attention == "residual":
            return BottleneckResBlock(ch)
        return LongRangeModule(ch, res, res, cfg.lrm_qk_channels, cfg.lrm_combine, cfg.lrm_weight_std)

    # What an exporter needs to know (DESIGN §7).
    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    @property
    def meta_dim(self) -> int:
        return self.cfg.meta_dim

    @property
    def img_resolution(self) -> int:
        return self.cfg.resolution

    def set_fast_attention(self, enabled: bool) -> None:
        """Training fast path for every LRM; export and parity checks use the plain path."""
        for m in self.modules():
            if isinstance(m, LongRangeModule):
                m.fast = enabled

    def forward_stages(self, z: torch.Tensor, meta: torch.Tensor, num_stages: int | None = None) -> list[torch.Tensor]:
        """Images of every stage (or of the first `num_stages`), each [B, 3, R_k, R_k] in [-1, 1]."""
        m = self.meta_proj(meta) if self.meta_proj is not None else meta        # (B, meta_proj_dim)
        h = self.fc(torch.cat([z, m], dim=1)).view(z.shape[0], -1, 4, 4)         # (B, C4, 4, 4)
        images = []
        for stage, to_rgb in list(zip(self.stages, self.to_rgb))[:num_stages]:
            h = stage(h)                                                         # (B, C_k, R_k, R_k)
            images.append(to_rgb(h))
        return images

    def forward(self, z: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        """The final stage's image, [B, 3, R, R] in [-1, 1]."""
        return self.forward_stages(z, meta)[-1]

    def sample_inputs(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise [n, z_dim] and metadata rows [n, meta_dim] drawn from the meta bank, both from `seed`.

        Without a bank (an untrained generator) the metadata is zeros, as in the "w/o Meta" ablation.
        """
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=gen)
        if self.meta_bank is not None and len(self.meta_bank):
            meta = self.meta_bank[torch.randint(len(self.meta_bank), (n,), generator=gen)].float()
        else:
            meta = torch.zeros(n, self.meta_dim)
        return z, meta

    @torch.no_grad()
    def sample(self, n: int = 16, seed: int = 0, device: torch.device | str | None = None,
               all_stages: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """n final-stage images (or every stage's, with `all_stages`) from `sample_inputs(n, seed)`."""
        device = device or next(self.parameters()).device
        z, meta = self.sample_inputs(n, seed)
        stages = self.forward_stages(z.to(device), meta.to(device))
        return stages if all_stages else stages[-1]


def build_generator(cfg) -> Generator:
    """An untrained generator from a preset (RunConfig) or a ModelConfig."""
    return Generator(getattr(cfg, "model", cfg))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

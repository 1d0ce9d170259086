"""Model and training configuration: frozen dataclasses, the preset table, overrides.

Every run writes its resolved config beside its checkpoint, so a checkpoint alone rebuilds
its model. Unknown keys are rejected with the list of known ones.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

CONFIG_FORMAT_VERSION = 1
ATTENTION_KINDS = ("lrm", "none", "sa", "residual")
COMBINE_KINDS = ("hadamard", "matmul")


def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of generator and discriminators (DESIGN §3-§4)."""

    resolution: int = 256          # final output size; stage k emits resolution / 2**(stages-k)
    num_stages: int = 3            # 64 -> 128 -> 256 in the paper
    z_dim: int = 100               # noise dimension, N(0, 1)
    meta_dim: int = 512            # VGG-16 relu5_3 global feature size (DESIGN §6)
    meta_proj_dim: int = 128       # metadata projected before the first linear layer: keeps G light
    g_channels_4x4: int = 512      # generator width at 4x4; halves at every upsampling (AttnGAN lineage)
    g_min_channels: int = 32       # floor of that halving; also the width of stages 2..K
    num_res_blocks: int = 2        # residual blocks at the start of stages 2..K
    attention: str = "lrm"         # "lrm" (the paper); ablations: "none" (w/o LRM), "sa" (w/ SA), "residual" (w/ Residual)
    lrm_resolution: int = 32       # feature map the LRM follows: 32 (FFHQ) or 64 (CUB/ImageNet)
    lrm_qk_channels: int | None = None  # query/key width of the spatial LRM; None -> max(C // 8, 1)
    lrm_combine: str = "hadamard"  # "matmul" = the literal text reading, for study only (DESIGN §3)
    lrm_weight_std: float = 1.0    # w, c ~ N(0, std^2); the paper's 1.0; 0 starts the LRM as the identity (study)
    d_base_channels: int = 32      # discriminator width at full stage resolution; doubles per downsampling
    d_max_channels: int = 384      # cap of that doubling (32 -> 384 puts NoP-D at 7.6 M, as in the paper)
    d_mbstd_group: int = 0         # >0: PGGAN minibatch-stddev feature over groups of this size (not in the paper)

    def __post_init__(self) -> None:
        if not _is_pow2(self.resolution) or self.resolution < 8:
            raise ConfigError(f"resolution={self.resolution}: must be a power of two >= 8")
        if self.num_stages < 1:
            raise ConfigError(f"num_stages={self.num_stages}: must be >= 1")
        if self.base_resolution < 8:
            raise ConfigError(
                f"resolution={self.resolution} with num_stages={self.num_stages} gives a first stage of "
                f"{self.base_resolution}x{self.base_resolution}; use fewer stages or a larger resolution (first stage >= 8)")
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError(f"attention={self.attention!r}: known kinds are {', '.join(ATTENTION_KINDS)}")
        if self.lrm_combine not in COMBINE_KINDS:
            raise ConfigError(f"lrm_combine={self.lrm_combine!r}: known kinds are {', '.join(COMBINE_KINDS)}")
        if self.attention != "none" and self.lrm_resolution not in self.feature_resolutions:
            raise ConfigError(
                f"lrm_resolution={self.lrm_resolution}: the generator has feature maps at "
                f"{', '.join(map(str, self.feature_resolutions))}")
        for name in ("z_dim", "meta_dim", "g_channels_4x4", "g_min_channels", "d_base_channels", "d_max_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.lrm_weight_std < 0:
            raise ConfigError(f"lrm_weight_std={self.lrm_weight_std}: must be >= 0")
        if self.meta_proj_dim < 0 or self.num_res_blocks < 0 or self.d_mbstd_group < 0:
            raise ConfigError("meta_proj_dim, num_res_blocks and d_mbstd_group must be >= 0")

    @property
    def base_resolution(self) -> int:
        return self.resolution >> (self.num_stages - 1)

    @property
    def stage_resolutions(self) -> tuple[int, ...]:
        return tuple(self.base_resolution << k for k in range(self.num_stages))

    @property
    def feature_resolutions(self) -> tuple[int, ...]:
        """Resolutions of the generator's hidden feature maps (4x4 up to the final size)."""
        return tuple(4 << k for k in range((self.resolution // 4).bit_length()))

    def g_channels_at(self, res: int) -> int:
        """Generator width of the feature map at `res`: halves per upsampling down to the floor;
        stages 2..K keep the first stage's final width (AttnGAN's NEXT_STAGE_G)."""
        res = min(res, self.base_resolution)
        return max(self.g_channels_4x4 * 4 // res, self.g_min_channels)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a training run (DESIGN §5)."""

    steps: int = 100_000           # generator updates in total
    max_train_s: float = 0.0       # >0: also stop once the training steps have taken this many seconds (equal-time studies)
    batch_size: int = 16           # global batch (split across ranks under DDP)
    lr_g: float = 2e-4             # Adam, paper §4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    color_lambda_mean: float = 1.0   # λ1 of Eq. 1
    color_lambda_cov: float = 5.0    # λ2 of Eq. 1
    color_weight: float = 50.0       # λ3 of Eq. 4
    r1_gamma: float = 0.0          # >0: R1 penalty gamma/2 E|grad D(real)|^2 on every stage (not in the paper)
    r1_every: int = 4              # lazy R1: apply it every this many steps, scaled up to match
    ema_half_life_images: int = 10_000  # EMA of G: weight halves every this many images (StyleGAN-style)
    ema_start_step: int = 0          # EMA tracks G exactly before this step
    metadata: str = "imagenet"     # "imagenet", "random-init" (weight-free, for tests/offline), "none" (w/o Meta), or a weights file
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    sample_grid: int = 16          # images in each progress grid
    eval_every: int = 0            # >0: FID/KID of the EMA generator every this many steps (metrics.jsonl)
    eval_num: int = 1000           # images per side of that evaluation
    meta_bank_size: int = 256      # metadata rows kept with the checkpoint for sampling/export
    fast_attention: bool = True    # scaled_dot_product_attention in training (proven equal by a test)
    amp: bool = True               # CUDA only; CPU trains in plain fp32
    channels_last: bool = True     # CUDA only

    def __post_init__(self) -> None:
        if self.max_train_s < 0:
            raise ConfigError(f"max_train_s={self.max_train_s}: must be >= 0 (0 = no time limit)")
        if self.r1_gamma < 0:
            raise ConfigError(f"r1_gamma={self.r1_gamma}: must be >= 0")
        if self.eval_every < 0 or self.eval_num < 2:
            raise ConfigError(f"eval_every={self.eval_every}, eval_num={self.eval_num}: need eval_every >= 0 and eval_num >= 2")
        for name in ("steps", "batch_size", "r1_every", "log_every", "sample_every", "checkpoint_every", "sample_grid", "meta_bank_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ConfigError("lr_g and lr_d must be > 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError("beta1 and beta2 must be in [0, 1)")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        from . import __version__
        return {"format_version": CONFIG_FORMAT_VERSION, "package_version": __version__,
                "preset": self.preset, "model": dataclasses.asdict(self.model),
                "train": dataclasses.asdict(self.train)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        version = d.get("format_version")
        if version != CONFIG_FORMAT_VERSION:
            raise ConfigError(f"config format_version={version!r}: this lrgan-edge reads version {CONFIG_FORMAT_VERSION}")
        return cls(model=_build(ModelConfig, d.get("model", {})), train=_build(TrainConfig, d.get("train", {})),
                   preset=d.get("preset", "custom"))

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """Apply `{"model.x": v, "train.y": v}` or bare `{"x": v}` keys, checking each key exists."""
        model, train = {}, {}
        model_keys = {f.name for f in dataclasses.fields(ModelConfig)}
        train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
        for key, value in overrides.items():
            section, _, name = key.rpartition(".")
            if section in ("", "model") and name in model_keys:
                model[name] = _coerce(ModelConfig, name, value)
            elif section in ("", "train") and name in train_keys:
                train[name] = _coerce(TrainConfig, name, value)
            else:
                known = sorted(f"model.{k}" for k in model_keys) + sorted(f"train.{k}" for k in train_keys)
                raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known)}")
        return dataclasses.replace(self, model=dataclasses.replace(self.model, **model),
                                   train=dataclasses.replace(self.train, **train))


def _build(cls, values: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    return cls(**values)


def _coerce(cls, name: str, value: Any) -> Any:
    """Turn a command-line string into the field's type (int, float, bool, str or None)."""
    if not isinstance(value, str):
        return value
    default = next(f for f in dataclasses.fields(cls) if f.name == name).default
    if value.lower() in ("none", "null") and default is None:
        return None
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(default, int) or (default is None):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a {type(default).__name__}") from None
    return value


# One table of presets. NoP-G / NoP-D of the paper presets are checked by tests (±10 % of 7.0 M / 7.6 M).
PRESETS: dict[str, RunConfig] = {
    "paper-ffhq": RunConfig(preset="paper-ffhq", model=ModelConfig(lrm_resolution=32)),
    "paper-cub": RunConfig(preset="paper-cub", model=ModelConfig(lrm_resolution=64)),
    # Small enough to learn the synthetic long-range data visibly in minutes on 2 CPU cores. The
    # discriminator is wide relative to the generator: with a narrower one (16 -> 128 channels)
    # the generator collapsed to one image within the demo's budget.
    "demo": RunConfig(
        preset="demo",
        model=ModelConfig(resolution=32, num_stages=2, z_dim=64, meta_proj_dim=32, g_channels_4x4=128,
                          g_min_channels=16, num_res_blocks=1, lrm_resolution=16, d_base_channels=64,
                          d_max_channels=256),
        train=TrainConfig(steps=1600, batch_size=32, metadata="random-init", ema_half_life_images=1000,
                          sample_every=200, checkpoint_every=400, log_every=20, meta_bank_size=64)),
    # For tests: seconds per step on a laptop CPU.
    "tiny": RunConfig(
        preset="tiny",
        model=ModelConfig(resolution=32, num_stages=2, z_dim=16, meta_proj_dim=8, g_channels_4x4=32,
                          g_min_channels=8, num_res_blocks=1, lrm_resolution=8, d_base_channels=8,
                          d_max_channels=16),
        train=TrainConfig(steps=4, batch_size=4, metadata="random-init", ema_half_life_images=64,
                          sample_every=2, checkpoint_every=2, log_every=1, sample_grid=4, meta_bank_size=8)),
}


def get_preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None

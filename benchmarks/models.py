"""What the bench measures: our generator, the paper's "w/ SA" ablation, and the SAGAN / PGGAN baselines.

A `ModelSpec` is plain data, so a benchmark worker process rebuilds exactly the model the parent
counted and exported (random weights come from a fixed seed). Every built model answers what the
exporters ask of a module: `input_names`, `input_shapes(batch)`, `example_inputs(batch, seed)`,
`resolution`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from lrgan_edge.checkpoint import load_generator, read_checkpoint
from lrgan_edge.config import get_preset
from lrgan_edge.discriminator import build_discriminators
from lrgan_edge.errors import ConfigError
from lrgan_edge.export.common import ExportGenerator
from lrgan_edge.generator import build_generator, count_parameters

from .baselines import BASELINES, build_baseline

SEED = 0                                           # random weights of everything not loaded from a run
BASELINE_CHOICES = ("sa", *BASELINES)              # what --baselines accepts
LABELS = {"lrgan": "Ours", "lrgan-sa": "Ours w/ SA", "sagan": "SAGAN", "pggan": "PGGAN"}


@dataclass(frozen=True)
class ModelSpec:
    name: str                      # "lrgan", "lrgan-sa", "sagan", "pggan"
    kind: str                      # "lrgan" (ours, any attention) or a baseline name
    resolution: int                # output size; baselines are built at our model's size
    run_dir: str | None = None     # ours: weights from this run (EMA) ...
    preset: str | None = None      # ... or random weights of this preset
    attention: str = "lrm"         # ours: "lrm", or "sa" for the paper's "w/ SA" ablation

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class NoiseGenerator(nn.Module):
    """A baseline generator z -> image, with the interface the exporters and the bench use."""

    input_names = ("z",)

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.z_dim, self.resolution = net.z_dim, net.resolution
        self.eval()

    def input_shapes(self, batch: int | str) -> list[list[int | str]]:
        return [[batch, self.z_dim]]

    def example_inputs(self, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor]:
        return (torch.randn(batch, self.z_dim, generator=torch.Generator().manual_seed(seed)),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def model_specs(run_dir: str | None, preset: str | None, baselines: list[str]) -> list[ModelSpec]:
    """Ours (from a run or a preset) first, then each requested baseline at our output size."""
    if run_dir is not None:
        cfg, *_ = read_checkpoint(run_dir)            # raises a one-line CheckpointError when there is none
        run_dir = str(run_dir)
    else:
        cfg = get_preset(preset or "paper-ffhq")
    unknown = [b for b in baselines if b not in BASELINE_CHOICES]
    if unknown:
        raise ConfigError(f"unknown baseline {unknown[0]!r}; known: {', '.join(BASELINE_CHOICES)} (or none)")
    res = cfg.model.resolution
    specs = [ModelSpec("lrgan", "lrgan", res, run_dir=run_dir, preset=cfg.preset, attention=cfg.model.attention)]
    for b in baselines:
        if b == "sa":
            specs.append(ModelSpec("lrgan-sa", "lrgan", res, preset=cfg.preset, attention="sa"))
        else:
            specs.append(ModelSpec(b, b, res))
    return specs


def _our_generator(spec: ModelSpec):
    if spec.run_dir is not None:
        return load_generator(spec.run_dir)
    cfg = get_preset(spec.preset)
    model = dataclasses.replace(cfg.model, attention=spec.attention)
    torch.manual_seed(SEED)
    return build_generator(model).eval()


FORMS = ("eager", "native", "delegable")


def build_model(spec: ModelSpec, form: str) -> nn.Module:
    """The module a runtime runs. For ours: `eager` = the training forms with the SDPA attention path;
    `native` = the training forms with the plain matmul/softmax LRM (what the ONNX export holds);
    `delegable` = the export-friendly rewrites the .pte and .mlpackage hold. Baselines have one form."""
    if form not in FORMS:
        raise ValueError(f"form {form!r}: one of {FORMS}")
    if spec.kind == "lrgan":
        G = _our_generator(spec)
        module = ExportGenerator(G, friendly=form == "delegable")
        if form == "eager":
            G.set_fast_attention(True)
        return module
    torch.manual_seed(SEED)
    G, _ = build_baseline(spec.kind, spec.resolution)
    return NoiseGenerator(G)


def parameter_counts(spec: ModelSpec) -> tuple[int, int]:
    """(NoP-G, NoP-D). Ours counts every stage's discriminator, as training holds them all."""
    if spec.kind == "lrgan":
        G = _our_generator(spec)
        return count_parameters(G), count_parameters(build_discriminators(G.cfg))
    torch.manual_seed(SEED)
    G, D = build_baseline(spec.kind, spec.resolution)
    return count_parameters(G), count_parameters(D)



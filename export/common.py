"""What every export target shares: the export wrapper, example inputs, parity, the manifest.

The wrapper is the generator's final stage (or a lower stage, `resolution`), with static
spatial shapes, inputs `z: [B, z_dim]` and `meta: [B, 512]`, and the LRM on its plain
matmul/softmax path. `manifest.json` is the single source of truth for apps and benchmarks.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrgan_edge import __version__
from lrgan_edge.errors import ExportError
from lrgan_edge.generator import Generator

TARGETS = ("onnx", "executorch", "coreml")
MANIFEST_NAME = "manifest.json"
META_BANK_NAME = "meta_bank.bin"
OUTPUT_RANGE = (-1.0, 1.0)


class ExportGenerator(nn.Module):
    """z, meta -> image of one stage: what is exported."""

    def __init__(self, generator: Generator, resolution: int | None = None, friendly: bool = True) -> None:
        super().__init__()
        stages = generator.cfg.stage_resolutions
        resolution = resolution or stages[-1]
        if resolution not in stages:
            raise ExportError(f"--resolution {resolution}: this model produces {', '.join(map(str, stages))}")
        generator.set_fast_attention(False)          # export always takes the plain path (DESIGN §3)
        if friendly:                                 # delegable forms of IN, GLU and upsample+conv
            from .friendly import export_friendly
            generator = export_friendly(generator)
        self.generator = generator.eval()
        self.num_stages = stages.index(resolution) + 1
        self.resolution = resolution
        self.eval()

    def forward(self, z: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.generator.forward_stages(z, meta, self.num_stages)[-1]

    # What every exporter asks of the module it exports (baselines in the bench answer the same).
    input_names = ("z", "meta")

    def input_shapes(self, batch: int | str) -> list[list[int | str]]:
        return [[batch, self.generator.z_dim], [batch, self.generator.meta_dim]]

    def example_inputs(self, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise and metadata rows from the bank (zeros without one), as an app would feed them."""
        return self.generator.sample_inputs(batch, seed)


@dataclass
class Artifact:
    file: str
    target: str
    dtype: str
    parity: dict[str, Any]
    extra: dict[str, Any]


def parity_report(reference: torch.Tensor, candidate, tolerance: float, runtime: str) -> dict[str, Any]:
    """Max / mean absolute difference and PSNR (images in [-1, 1]) against eager PyTorch fp32."""
    cand = torch.as_tensor(np.asarray(candidate), dtype=torch.float32)
    if cand.shape != reference.shape:
        return {"runtime": runtime, "passed": False, "tolerance": tolerance,
                "error": f"output shape {tuple(cand.shape)} != {tuple(reference.shape)}"}
    diff = (cand - reference.float()).abs()
    mse = float(diff.square().mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)     # peak-to-peak range 2
    max_abs = float(diff.max())
    return {"runtime": runtime, "max_abs_diff": max_abs, "mean_abs_diff": float(diff.mean()),
            "psnr_db": round(psnr, 2) if math.isfinite(psnr) else None, "tolerance": tolerance,
            "passed": max_abs <= tolerance}


def io_description(module: nn.Module, batch: int | str) -> dict[str, Any]:
    """Input and output names, shapes and dtypes of an exported module (any with input_names / input_shapes)."""
    return {"inputs": [{"name": n, "shape": shape, "dtype": "float32"}
                       for n, shape in zip(module.input_names, module.input_shapes(batch))],
            "output": {"name": "image", "shape": [batch, 3, module.resolution, module.resolution],
                       "dtype": "float32", "range": list(OUTPUT_RANGE), "layout": "NCHW"}}


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an out dir holding another export; with `overwrite`, remove that export's files."""
    manifest = out / MANIFEST_NAME
    if manifest.exists():
        if not overwrite:
            raise ExportError(f"--out {out} already holds an export (manifest.json); pass --overwrite to replace it "
                              f"or choose another directory")
        old = [a["file"] for a in json.loads(manifest.read_text()).get("artifacts", [])] + [META_BANK_NAME, MANIFEST_NAME]
        for name in old:
            path = out / Path(name).name                     # only files directly in the export dir
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def write_meta_bank(out: Path, bank: torch.Tensor | None, meta_dim: int) -> dict[str, Any]:
    """meta_bank.bin: little-endian float32, row-major, shape [K, 512] (DESIGN §7)."""
    rows = bank.float().cpu().numpy() if bank is not None else np.zeros((1, meta_dim), np.float32)
    (out / META_BANK_NAME).write_bytes(rows.astype("<f4", copy=False).tobytes(order="C"))
    return {"file": META_BANK_NAME, "shape": list(rows.shape), "dtype": "float32", "byte_order": "little",
            "layout": "row-major"}


MANIFEST_SCHEMA_VERSION = 1
MANIFEST_SCHEMA = Path(__file__).with_name("manifest.schema.json")


def gflops_per_image(module: nn.Module) -> float:
    """Multiply-adds x 2 of one image (convolutions, matmuls, attention), by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*module.example_inputs(batch=1))
    return counter.get_total_flops() / 1e9


def model_description(G: Generator, preset: str, native: ExportGenerator, delegable: ExportGenerator) -> dict[str, Any]:
    """What an app or a benchmark report needs to know about the model behind the artifacts."""
    from lrgan_edge.discriminator import build_discriminators
    from lrgan_edge.generator import count_parameters
    return {"preset": preset, "z_dim": G.z_dim, "meta_dim": G.meta_dim, "nop_g": count_parameters(G),
            "nop_d": count_parameters(build_discriminators(G.cfg)),
            "gflops_per_image": round(gflops_per_image(native), 4),
            "gflops_per_image_delegable": round(gflops_per_image(delegable), 4)}


def write_manifest(out: Path, module: ExportGenerator, name: str, metadata_source: str,
                   meta_bank: dict[str, Any], artifacts: list[Artifact], model: dict[str, Any]) -> Path:
    path = out / MANIFEST_NAME
    existing = {}
    for art in artifacts:
        extra = dict(art.extra)
        existing[art.file] = {"file": art.file, "target": art.target, "dtype": art.dtype,
                              **io_description(module, extra.pop("batch", 1)), "parity": art.parity,
                              **extra, "package_version": __version__}
    manifest = {"schema_version": MANIFEST_SCHEMA_VERSION, "name": name, "package_version": __version__,
                "resolution": module.resolution, "metadata_source": metadata_source, "model": model, "meta_bank": meta_bank,
                "artifacts": sorted(existing.values(), key=lambda a: a["file"])}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path

"""`lrgan-edge export`: a checkpoint's generator (EMA weights) to every requested target."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from lrgan_edge.checkpoint import load_generator, read_checkpoint
from lrgan_edge.errors import ExportError

from .common import TARGETS, Artifact, ExportGenerator, prepare_out_dir, write_manifest, write_meta_bank


def resolve_targets(target: str) -> list[str]:
    if target == "all":
        return list(TARGETS)
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; known targets: {', '.join(TARGETS)}, all")
    return [target]


def artifact_exporters(targets: list[str], quantize: str | None, coreml_precision: str):
    """(target, function(module, out, name) -> Artifact, friendly) for every artifact to write, in order;
    `friendly`: whether the target exports the delegable rewrites or the training forms."""
    jobs = []
    for target in targets:
        if target == "onnx":
            from . import onnx
            jobs.append((target, onnx.export_onnx, onnx.FRIENDLY))
        elif target == "executorch":
            from . import executorch
            jobs.append((target, executorch.export_executorch, executorch.FRIENDLY))
            if quantize:
                jobs.append((target, partial(executorch.export_executorch, quantize=quantize), executorch.FRIENDLY))
        else:
            from . import coreml
            jobs.append((target, partial(coreml.export_coreml, precision=coreml_precision), coreml.FRIENDLY))
    return jobs


def describe_parity(parity: dict) -> str:
    status = {True: "ok", False: "FAILED", None: "not run"}[parity["passed"]]
    if parity.get("skipped"):
        return f"parity {status}: {parity['skipped']}"
    if "min_psnr_db" in parity:
        return f"parity {status} (PSNR {parity['psnr_db']} dB vs fp32 PyTorch, goal >= {parity['min_psnr_db']:.0f} dB)"
    return f"parity {status} (max |diff| {parity['max_abs_diff']:.3g}, tolerance {parity['tolerance']:.0e})"


def export_run(run_dir: str | Path, target: str, out: str | Path, resolution: int | None = None,
               overwrite: bool = False, quantize: str | None = None, coreml_precision: str = "float16",
               on_message=print) -> tuple[Path, list[Artifact]]:
    """Export, check every artifact against eager PyTorch, write manifest.json and meta_bank.bin.

    Raises ExportError after writing the manifest (failed artifacts marked) when parity fails.
    """
    targets = resolve_targets(target)
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize}: use int8 (or leave it out for fp32)")
    jobs = artifact_exporters(targets, quantize, coreml_precision)
    cfg, *_ = read_checkpoint(run_dir)
    G = load_generator(run_dir)
    modules = {friendly: ExportGenerator(G, resolution, friendly) for friendly in {f for *_, f in jobs} | {True}}
    module = modules[True]
    name = cfg.preset if module.resolution == G.img_resolution else f"{cfg.preset}_{module.resolution}"
    out = Path(out)
    prepare_out_dir(out, overwrite)
    artifacts = []
    for target_name, export, friendly in jobs:
        art = export(modules[friendly], out, name)
        on_message(f"{target_name}: {art.file}  {describe_parity(art.parity)}")
        artifacts.append(art)
    bank = write_meta_bank(out, G.meta_bank, G.meta_dim)
    manifest = write_manifest(out, module, name, G.metadata_source, bank, artifacts)
    failed = [a for a in artifacts if a.parity["passed"] is False]
    if failed:
        detail = "; ".join(f"{a.file}: {describe_parity(a.parity)}" for a in failed)
        raise ExportError(f"export drifts from PyTorch ({detail}); artifacts kept and marked failed in {manifest}")
    return manifest, artifacts

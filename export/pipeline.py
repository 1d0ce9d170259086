"""`lrgan-edge export`: a checkpoint's generator (EMA weights) to every requested target."""

from __future__ import annotations

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


def exporter(target: str):
    if target == "onnx":
        from .onnx import export_onnx
        return export_onnx
    if target == "executorch":
        from .executorch import export_executorch
        return export_executorch
    from .coreml import export_coreml
    return export_coreml


def export_run(run_dir: str | Path, target: str, out: str | Path, resolution: int | None = None,
               overwrite: bool = False, on_message=print) -> tuple[Path, list[Artifact]]:
    """Export, check every artifact against eager PyTorch, write manifest.json and meta_bank.bin.

    Raises ExportError after writing the manifest (failed artifacts marked) when parity fails.
    """
    targets = resolve_targets(target)
    exporters = [(t, exporter(t)) for t in targets]            # fail on an unknown/missing target first
    cfg, *_ = read_checkpoint(run_dir)
    G = load_generator(run_dir)
    module = ExportGenerator(G, resolution)
    name = cfg.preset if module.resolution == G.img_resolution else f"{cfg.preset}_{module.resolution}"
    out = Path(out)
    prepare_out_dir(out, overwrite)
    artifacts = []
    for t, export in exporters:
        art = export(module, out, name)
        status = {True: "ok", False: "FAILED", None: "not run"}[art.parity["passed"]]
        on_message(f"{t}: {art.file}  parity {status} (max |diff| {art.parity.get('max_abs_diff', float('nan')):.2e}, "
                   f"tolerance {art.parity['tolerance']:.0e})")
        artifacts.append(art)
    bank = write_meta_bank(out, G.meta_bank, G.meta_dim)
    manifest = write_manifest(out, module, name, G.metadata_source, bank, artifacts)
    failed = [a for a in artifacts if a.parity["passed"] is False]
    if failed:
        detail = "; ".join(f"{a.file}: max |diff| {a.parity.get('max_abs_diff', float('nan')):.3g} > "
                           f"{a.parity['tolerance']:.0e}" for a in failed)
        raise ExportError(f"export drifts from PyTorch ({detail}); artifacts kept and marked failed in {manifest}")
    return manifest, artifacts

"""`lrgan-edge export`: a checkpoint's generator (EMA weights) to every requested target."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

from lrgan_edge.checkpoint import load_generator, read_checkpoint
from lrgan_edge.errors import ExportError

from .common import (MANIFEST_NAME, META_BANK_NAME, TARGETS, Artifact, ExportGenerator, model_description,
                     prepare_out_dir, write_manifest, write_meta_bank)


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
               android_assets: str | Path | None = None, on_message=print) -> tuple[Path, list[Artifact]]:
    """Export, check every artifact against eager PyTorch, write manifest.json and meta_bank.bin
    (and, with `android_assets`, copy what the Android app needs there).

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
    native = modules.get(False) or ExportGenerator(G, resolution, friendly=False)
    model = model_description(G, cfg.preset, native, module)
    manifest = write_manifest(out, module, name, G.metadata_source, bank, artifacts, model)
    failed = [a for a in artifacts if a.parity["passed"] is False]
    if failed:
        detail = "; ".join(f"{a.file}: {describe_parity(a.parity)}" for a in failed)
        raise ExportError(f"export drifts from PyTorch ({detail}); artifacts kept and marked failed in {manifest}"
                          + ("; nothing copied to --android-assets" if android_assets else ""))
    if android_assets:
        copied = copy_android_assets(out, Path(android_assets))
        on_message(f"android assets: {', '.join(copied)} in {android_assets}")
    return manifest, artifacts


def copy_android_assets(export_dir: Path, dest: Path) -> list[str]:
    """The .pte files, meta_bank.bin and a manifest listing just those .pte files, into an app's assets.

    Files of an earlier copy that the new manifest no longer lists are removed, so the APK carries
    only what the app can load.
    """
    manifest = json.loads((export_dir / MANIFEST_NAME).read_text())
    ptes = [a for a in manifest["artifacts"] if a["target"] == "executorch"]
    if not ptes:
        raise ExportError("--android-assets needs an ExecuTorch artifact; use --target executorch (or all)")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        old = dest / MANIFEST_NAME
        if old.is_file():
            for a in json.loads(old.read_text()).get("artifacts", []):
                (dest / Path(a["file"]).name).unlink(missing_ok=True)
        for name in [a["file"] for a in ptes] + [META_BANK_NAME]:
            shutil.copyfile(export_dir / name, dest / name)
        (dest / MANIFEST_NAME).write_text(json.dumps({**manifest, "artifacts": ptes}, indent=2) + "\n")
    except OSError as exc:
        raise ExportError(f"cannot write --android-assets {dest} ({exc.strerror or exc}); choose a writable folder") from None
    return [a["file"] for a in ptes] + [META_BANK_NAME, MANIFEST_NAME]

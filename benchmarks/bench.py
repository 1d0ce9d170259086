"""`lrgan-edge bench`: parameters, FLOPs and inference time (IT per 100 images) of our generator and
the baselines, on every runtime, side by side in one run.

Order of work: check the request; count parameters and FLOPs; measure this machine's fp32
matmul peak; export what the artifact runtimes need (each artifact checked against PyTorch);
then one worker process per (model, runtime) row; then goals, JSON, Markdown and a chart.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from lrgan_edge import __version__
from lrgan_edge.errors import ConfigError, ExportError
from lrgan_edge.export.common import gflops_per_image

from .models import ModelSpec, build_model, model_specs, parameter_counts
from .runtimes import RUNTIMES, Runtime, resolve_runtimes, unavailable_reason

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 100          # images per call in the batch measurement (the paper's IT: 100 images)
    images: int = 100              # images per timed pass
    repeats: int = 3               # timed passes; median with min / max
    warmup: int = 1                # untimed calls before timing (after the first, memory-probe call)
    single_images: int = 100       # images generated one at a time (the on-device case); 0 skips it
    single_repeats: int = 1        # passes of that
    threads: int = field(default_factory=lambda: len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for name in ("batch_size", "images", "repeats", "single_repeats", "threads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be a positive integer")
        for name in ("warmup", "single_images"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 0")


# ---------------------------------------------------------------- environment

def matmul_peak_gflops(device: str, dtype: torch.dtype = torch.float32, n: int | None = None, tries: int = 5) -> float:
    """Best achieved GFLOP/s of one large square matmul: the reference for 'fraction of peak'."""
    n = n or (2048 if device == "cpu" else 8192)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    a @ b
    sync()
    best = math.inf
    for _ in range(tries):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return round(2 * n**3 / best / 1e9, 1)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info(threads: int) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    versions = {"lrgan-edge": __version__, "python": platform.python_version()}
    for dist in ("torch", "onnxruntime", "executorch", "coremltools"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(), "threads": threads, "gpu": gpu, "versions": versions}


# ---------------------------------------------------------------- artifacts

def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def export_artifacts(spec: ModelSpec, kinds: set[str], out: Path, batch: int, on_message) -> dict[str, dict]:
    """Each artifact kind a runtime needs, exported in the form its target exports and checked against
    PyTorch: {kind: {single, batch, bytes, parity} | {error}}."""
    from lrgan_edge.export import coreml, executorch, onnx
    out.mkdir(parents=True, exist_ok=True)
    modules: dict[bool, torch.nn.Module] = {}
    done: dict[str, dict] = {}
    for kind in sorted(kinds):
        start = time.perf_counter()
        target = {"onnx": onnx, "pte-fp32": executorch, "pte-int8": executorch, "coreml": coreml}[kind]
        if target.FRIENDLY not in modules:
            modules[target.FRIENDLY] = build_model(spec, "delegable" if target.FRIENDLY else "native")
        module = modules[target.FRIENDLY]
        try:
            if kind == "onnx":
                art = onnx.export_onnx(module, out, spec.name)
                files = {"single": art.file, "batch": art.file}                     # dynamic batch
            elif kind.startswith("pte"):
                quantize = "int8" if kind == "pte-int8" else None
                art = executorch.export_executorch(module, out, spec.name, quantize=quantize, batch=1)
                big = executorch.export_executorch(module, out, spec.name, quantize=quantize,
                                                   batch=batch) if batch > 1 else art
                files = {"single": art.file, "batch": big.file}
            else:
                art = coreml.export_coreml(module, out, spec.name)
                files = {"single": art.file, "batch": art.file}
        except ExportError as exc:
            done[kind] = {"error": str(exc)}
            on_message(f"  {spec.name} {kind}: export failed: {exc}")
            continue
        done[kind] = {**{k: str(out / f) for k, f in files.items()}, "bytes": file_bytes(out / art.file),
                      "parity": art.parity}
        on_message(f"  {spec.name} {kind}: {art.file} ({done[kind]['bytes'] / 1e6:.1f} MB, "
                   f"parity {'ok' if art.parity['passed'] else art.parity['passed']}) in {time.perf_counter() - start:.0f} s")
    return done


# ---------------------------------------------------------------- rows

def run_worker(job: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"])}
    proc = subprocess.run([sys.executable, "-m", "lrgan_edge.benchmarks.worker"], input=json.dumps(job),
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"status": "error", "reason": f"worker exited {proc.returncode}: {lines[-1] if lines else 'no output'}"}
    last = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()][-1]
    return {"status": "ok", "reason": None, **json.loads(last)}


def base_row(spec: ModelSpec, rt: Runtime) -> dict:
    return {"model": spec.name, "label": spec.label, "runtime": rt.name, "device": rt.device,
            "precision": rt.precision, "note": rt.note, "status": "skipped", "reason": None, "artifact": None,
            "batch": None, "single": None, "memory": None, "gflops_per_image": None,
            "achieved_gflops_per_s": None, "peak_gflops_per_s": None, "fraction_of_peak": None}


def finish_row(row: dict, gflops: float, peaks: dict[str, float]) -> dict:
    if row["status"] != "ok":
        return row
    peak = peaks.get("cpu") if row["device"] == "cpu" else peaks.get(
        "cuda_fp32" if row["precision"] == "fp32" else "cuda_bf16")
    row["gflops_per_image"] = significant(gflops)
    achieved = gflops * 100 / row["batch"]["seconds_per_100"]["median"]
    row["achieved_gflops_per_s"] = significant(achieved)
    if peak:
        row["peak_gflops_per_s"], row["fraction_of_peak"] = peak, significant(achieved / peak)
    return row


def significant(x: float, digits: int = 4) -> float:
    """Rounded to significant digits, not decimals: a tiny model's 0.0004 of peak stays non-zero."""
    return float(f"{x:.{digits}g}")


# ---------------------------------------------------------------- the bench

def run_bench(out: str | Path, run_dir: str | Path | None = None, preset: str | None = None,
              runtimes: str | list[str] = "all", baselines: list[str] | None = None,
              settings: BenchSettings | None = None, command: str | None = None, on_message=print) -> dict[str, Path]:
    """Measure, write bench_{host}_{time}.json / .md / .png under `out`, return their paths."""
    settings = settings or BenchSettings()
    if run_dir is not None and preset is not None:
        raise ConfigError("give a run directory or --preset, not both")
    chosen = resolve_runtimes(runtimes)
    specs = model_specs(str(run_dir) if run_dir is not None else None, preset,
                        ["sa", "sagan", "pggan"] if baselines is None else baselines)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()

    skip = {rt.name: unavailable_reason(rt) for rt in chosen}
    for name, reason in skip.items():
        if reason:
            on_message(f"{name}: skipped ({reason})")
    runnable = [rt for rt in chosen if not skip[rt.name]]
    models, flops = describe_models(specs, on_message)
    peaks = matmul_peaks(runnable)
    on_message("fp32 matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))

    rows = []
    for spec in specs:
        kinds = {rt.artifact for rt in runnable if rt.artifact}
        if kinds:
            on_message(f"exporting {spec.label} ({', '.join(sorted(kinds))})")
        artifacts = export_artifacts(spec, kinds, out / "artifacts" / spec.name, settings.batch_size,
                                     on_message) if kinds else {}
        module = build_model(spec, "native")                   # what the worker feeds: input names and shapes
        inputs = {"input_names": list(module.input_names), "input_shapes": module.input_shapes(settings.batch_size)}
        for rt in chosen:
            row = measure_row(spec, rt, skip[rt.name], artifacts, inputs, settings, out)
            rows.append(finish_row(row, flops[spec.name, rt.form], peaks))
            on_message(describe_row(rows[-1]))
    # noisy neighbours only ever slow a matmul down: the best of a measurement before and after is the peak
    later = matmul_peaks(runnable)
    peaks = {k: max(v, later[k]) for k, v in peaks.items()}
    rows = [finish_row(row, flops[row["model"], RUNTIMES[row["runtime"]].form], peaks) for row in rows]

    report = {"schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": command, "host": host_info(settings.threads), "settings": vars(settings),
              "matmul_peak_gflops_per_s": peaks, "models": models, "rows": rows,
              "wall_s": round(time.perf_counter() - started, 1)}
    return write_report(report, out)


def describe_models(specs: list[ModelSpec], on_message) -> tuple[list[dict], dict[tuple[str, str], float]]:
    """Parameter counts and GFLOPs per image of every model, in every form a runtime runs."""
    models, flops = [], {}
    for spec in specs:
        nop_g, nop_d = parameter_counts(spec)
        for form in ("native", "delegable"):      # eager does the native form's work (SDPA or not)
            flops[spec.name, form] = gflops_per_image(build_model(spec, form))
        flops[spec.name, "eager"] = flops[spec.name, "native"]
        models.append({**spec.to_dict(), "label": spec.label, "nop_g": nop_g, "nop_d": nop_d,
                       "gflops_per_image": significant(flops[spec.name, "native"]),
                       "gflops_per_image_delegable": significant(flops[spec.name, "delegable"])})
        on_message(f"{spec.label}: NoP-G {nop_g / 1e6:.2f} M, NoP-D {nop_d / 1e6:.2f} M, "
                   f"{flops[spec.name, 'native']:.2f} GFLOPs per image")
    return models, flops


def matmul_peaks(runnable: list[Runtime]) -> dict[str, float]:
    peaks = {"cpu": matmul_peak_gflops("cpu")}
    if any(rt.device == "cuda" for rt in runnable):
        peaks.update(cuda_fp32=matmul_peak_gflops("cuda"), cuda_bf16=matmul_peak_gflops("cuda", torch.bfloat16))
    return peaks


def measure_row(spec: ModelSpec, rt: Runtime, skipped: str | None, artifacts: dict, inputs: dict,
                settings: BenchSettings, out: Path) -> dict:
    """One (model, runtime) row: skipped, failed at export, or measured by a worker process."""
    row = base_row(spec, rt)
    art = artifacts.get(rt.artifact) if rt.artifact else None
    if skipped:
        return {**row, "reason": skipped}
    if art is not None and "error" in art:
        return {**row, "status": "error", "reason": art["error"]}
    if art is not None:
        row["artifact"] = {"file": os.path.relpath(art["single"], out), "bytes": art["bytes"], "parity": art["parity"]}
    job = {"model": spec.to_dict(), "runtime": rt.name, "threads": settings.threads, **inputs,
           "artifacts": {k: art[k] for k in ("single", "batch")} if art else {},
           "batch_size": settings.batch_size, "images": settings.images, "repeats": settings.repeats,
           "warmup": settings.warmup, "single_images": settings.single_images,
           "single_repeats": settings.single_repeats}
    return {**row, **run_worker(job)}


def write_report(report: dict, out: Path) -> dict[str, Path]:
    from .report import compute_goals, write_chart, write_markdown
    report["goals"] = compute_goals(report)
    stem = f"bench_{socket.gethostname()}_{datetime.now():%Y%m%d-%H%M%S}"
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "chart": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, paths["markdown"], chart=paths["chart"].name)
    write_chart(report, paths["chart"])
    return paths


def merge_reports(paths: list[Path], out: str | Path, command: str | None = None) -> dict[str, Path]:
    """Several bench reports (say a desktop run and a phone's BenchmarkActivity) as one: the same
    models side by side, every row marked with the host that measured it, goals recomputed."""
    reports = []
    for path in map(Path, paths):
        try:
            report = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--merge {path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--merge {path} is not JSON ({exc}); pass a report written by lrgan-edge bench") from None
        if not isinstance(report, dict) or report.get("schema_version") != 1 or not {"models", "rows", "host"} <= set(report):
            raise ConfigError(f"--merge {path} is not an lrgan-edge bench report (schema_version 1); pass a bench JSON")
        reports.append(report)
    if len(reports) < 2:
        raise ConfigError("--merge needs at least two reports")
    models: dict[str, dict] = {}
    for report in reports:
        for m in report["models"]:
            seen = models.setdefault(m["name"], m)
            if seen["resolution"] != m["resolution"]:
                raise ConfigError(f"the reports measure {m['name']} at {seen['resolution']} and {m['resolution']} pixels; "
                                  f"merge reports of the same model")
    first = reports[0]
    merged = {**first, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
              "models": list(models.values()), "merged_from": [r["host"]["hostname"] for r in reports],
              "rows": [{**row, "host": row.get("host", r["host"]["hostname"])} for r in reports for row in r["rows"]],
              "wall_s": round(sum(r["wall_s"] for r in reports), 1)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_report(merged, out)


def describe_row(row: dict) -> str:
    head = f"{row['label']} on {row['runtime']}"
    if row["status"] != "ok":
        return f"{head}: {row['status']} ({row['reason']})"
    b = row["batch"]
    text = f"{head}: {b['seconds_per_100']['median']:.3f} s per 100 images (batch {b['batch_size']})"
    if row["single"]:
        text += f", batch 1: p50 {row['single']['latency_ms']['p50']:.1f} ms"
    return text

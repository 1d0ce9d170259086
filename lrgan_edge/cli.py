"""`lrgan-edge` command line: thin commands that parse, build a config and call the library.

Library errors (LrganError) become one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import ConfigError, LrganError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Lightweight Long-Range GAN: train, sample, export and benchmark for on-device generation.")
console = Console()
err_console = Console(stderr=True)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set lr_g=1e-4")
        out[key.strip()] = value.strip()
    return out


class ProgressReporter:
    """A rich progress bar per phase: metadata encoding, then training (step, losses, images/s)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, phase: str, total: int):
        if phase == "metadata":
            task = self.progress.add_task("encoding metadata", total=total, stats="")
            return lambda n: self.progress.advance(task, n)
        task = self.progress.add_task("training", total=total, stats="")

        def on_step(step: int, values: dict) -> None:
            stats = (f"D {values['loss_d']:.3f}  G {values['loss_g']:.3f}  colour {values['loss_color']:.4f}  "
                     f"{values['images_per_s']:.1f} img/s")
            self.progress.update(task, completed=step, stats=stats)
        return on_step


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), console=console)


@app.command()
def presets(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every preset with its parameter counts (NoP-G, NoP-D)."""
    from .config import PRESETS
    from .discriminator import build_discriminators
    from .generator import build_generator, count_parameters
    rows = []
    for name, cfg in PRESETS.items():
        m = cfg.model
        rows.append({"name": name, "resolution": m.resolution, "stages": list(m.stage_resolutions),
                     "lrm_resolution": m.lrm_resolution if m.attention == "lrm" else None,
                     "nop_g": count_parameters(build_generator(cfg)), "nop_d": count_parameters(build_discriminators(cfg))})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("preset", "stages", "LRM at", "NoP-G", "NoP-D")
    for r in rows:
        table.add_row(r["name"], " → ".join(map(str, r["stages"])), str(r["lrm_resolution"] or "-"),
                      f"{r['nop_g'] / 1e6:.2f} M", f"{r['nop_d'] / 1e6:.2f} M")
    console.print(table)


@app.command()
def train(
    data: Optional[str] = typer.Option(None, help="Image folder (recursive), a .zip of one, or synthetic:longrange[:COUNT[:SEED]]."),
    preset: Optional[str] = typer.Option(None, help="Model/training preset (see `lrgan-edge presets`); default paper-ffhq."),
    out: Optional[Path] = typer.Option(None, help="Run directory for config, checkpoints, samples and logs."),
    steps: Optional[int] = typer.Option(None, help="Total generator updates (extends a resumed run)."),
    batch_size: Optional[int] = typer.Option(None, help="Global batch size."),
    seed: Optional[int] = typer.Option(None, help="Random seed (weights, noise, data order)."),
    metadata: Optional[str] = typer.Option(None, help="imagenet, random-init (weight-free), none (w/o Meta), or a VGG-16 weights file."),
    sample_every: Optional[int] = typer.Option(None, help="Write a sample grid every N steps."),
    checkpoint_every: Optional[int] = typer.Option(None, help="Write a checkpoint every N steps."),
    eval_every: Optional[int] = typer.Option(None, help="FID/KID of the EMA generator every N steps (metrics.jsonl)."),
    eval_num: Optional[int] = typer.Option(None, help="Images per side of that evaluation (default 1000)."),
    inception_weights: Optional[Path] = typer.Option(None, help="Inception-v3 weights for --eval-every (default: torch hub cache)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this directory."),
    overwrite: bool = typer.Option(False, help="Start over in an --out that already holds a run."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    gpus: int = typer.Option(1, help="Train on K GPUs of this machine: starts torchrun with K processes (DDP)."),
    workers: int = typer.Option(4, help="Threads decoding images."),
    set_: list[str] = typer.Option([], "--set", help="Any config key: --set lr_g=1e-4 --set model.lrm_resolution=64."),
) -> None:
    """Train the LRGAN on a folder of images (resumable; checkpoints, sample grids, JSONL log).

    Several GPUs or machines: `--gpus K`, or run this command under `torchrun --nproc_per_node=K`.
    """
    from . import distributed
    from .rundir import run_training
    if gpus < 1:
        raise ConfigError(f"--gpus {gpus}: must be >= 1")
    if gpus > 1 and not distributed.launched_by_torchrun():
        import torch
        visible = torch.cuda.device_count()
        if visible < gpus:
            raise ConfigError(f"--gpus {gpus} but {visible} CUDA device(s) are visible; use --gpus {visible or 1}"
                              + ("" if visible else ", or torchrun --nproc_per_node=K for CPU processes (gloo)"))
        argv = sys.argv[1:]
        without = [a for i, a in enumerate(argv) if not (a.startswith("--gpus") or (i and argv[i - 1] == "--gpus"))]
        raise typer.Exit(distributed.launch(gpus, without))
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise ConfigError(f"--out {out} differs from --resume {resume}; a resumed run stays in its directory")
    run_dir = resume or out
    if run_dir is None:
        raise ConfigError("--out is required: the directory the run writes to")
    overrides: dict[str, object] = parse_overrides(set_)
    for key, value in (("steps", steps), ("batch_size", batch_size), ("seed", seed), ("metadata", metadata),
                       ("sample_every", sample_every), ("checkpoint_every", checkpoint_every),
                       ("eval_every", eval_every), ("eval_num", eval_num)):
        if value is not None:
            overrides[f"train.{key}"] = value
    main_rank = distributed.env_rank() == 0
    with _progress() as progress:
        result = run_training(data, run_dir, preset, overrides, resume=resume is not None, overwrite=overwrite,
                              device=device, workers=workers, inception_weights=inception_weights,
                              on_message=console.print if main_rank else (lambda m: None),
                              on_progress=ProgressReporter(progress) if main_rank else None)
    if not main_rank:
        raise typer.Exit(130 if result.stopped_by == "SIGINT" else 0)
    if result.stopped_by == "time limit":
        console.print(f"time limit of {result.elapsed_s:.0f} s of training reached at step {result.step}; checkpoint "
                      f"saved. Continue with: lrgan-edge train --resume {run_dir} --set max_train_s=SECONDS")
        return
    if result.stopped_by != "done":
        console.print(f"stopped by {result.stopped_by} at step {result.step}; checkpoint saved. "
                      f"Continue with: lrgan-edge train --resume {run_dir}")
        raise typer.Exit(130 if result.stopped_by == "SIGINT" else 0)
    console.print(f"done: {result.step} steps, {result.images_per_s:.1f} img/s; run in {run_dir}")


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., help="Run directory (or checkpoint file)."),
    n: int = typer.Option(64, "-n", help="Number of images."),
    seed: int = typer.Option(0, help="Noise seed."),
    out: Path = typer.Option(Path("grid.png"), help="Output PNG grid."),
    meta_image: list[Path] = typer.Option([], help="Take metadata from these images (repeatable) instead of the bank."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Generate a grid of images from a checkpoint."""
    from .sampling import sample_grid
    path = sample_grid(run_dir, n=n, seed=seed, out=out, meta_images=meta_image, device=device)
    console.print(f"wrote {path}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="Run directory (or checkpoint file)."),
    target: str = typer.Option(..., help="onnx, executorch, coreml or all."),
    out: Path = typer.Option(..., help="Export directory (artifacts, manifest.json, meta_bank.bin)."),
    resolution: Optional[int] = typer.Option(None, help="Export a lower stage's output (e.g. 64 or 128 of a 256 model)."),
    quantize: Optional[str] = typer.Option(None, help="int8: also write an int8 XNNPACK .pte (PT2E, calibrated)."),
    coreml_precision: str = typer.Option("float16", help="Core ML compute precision: float16 or float32."),
    overwrite: bool = typer.Option(False, help="Replace an export already in --out."),
    android_assets: Optional[Path] = typer.Option(None, help="Also copy the .pte files, manifest.json and meta_bank.bin "
                                                  "here, e.g. android_demo/app/src/main/assets."),
) -> None:
    """Export the generator (EMA weights), each artifact checked against PyTorch."""
    from lrgan_edge.export.pipeline import export_run
    manifest, _ = export_run(run_dir, target, out, resolution=resolution, overwrite=overwrite, quantize=quantize,
                             coreml_precision=coreml_precision, android_assets=android_assets,
                             on_message=console.print)
    console.print(f"wrote {manifest}")


@app.command(name="eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="Run directory (its EMA generator)."),
    data: str = typer.Option(..., help="Real images: a folder, a .zip or synthetic:longrange[:COUNT[:SEED]]."),
    num: int = typer.Option(5000, help="Images per side (real and generated)."),
    inception_weights: Optional[Path] = typer.Option(None, help="torch-fidelity's Inception-v3 weights file "
                                                     "(default: the torch hub cache)."),
    seed: int = typer.Option(0, help="Seed of the generated images and of the real subset."),
    per_stage: bool = typer.Option(False, help="Also FID/KID of every stage (real images downsampled to its size)."),
) -> None:
    """FID and KID against real images (appended to RUN_DIR/metrics.jsonl); consistency on the synthetic data."""
    from .evaluation import evaluate
    record = evaluate(run_dir, data, num=num, inception_weights=inception_weights, seed=seed, per_stage=per_stage,
                      on_message=console.print)
    console.print_json(json.dumps(record))


@app.command()
def bench(
    run_dir: Optional[Path] = typer.Argument(None, help="Run directory to measure (its EMA generator); default: --preset."),
    preset: Optional[str] = typer.Option(None, help="Measure a preset's architecture with random weights (default paper-ffhq)."),
    runtimes: str = typer.Option("all", help="Comma-separated: torch-cpu, cuda-fp32, cuda-fp16, cuda-bf16, cuda-bf16-cl, "
                                 "cuda-compile, onnxruntime, executorch-fp32, executorch-int8, coreml; or all."),
    baselines: str = typer.Option("sa,sagan,pggan", help="Compared at the same size: sa (ours w/ SAGAN attention), sagan, pggan; or none."),
    out: Path = typer.Option(Path("runs/bench"), help="Report directory (JSON, Markdown, PNG, exported artifacts)."),
    batch_size: int = typer.Option(100, help="Images per call in the batch measurement."),
    images: int = typer.Option(100, help="Images per timed pass."),
    repeats: int = typer.Option(3, help="Timed passes (median, min, max)."),
    warmup: int = typer.Option(1, help="Untimed calls before timing."),
    single_images: Optional[int] = typer.Option(None, help="Images generated one at a time for p50/p90 (default: --images; 0 skips)."),
    single_repeats: int = typer.Option(1, help="Passes of the batch-1 measurement."),
    threads: Optional[int] = typer.Option(None, help="Threads per runtime (default: the CPUs this process may use)."),
    merge: list[Path] = typer.Option([], "--merge", help="Instead of measuring: join these bench JSONs (e.g. a "
                                     "desktop run and android_demo's BenchmarkActivity report) into one report in --out."),
) -> None:
    """Parameters, FLOPs and time per 100 images on every runtime, beside the paper's baselines."""
    from lrgan_edge.benchmarks.bench import BenchSettings, merge_reports, run_bench
    if merge:
        if run_dir is not None or preset is not None:
            raise ConfigError("--merge joins existing reports; leave out RUN_DIR and --preset")
        paths = merge_reports(merge, out, command=" ".join(["lrgan-edge", *sys.argv[1:]]))
        console.print(Path(paths["markdown"]).read_text(), markup=False, highlight=False)
        for path in paths.values():
            console.print(f"wrote {path}")
        return
    kwargs = {"threads": threads} if threads is not None else {}
    settings = BenchSettings(batch_size=batch_size, images=images, repeats=repeats, warmup=warmup,
                             single_images=images if single_images is None else single_images,
                             single_repeats=single_repeats, **kwargs)
    chosen = [] if baselines.strip() in ("", "none") else [b.strip() for b in baselines.split(",") if b.strip()]
    paths = run_bench(out, run_dir=run_dir, preset=preset, runtimes=runtimes, baselines=chosen, settings=settings,
                      command=" ".join(["lrgan-edge", *sys.argv[1:]]), on_message=console.print)
    console.print(Path(paths["markdown"]).read_text(), markup=False, highlight=False)
    for kind, path in paths.items():
        console.print(f"wrote {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Where the demo writes its run and report."),
    steps: Optional[int] = typer.Option(None, help="Training steps (default: the demo preset's)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Train the `demo` preset on built-in synthetic long-range data, then sample and score it."""
    from .demo import run_demo
    with _progress() as progress:
        report = run_demo(out, steps=steps, device=device, on_message=console.print,
                          on_progress=ProgressReporter(progress))
    console.print_json(json.dumps(report))


def main() -> None:
    try:
        app(standalone_mode=False)
    except LrganError as exc:
        err_console.print(f"error: {exc}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code and message
        import click
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()

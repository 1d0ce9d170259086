"""The embedded demo: train the `demo` preset on built-in synthetic data, sample it, score it,
export it to every target (each checked against PyTorch), and end with a short bench.

The score is the long-range consistency of `synthetic.py`: real images score 1, an untrained
generator near 0; how far training moves the generator towards 1 is what the demo shows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from .checkpoint import load_generator, read_checkpoint
from .data import load_images, to_float
from .discriminator import build_discriminators
from .generator import build_generator, count_parameters
from .rundir import run_training
from .synthetic import longrange_consistency

DEMO_DATA = "synthetic:longrange"
SCORE_SAMPLES = 256


@torch.no_grad()
def score_generators(run_dir: Path, n: int = SCORE_SAMPLES, seed: int = 1) -> dict[str, float]:
    """Mean long-range consistency of real images, the trained (EMA) generator, and an untrained one."""
    cfg, _, state, _ = read_checkpoint(run_dir)
    trained = load_generator(run_dir)
    torch.manual_seed(cfg.train.seed)
    untrained = build_generator(cfg).eval()
    untrained.meta_bank = trained.meta_bank
    reals = load_images(state["data"], cfg.model.resolution).images[:n]
    return {"real": float(longrange_consistency(to_float(reals)).mean()),
            "trained": float(longrange_consistency(trained.sample(n, seed=seed)).mean()),
            "untrained": float(longrange_consistency(untrained.sample(n, seed=seed)).mean())}


def run_demo_bench(out: Path, on_message=print) -> dict:
    """A short bench of the trained demo model on every runtime here (baselines: `lrgan-edge bench`)."""
    from lrgan_edge.benchmarks.bench import BenchSettings, run_bench
    start = time.perf_counter()
    settings = BenchSettings(batch_size=100, images=100, repeats=3, warmup=1, single_images=50, single_repeats=1)
    paths = run_bench(out / "bench", run_dir=out, runtimes="all", baselines=[], settings=settings,
                      command=f"lrgan-edge bench {out} --baselines none --single-images 50 --out {out / 'bench'}",
                      on_message=on_message)
    report = json.loads(paths["json"].read_text())
    its = {r["runtime"]: r["batch"]["seconds_per_100"]["median"] for r in report["rows"]
           if r["model"] == "lrgan" and r["status"] == "ok"}
    return {"report": str(paths["markdown"]), "seconds_per_100_images": its,
            "goals": {g["goal"]: g["measured"] for g in report["goals"]}, "wall_s": round(time.perf_counter() - start, 1)}


def run_demo(out: Path, steps: int | None = None, device: str = "auto", on_message=print, on_progress=None) -> dict:
    out = Path(out)
    start = time.perf_counter()
    overrides = {"train.steps": steps} if steps else {}
    result = run_training(DEMO_DATA, out, "demo", overrides, overwrite=True, device=device,
                          on_message=on_message, on_progress=on_progress)
    train_s = time.perf_counter() - start
    G = load_generator(out)
    grid = out / "demo_grid.png"
    save_image(G.sample(64, seed=0) * 0.5 + 0.5, grid, nrow=8)
    scores = score_generators(out)
    export_start = time.perf_counter()
    from lrgan_edge.export.pipeline import export_run
    manifest, artifacts = export_run(out, "all", out / "export", quantize="int8", overwrite=True, on_message=on_message)
    export_s = time.perf_counter() - export_start
    bench = run_demo_bench(out, on_message)
    report = {"preset": "demo", "data": DEMO_DATA, "metadata": G.metadata_source, "steps": result.step,
              "images_per_s": round(result.images_per_s, 2), "train_wall_s": round(train_s, 1),
              "total_wall_s": round(time.perf_counter() - start, 1),
              "nop_g": count_parameters(G), "nop_d": count_parameters(build_discriminators(G.cfg)),
              "consistency": {k: round(v, 4) for k, v in scores.items()}, "grid": str(grid),
              "export": {"manifest": str(manifest), "wall_s": round(export_s, 1),
                         "artifacts": {a.file: {"passed": a.parity["passed"], "max_abs_diff": a.parity.get("max_abs_diff"),
                                                "psnr_db": a.parity.get("psnr_db")} for a in artifacts}},
              "bench": bench}
    (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report

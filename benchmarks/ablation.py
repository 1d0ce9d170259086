"""The paper's ablations (Table 1's quality columns, Fig. 5) at equal training time, on CPU.

Trains the full model and each ablation on the built-in synthetic data (`synthetic:longrange`)
for the same number of seconds of training steps, evaluates the EMA generator as it goes, and
writes a table (JSON + Markdown) and a plot of the score over training time:

    python -m lrgan_edge.benchmarks.ablation --minutes 4 --seeds 0,1 --out runs/ablation

Fairness on a shared machine: all runs train in turns of `--slice` seconds, round-robin, so a
slow spell of the machine hits every variant alike instead of whichever ran at the time.

Scores (`synthetic.py`): long-range consistency of 256 samples (real images score 1.0; the
property only long-range dependencies give), their variety relative to the real images'
(mean pairwise RMS distance; a collapsed generator scores near 0), and FID/KID where the
Inception weights file exists (`--inception-weights`, or torch-fidelity's cache).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
import typer

from lrgan_edge.data import load_images, to_float
from lrgan_edge.discriminator import build_discriminators
from lrgan_edge.config import get_preset
from lrgan_edge.errors import ConfigError, LrganError
from lrgan_edge.evaluation import generate, pairwise_rms
from lrgan_edge.generator import count_parameters
from lrgan_edge.rundir import open_run
from lrgan_edge.synthetic import longrange_consistency

DATA = "synthetic:longrange"

# name -> (row label of Table 1, config overrides)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "ours": ("Ours", {}),
    "no-meta": ("Ours w/o Meta", {"train.metadata": "none"}),
    "no-lrm": ("Ours w/o LRM", {"model.attention": "none"}),
    "residual": ("Ours w/ Residual", {"model.attention": "residual"}),
    "sa": ("Ours w/ SA", {"model.attention": "sa"}),
    "matmul": ("Ours, literal matmul LRM", {"model.lrm_combine": "matmul"}),
    "lrm-zero-init": ("Ours, LRM weights from 0", {"model.lrm_weight_std": "0"}),   # not in the paper: our probe
}
PAPER_VARIANTS = ("ours", "no-meta", "no-lrm", "residual", "sa", "matmul")      # the default: Table 1 + DESIGN §3
# The paper's Table 1 FID (FFHQ, CUB, ImageNet Church), for reference beside our scores.
PAPER_FID = {"ours": (23.97, 24.85, 56.50), "no-meta": (35.35, 26.47, 68.70), "no-lrm": (156.59, 42.25, 177.28),
             "residual": (43.83, 43.21, 90.41), "sa": (187.61, 35.76, 84.47)}


def quality_evaluator(reals: torch.Tensor, num: int, seed: int, inception=None):
    """`G -> {consistency, variety[, fid, kid]}` on `num` samples from fixed noise (smooth curves)."""
    real_variety = pairwise_rms(reals)
    real_features = None
    if inception is not None:
        from lrgan_edge.metrics import extract
        real_features = extract(reals[:num], inception)

    def evaluate(G) -> dict:
        was_training = G.training
        fake = generate(G.eval(), num, seed)[-1]
        G.train(was_training)
        record = {"consistency": round(float(longrange_consistency(fake).mean()), 4),
                  "variety": round(pairwise_rms(fake) / real_variety, 4)}
        if inception is not None:
            from lrgan_edge.metrics import extract, fid_kid
            record.update(fid_kid(real_features, extract(fake, inception)))
        return record
    return evaluate


def reach(G, res: int, seed: int = 0) -> dict:
    """How far one output pixel reaches back into the generator's res x res feature map (the output
    of its upsampling block at that size): the share of positions whose gradient exceeds 10 % of the
    largest, the mean gradient over the far (right) half over that over the near half, and the
    gradient at the pixel's mirror position (where the synthetic data's partner shape sits) over the
    largest. Convolutions reach a few pixels (instance norm's statistics add a faint global path);
    the LRM or SA can reach every position, as far as training has opened them."""
    from lrgan_edge.blocks import UpBlock
    maps: list[torch.Tensor] = []

    def keep(_module, _inputs, out):
        if out.shape[-1] == res:
            out.retain_grad()
            maps.append(out)
    hooks = [m.register_forward_hook(keep) for m in G.modules() if isinstance(m, UpBlock)]
    try:
        z, meta = G.sample_inputs(1, seed)
        image = G(z, meta)
    finally:
        for h in hooks:
            h.remove()
    R = image.shape[-1]
    y, x = R // 2, R // 4                                         # the middle of the left half
    image[0, :, y, x].sum().backward()
    g = maps[0].grad[0].abs().sum(0)                              # (res, res)
    my, mx = y * res // R, (R - 1 - x) * res // R
    return {"res": res, "share_above_10pct": round(float((g > 0.1 * g.max()).float().mean()), 3),
            "far_half_over_near_half": round(float(g[:, res // 2:].mean() / g[:, :res // 2].mean()), 3),
            "mirror_over_max": round(float(g[my, mx] / g.max()), 4)}


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def add_reach(report: dict, out: Path) -> None:
    """Each run's `reach` at its attention resolution, from its checkpoint (EMA generator)."""
    from lrgan_edge.checkpoint import load_generator
    for run in report["runs"]:
        G = load_generator(out / f"{run['variant']}-seed{run['seed']}").requires_grad_(True)
        G.set_fast_attention(False)
        run["reach"] = reach(G, G.cfg.lrm_resolution)


def summarise(runs: list[dict], tail: float = 0.25) -> dict:
    """Per variant: final and late-training scores (mean over the last `tail` of the budget), over seeds."""
    def spread(values):
        return {"mean": round(statistics.fmean(values), 4),
                "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                "values": [round(v, 4) for v in values]}
    out = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == name]
        row = {"label": VARIANTS[name][0], "nop_g": mine[0]["nop_g"], "nop_d": mine[0]["nop_d"],
               "steps": spread([r["steps"] for r in mine]), "images_per_s": spread([r["images_per_s"] for r in mine])}
        if "reach" in mine[0]:
            for key in ("far_half_over_near_half", "mirror_over_max"):
                row[f"reach_{key}"] = spread([r["reach"][key] for r in mine])
        for key in ("consistency", "variety", "fid", "kid"):
            if key not in mine[0]["curve"][-1]:
                continue
            row[f"{key}_final"] = spread([r["curve"][-1][key] for r in mine])
            late = []
            for r in mine:
                cut = r["budget_s"] * (1 - tail)
                late.append(statistics.fmean(p[key] for p in r["curve"] if p["elapsed_s"] >= cut))
            row[f"{key}_late"] = spread(late)
            best = min if key in ("fid", "kid") else max
            row[f"{key}_best"] = spread([best(p[key] for p in r["curve"]) for r in mine])
        out[name] = row
    return out


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"# Ablations at equal training time — {s['preset']} preset on `{s.get('data', DATA)}`", "",
             f"{s['budget_s']:.0f} s of training steps per run ({s['slice_s']:.0f} s turns, round-robin), "
             f"seeds {', '.join(map(str, s['seeds']))}, {s['eval_num']} samples per evaluation, "
             f"{report['machine']['cpu']} ({report['machine']['threads']} threads), torch {report['machine']['torch']}.",
             f"Command: `{report['command']}`", "",
             "Consistency: real images 1.0, untrained ≈ 0 (higher is better). Variety: samples' mean pairwise "
             "distance over the real images' (1.0 = as varied as the data; near 0 = collapse). "
             "Reach far/near: how strongly one output pixel depends on the far half of the feature map at the "
             "attention's resolution, over the near half (gradient; convolutions alone: low). "
             "Final = at the end of the budget; late = mean over its last quarter; mean ± sd over seeds.", ""]
    has_fid = any("fid_final" in r for r in report["summary"].values())
    head = ["Method", "NoP-G", "steps", "img/s", "consistency final", "consistency late", "consistency best",
            "variety final", "reach far/near"] + (["FID final", "KID final"] if has_fid else []) + [
            "paper FID FFHQ / CUB / Church"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pm(d, digits=3):
        return f"{d['mean']:.{digits}f} ± {d['sd']:.{digits}f}" if d["sd"] else f"{d['mean']:.{digits}f}"
    for name, r in report["summary"].items():
        paper = PAPER_FID.get(name)
        cells = [r["label"], f"{r['nop_g'] / 1e3:.1f}k", f"{r['steps']['mean']:.0f}", f"{r['images_per_s']['mean']:.0f}",
                 pm(r["consistency_final"]), pm(r["consistency_late"]), pm(r["consistency_best"]), pm(r["variety_final"], 2),
                 pm(r["reach_far_half_over_near_half"], 2) if "reach_far_half_over_near_half" in r else "–"]
        if has_fid:
            cells += [pm(r["fid_final"], 1) if "fid_final" in r else "–", pm(r["kid_final"], 4) if "kid_final" in r else "–"]
        cells.append(" / ".join(f"{v:.2f}" for v in paper) if paper else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if not has_fid:
        lines += ["", f"FID/KID not computed: {report['fid_note']}"]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ["consistency", "variety"] + (["fid"] if "fid" in report["runs"][0]["curve"][-1] else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2))
    colours = dict(zip(VARIANTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, key in zip(axes, keys):
        for name in report["summary"]:
            for i, run in enumerate(r for r in report["runs"] if r["variant"] == name):
                xs = [p["elapsed_s"] for p in run["curve"]]
                ax.plot(xs, [p[key] for p in run["curve"]], color=colours[name], alpha=0.85,
                        linestyle="-" if i == 0 else "--", label=VARIANTS[name][0] if i == 0 else None)
        ax.set_xlabel("training time (s)")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].axhline(1.0, color="grey", linewidth=0.8)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Ablations at equal training time ({report['settings']['preset']} on {report['settings'].get('data', DATA)}; "
                 f"dashed: further seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_ablation(out: Path, variants: list[str], seeds: list[int], budget_s: float, slice_s: float = 20.0,
                 preset: str = "demo", eval_every: int = 100, eval_num: int = 256, threads: int | None = None,
                 inception_weights: Optional[Path] = None, command: str = "", data: str = DATA,
                 on_message=print) -> dict:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if budget_s <= 0 or slice_s <= 0:
        raise ConfigError("--minutes and --slice must be > 0")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inception, fid_note = None, None
    try:
        from lrgan_edge.metrics import InceptionFeatures
        inception = InceptionFeatures(inception_weights)
    except LrganError as exc:
        fid_note = str(exc)
        on_message(f"FID/KID skipped: {exc}")
    res = get_preset(preset).model.resolution
    reals = load_images(data, res).images
    reals = reals[torch.randperm(len(reals), generator=torch.Generator().manual_seed(0))]
    evaluator = quality_evaluator(reals, eval_num, seed=1, inception=inception)
    trainers = []
    for name in variants:
        for seed in seeds:
            overrides = {**VARIANTS[name][1], "train.seed": seed, "train.steps": 10**9,
                         "train.max_train_s": budget_s, "train.eval_every": eval_every,
                         "train.sample_every": 10**9, "train.checkpoint_every": 10**9}
            t = open_run(data, out / f"{name}-seed{seed}", preset, overrides, overwrite=True, device="cpu",
                         evaluator=evaluator, on_message=lambda m: None)
            trainers.append((name, seed, t))
            on_message(f"{name} seed {seed}: NoP-G {count_parameters(t.G):,}")
    start = time.perf_counter()
    rounds = int(-(-budget_s // slice_s))
    for r in range(1, rounds + 1):
        limit = min(r * slice_s, budget_s)
        for name, seed, t in trainers:
            t.cfg = dataclasses.replace(t.cfg, train=dataclasses.replace(t.cfg.train, max_train_s=limit))
            t.run()
        states = ", ".join(f"{n}/{s} {read_metrics(t.run_dir)[-1]['consistency']:.2f}" for n, s, t in trainers)
        on_message(f"round {r}/{rounds} ({limit:.0f} s each, {time.perf_counter() - start:.0f} s wall): {states}")
    runs = []
    for name, seed, t in trainers:
        runs.append({"variant": name, "seed": seed, "budget_s": budget_s, "steps": t.step,
                     "images_per_s": round(t.step * t.cfg.train.batch_size / t.elapsed_s, 1),
                     "nop_g": count_parameters(t.G), "nop_d": count_parameters(build_discriminators(t.cfg)),
                     "curve": [{k: v for k, v in p.items()} for p in read_metrics(t.run_dir)]})
    report = {"command": command, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "settings": {"preset": preset, "data": data, "variants": variants, "seeds": seeds, "budget_s": budget_s,
                           "slice_s": slice_s, "eval_every": eval_every, "eval_num": eval_num},
              "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "host": platform.node()},
              "real": {"consistency": round(float(longrange_consistency(to_float(reals)).mean()), 4)},
              "fid_note": fid_note, "wall_s": round(time.perf_counter() - start, 1), "runs": runs}
    write_outputs(report, out)
    return report


def write_outputs(report: dict, out: Path) -> None:
    add_reach(report, out)
    report["summary"] = summarise(report["runs"])
    (out / "ablation.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "ablation.md").write_text(markdown(report))
    plot(report, out / "ablation.png")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(out: Path = typer.Option(Path("runs/ablation"), help="Folder for the runs, ablation.{json,md,png}."),
         minutes: float = typer.Option(4.0, help="Training time per run, in minutes of training steps."),
         seeds: str = typer.Option("0", help="Comma-separated seeds; each variant trains once per seed."),
         variants: str = typer.Option(",".join(PAPER_VARIANTS), help=f"Comma-separated, of: {', '.join(VARIANTS)}."),
         slice_s: float = typer.Option(20.0, "--slice", help="Seconds each run trains per turn."),
         preset: str = typer.Option("demo", help="Base preset every variant modifies."),
         eval_every: int = typer.Option(100, help="Steps between evaluations."),
         eval_num: int = typer.Option(256, help="Samples per evaluation."),
         threads: Optional[int] = typer.Option(None, help="torch threads (default: torch's)."),
         inception_weights: Optional[Path] = typer.Option(None, help="Inception-v3 weights for FID/KID."),
         reanalyse: bool = typer.Option(False, help="Only rebuild ablation.{json,md,png} of the runs in --out.")) -> None:
    """Train the full model and each ablation for the same time; write the table and the plot."""
    import sys
    if reanalyse:
        report = json.loads((out / "ablation.json").read_text())
        write_outputs(report, out)
        print((out / "ablation.md").read_text())
        return
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"error: --seeds {seeds!r}: expected comma-separated integers, e.g. 0,1")
    try:
        report = run_ablation(out, [v.strip() for v in variants.split(",") if v.strip()], seed_list, minutes * 60,
                              slice_s, preset, eval_every, eval_num, threads, inception_weights,
                              command="python -m lrgan_edge.benchmarks.ablation " + " ".join(sys.argv[1:]))
    except LrganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    print((out / "ablation.md").read_text())
    print(f"wrote {out / 'ablation.json'}, {out / 'ablation.md'}, {out / 'ablation.png'} in {report['wall_s']:.0f} s")


if __name__ == "__main__":
    app()

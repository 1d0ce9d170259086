"""Bench report: the goals as ratios measured in one run, a Markdown table laid out like the paper's
Table 1, and a chart. Everything here reads the bench JSON (`schema.json`) and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from .baselines import PAPER_NOP

PAPER_IT_S = {"pggan": 17.24, "sagan": 1.89, "lrgan": 0.83}      # LR-GAN Table 1, one Quadro RTX 6000, 256x256
ORDER = ("pggan", "sagan", "lrgan", "lrgan-sa")                  # the paper's row order, then the ablation


def _it(row: dict | None, mode: str = "batch") -> float | None:
    """Median seconds per 100 images of a row in one mode ("batch" or "single"), None if not measured."""
    ok = row and row["status"] == "ok" and row[mode]
    return row[mode]["seconds_per_100"]["median"] if ok else None


def _goal(name: str, target: float, measured: float | None, detail: str) -> dict:
    return {"goal": name, "target": target, "measured": None if measured is None else round(measured, 3),
            "met": None if measured is None else measured >= target, "detail": detail}


def compute_goals(report: dict) -> list[dict]:
    """The issue's goals as ratios of rows measured side by side, at the batch size and at batch 1."""
    goals = []
    for mode in ("batch", "single"):
        goals += _mode_goals(report, mode)
    return goals


def _mode_goals(report: dict, mode: str) -> list[dict]:
    rows = {(r["model"], r["runtime"]): r for r in report["rows"]}
    it = lambda key: _it(rows.get(key), mode)                                    # noqa: E731
    batch = f"batch {report['rows'][0][mode]['batch_size']}" if report["rows"] and report["rows"][0][mode] else (
        "batch 1" if mode == "single" else "batch")
    # an artifact that failed its parity check is not a deployable result: it does not count as fastest
    ours_cpu = [r for r in report["rows"] if r["model"] == "lrgan" and r["device"] == "cpu" and _it(r, mode)
                and not (r["artifact"] and r["artifact"]["parity"]["passed"] is False)]
    fastest = min(ours_cpu, key=lambda r: _it(r, mode), default=None)
    eager = it(("lrgan", "torch-cpu"))
    goals = []
    if fastest and eager:
        goals.append(_goal(f"fastest CPU runtime vs eager PyTorch ({batch})", 3.0, eager / _it(fastest, mode),
                           f"{fastest['runtime']} {_it(fastest, mode):.3f} s vs torch-cpu {eager:.3f} s"))
    for baseline, target in (("pggan", 20.0), ("sagan", 2.3)):
        for rt in dict.fromkeys(r["runtime"] for r in report["rows"]):
            ours, other = it(("lrgan", rt)), it((baseline, rt))
            if ours and other:
                goals.append(_goal(f"ours vs {baseline.upper()} on {rt} ({batch})", target, other / ours,
                                   f"{other:.3f} s vs {ours:.3f} s"))
    fp32, int8 = it(("lrgan", "executorch-fp32")), it(("lrgan", "executorch-int8"))
    if fp32 and int8:
        parity = rows["lrgan", "executorch-int8"]["artifact"]["parity"]
        psnr = f"; int8 PSNR {parity.get('psnr_db')} dB" + ("" if parity["passed"] else " fails its 30 dB gate")
        goals.append(_goal(f"int8 .pte vs fp32 .pte ({batch})", 1.5, fp32 / int8, f"{int8:.3f} s vs {fp32:.3f} s{psnr}"))
    if mode == "batch" and fastest and fastest["fraction_of_peak"] is not None:
        goals.append(_goal(f"achieved GFLOP/s / fp32 matmul peak, fastest CPU runtime ({batch})", 0.5,
                           fastest["fraction_of_peak"],
                           f"{fastest['runtime']}: {fastest['achieved_gflops_per_s']} of {fastest['peak_gflops_per_s']} GFLOP/s"))
    return goals


# ---------------------------------------------------------------- Markdown

def _m(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e6:.3f}M"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _models_in_order(report: dict) -> list[dict]:
    return sorted(report["models"], key=lambda m: ORDER.index(m["name"]) if m["name"] in ORDER else len(ORDER))


def table1(report: dict) -> list[str]:
    runtimes = [rt for rt in dict.fromkeys(r["runtime"] for r in report["rows"])
                if any(r["runtime"] == rt and r["status"] == "ok" for r in report["rows"])]
    rows = {(r["model"], r["runtime"]): r for r in report["rows"]}
    res = report["models"][0]["resolution"]
    head = ["Method", "NoP-G", "NoP-D", "GFLOPs/img", *[f"IT {rt} (s)" for rt in runtimes], "paper: NoP-G / NoP-D / IT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in _models_in_order(report):
        key = m["name"] if m["name"] != "lrgan-sa" else None
        paper = (f"{PAPER_NOP[key][0] / 1e6:.1f}M / {PAPER_NOP[key][1] / 1e6:.1f}M / {PAPER_IT_S[key]} s"
                 if key in PAPER_NOP and res == 256 else "–")
        cells = [m["label"], _m(m["nop_g"]), _m(m["nop_d"]), f"{m['gflops_per_image']:.2f}",
                 *[_s(_it(rows.get((m["name"], rt)))) for rt in runtimes], paper]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_table(report: dict) -> list[str]:
    head = ["model", "runtime", "IT batch (s / 100) median [min–max]", "IT batch 1 (s / 100)", "latency p50 / p90 (ms)",
            "peak memory MB (+ during generation)", "artifact MB", "GFLOP/s", "of peak", "parity"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted((r for r in report["rows"] if r["status"] == "ok"),
                    key=lambda r: (ORDER.index(r["model"]) if r["model"] in ORDER else 9, r["runtime"])):
        b, s, mem, art = r["batch"], r["single"], r["memory"], r["artifact"]
        sp = b["seconds_per_100"]
        parity = "–"
        if art:
            p = art["parity"]
            parity = (f"PSNR {p['psnr_db']} dB" if "min_psnr_db" in p else f"max {p['max_abs_diff']:.1e}"
                      if "max_abs_diff" in p else "checked at export" if p["passed"] is not None else "not checked"
                      ) + ("" if p["passed"] is not False else " FAILED")
        cells = [r["label"], r["runtime"] + (f" @ {r['host']}" if r.get("host") else ""),
                 f"{_s(sp['median'])} [{_s(sp['min'])}–{_s(sp['max'])}]",
                 _s(s["seconds_per_100"]["median"]) if s else "–",
                 f"{s['latency_ms']['p50']:.1f} / {s['latency_ms']['p90']:.1f}" if s else "–",
                 f"{mem['peak_mb']:.0f}" + (f" (+{mem['increase_mb']:.0f})" if "increase_mb" in mem else ""),
                 f"{art['bytes'] / 1e6:.1f}" if art else "–", f"{r['achieved_gflops_per_s']:.1f}",
                 f"{100 * r['fraction_of_peak']:.0f} %" if r["fraction_of_peak"] is not None else "–", parity]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_markdown(report: dict, path: Path, chart: str | None = None) -> Path:
    h, st = report["host"], report["settings"]
    peaks = ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in report["matmul_peak_gflops_per_s"].items()) or "not measured"
    versions = ", ".join(f"{k} {v}" for k, v in h["versions"].items() if v)
    res = report["models"][0]["resolution"]
    lines = [f"# lrgan-edge bench: {h['hostname']}, {report['created']}", ""]
    if report.get("command"):
        lines += ["```", report["command"], "```", ""]
    lines += [f"- Machine: {h['cpu']}, {h['logical_cpus']} logical CPUs, {h['threads']} threads pinned per runtime"
              + (f"; GPU: {h['gpu']}" if h["gpu"] else "; no GPU"),
              f"- Versions: {versions}",
              *([f"- Merged from: {', '.join(report['merged_from'])} (the host, settings and peak above are the first "
                 f"report's; each row names its host)"] if report.get("merged_from") else []),
              f"- fp32 matmul peak measured in this run: {peaks}",
              f"- IT = seconds to generate 100 images of {res}×{res}, median of {st['repeats']} passes of "
              f"{st['images']} images in batches of {st['batch_size']}"
              + (f"; batch 1: {st['single_images']} images × {st['single_repeats']} pass(es)" if st["single_images"] else ""),
              f"- Baselines have random weights (speed and size only); {report['wall_s']:.0f} s for the whole bench", "",
              "## Table 1 (the paper's layout)", "", *table1(report), ""]
    if report["goals"]:
        lines += ["## Goals (ratios measured side by side in this run)", "",
                  "| goal | target | measured | met | detail |", "|---|---|---|---|---|"]
        for g in report["goals"]:
            met = {True: "yes", False: "**no**", None: "–"}[g["met"]]
            lines.append(f"| {g['goal']} | ≥ {g['target']:g} | {g['measured']} | {met} | {g['detail']} |")
        lines.append("")
    lines += ["## Every row", "", *detail_table(report), ""]
    others = [r for r in report["rows"] if r["status"] != "ok"]
    if others:
        lines += ["Not measured:", ""]
        seen = set()
        for r in others:
            key = (r["runtime"], r["reason"]) if r["status"] == "skipped" else (r["model"], r["runtime"])
            if key not in seen:
                seen.add(key)
                who = r["runtime"] if r["status"] == "skipped" else f"{r['label']} on {r['runtime']}"
                lines.append(f"- {who}: {r['status']} ({r['reason']})")
        lines.append("")
    if chart:
        lines += [f"![IT per runtime]({chart})", ""]
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------- chart

def write_chart(report: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["rows"] if r["status"] == "ok"]
    runtimes = list(dict.fromkeys(r["runtime"] for r in ok))
    models = [m for m in _models_in_order(report) if any(r["model"] == m["name"] for r in ok)]
    rows = {(r["model"], r["runtime"]): r for r in ok}
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * max(1, len(runtimes)) * max(1, len(models)) / 2))
    height = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        ys = [k + i * height for k, rt in enumerate(runtimes) if (m["name"], rt) in rows]
        xs = [_it(rows[m["name"], rt]) for rt in runtimes if (m["name"], rt) in rows]
        ax.barh(ys, xs, height=height, label=m["label"])
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(runtimes))], runtimes)
    ax.invert_yaxis()
    ax.set_xscale("log")
    res = report["models"][0]["resolution"] if report["models"] else "?"
    ax.set_xlabel(f"seconds to generate 100 images at {res}² (batch {report['settings']['batch_size']}, log scale)")
    ax.set_title(f"lrgan-edge bench on {report['host']['cpu']}" + (f" / {report['host']['gpu']}" if report["host"]["gpu"] else ""),
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

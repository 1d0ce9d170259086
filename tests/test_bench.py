"""`lrgan-edge bench`: the baselines, the measurement helpers, the report and goals, and the real command."""

import json
import math
import subprocess
import sys
import time
from importlib.resources import files

import jsonschema
import pytest
import torch

from lrgan_edge.benchmarks import runtimes as runtimes_module
from lrgan_edge.benchmarks.baselines import PAPER_NOP, build_baseline
from lrgan_edge.benchmarks.bench import BenchSettings, run_bench
from lrgan_edge.benchmarks.models import ModelSpec, build_model, model_specs, parameter_counts
from lrgan_edge.benchmarks.report import compute_goals, write_markdown
from lrgan_edge.benchmarks.runtimes import RUNTIMES, resolve_runtimes
from lrgan_edge.benchmarks.worker import percentile, timed_passes
from lrgan_edge.errors import CheckpointError, ConfigError
from lrgan_edge.export.common import gflops_per_image
from lrgan_edge.generator import count_parameters

from .test_cli import assert_one_line_error, cli

SCHEMA = json.loads(files("lrgan_edge.benchmarks").joinpath("schema.json").read_text())
quiet = dict(on_message=lambda m: None)


# ---------------------------------------------------------------- baselines

@pytest.mark.parametrize("name", ["pggan", "sagan"])
def test_baselines_at_256_have_the_papers_parameter_counts(name):
    G, D = build_baseline(name, 256)
    paper_g, paper_d = PAPER_NOP[name]
    assert abs(count_parameters(G) / paper_g - 1) < 0.03
    assert abs(count_parameters(D) / paper_d - 1) < 0.03


@pytest.mark.parametrize("name", ["pggan", "sagan"])
def test_baselines_generate_and_discriminate_at_any_size(name):
    for res in (32, 64):
        G, D = build_baseline(name, res)
        with torch.no_grad():
            img = G(torch.randn(2, G.z_dim))
            assert img.shape == (2, 3, res, res)
            assert D(img).shape == (2, 1)


def test_pggan_widths_follow_the_paper():
    G, _ = build_baseline("pggan", 256)
    convs = [m for m in G.body if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [512] * 7 + [256] * 2 + [128] * 2 + [64] * 2   # PGGAN Table 2


def test_model_specs_and_the_sa_ablation(run_dir):
    specs = model_specs(str(run_dir), None, ["sa", "sagan", "pggan"])
    assert [s.name for s in specs] == ["lrgan", "lrgan-sa", "sagan", "pggan"]
    assert all(s.resolution == 32 for s in specs)
    ours, sa = (build_model(s, "eager") for s in specs[:2])
    kinds = lambda m: {type(x).__name__ for x in m.modules()}           # noqa: E731
    assert "LongRangeModule" in kinds(ours) and "SelfAttention" not in kinds(ours)
    assert "SelfAttention" in kinds(sa) and "LongRangeModule" not in kinds(sa)
    nop_g, nop_d = parameter_counts(specs[0])
    assert nop_g == count_parameters(ours) and nop_d > 0
    # the exported graph folds upsample + conv3x3 into a 4x4 transposed conv: fewer FLOPs, same image
    eager, exported = build_model(specs[0], "eager"), build_model(specs[0], "delegable")
    inputs = eager.example_inputs(batch=2, seed=3)
    with torch.no_grad():
        assert torch.allclose(eager(*inputs), exported(*inputs), atol=1e-5)
    assert 0 < gflops_per_image(exported) < gflops_per_image(eager)
    with pytest.raises(ConfigError, match="unknown baseline 'biggan'"):
        model_specs(None, "tiny", ["biggan"])
    with pytest.raises(CheckpointError):
        model_specs(str(run_dir / "nowhere"), None, [])


def test_baselines_export_through_the_same_exporters(tmp_path):
    from lrgan_edge.export.onnx import export_onnx
    module = build_model(ModelSpec("pggan", "pggan", 8), "native")
    art = export_onnx(module, tmp_path, "pggan")
    assert art.parity["passed"] and (tmp_path / "pggan.onnx").exists()


# ---------------------------------------------------------------- measurement helpers

def test_timed_passes_count_calls_and_normalise_to_100_images():
    calls = []
    per_pass, per_call = timed_passes(lambda x: (calls.append(x), time.sleep(0.01)), "x", batch=4, images=10, repeats=2)
    assert len(calls) == 6 and len(per_call) == 6                   # ceil(10 / 4) calls per pass
    assert len(per_pass) == 2
    for p, chunk in zip(per_pass, (per_call[:3], per_call[3:])):
        assert p == pytest.approx(sum(chunk) * 100 / 12)             # 12 images generated per pass
    assert percentile([5, 1, 4, 2, 3], 50) == 3 and percentile(list(range(1, 11)), 90) == 9


def test_peak_rss_sees_a_large_allocation():
    """In a fresh process, as the worker uses it (a long-lived one may reuse pages it already holds)."""
    code = ("import time, torch\n"
            "from lrgan_edge.benchmarks.worker import PeakRSS\n"
            "with PeakRSS() as mem:\n"
            "    block = torch.ones(64 * 2**20 // 4); time.sleep(0.05); del block\n"
            "print(mem.peak - mem.before)")
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert grown > 48 * 2**20                                         # 64 MiB touched


def test_settings_and_runtimes_are_checked():
    for bad in ({"batch_size": 0}, {"images": -1}, {"repeats": 0}, {"threads": 0}, {"warmup": -1}):
        with pytest.raises(ConfigError, match="must be"):
            BenchSettings(**bad)
    with pytest.raises(ConfigError, match="unknown runtime 'tflite'.*executorch-int8"):
        resolve_runtimes("torch-cpu,tflite")
    assert [r.name for r in resolve_runtimes("all")] == list(RUNTIMES)
    assert [r.name for r in resolve_runtimes("onnxruntime, torch-cpu,onnxruntime")] == ["onnxruntime", "torch-cpu"]


# ---------------------------------------------------------------- report and goals

def fake_row(model, runtime, seconds, device="cpu", fraction=None):
    return {"model": model, "label": model, "runtime": runtime, "device": device, "precision": "fp32", "status": "ok",
            "reason": None, "artifact": None, "single": None, "memory": {"method": "test", "peak_mb": 1.0},
            "batch": {"batch_size": 100, "images": 100, "repeats": 1,
                      "seconds_per_100": {"median": seconds, "min": seconds, "max": seconds}},
            "gflops_per_image": 1.0, "achieved_gflops_per_s": 100 / seconds, "peak_gflops_per_s": 100.0,
            "fraction_of_peak": fraction}


def test_goals_are_ratios_of_rows_measured_together(tmp_path):
    rows = [fake_row("lrgan", "torch-cpu", 8.0), fake_row("lrgan", "executorch-fp32", 2.0, fraction=0.4),
            fake_row("lrgan", "executorch-int8", 1.0, fraction=0.8), fake_row("pggan", "torch-cpu", 200.0),
            fake_row("sagan", "torch-cpu", 12.0), fake_row("lrgan", "onnxruntime", 0.5, fraction=0.9)]
    rows[2]["artifact"] = {"file": "x.pte", "bytes": 1, "parity": {"passed": True, "psnr_db": 35.0}}
    rows[5]["artifact"] = {"file": "x.onnx", "bytes": 1, "parity": {"passed": False, "max_abs_diff": 1.0}}
    report = {"rows": rows, "models": [{"name": m, "label": m, "resolution": 256, "nop_g": 1, "nop_d": 1,
                                        "gflops_per_image": 1.0} for m in ("lrgan", "pggan", "sagan")]}
    goals = {g["goal"]: g for g in compute_goals(report)}
    fastest = goals["fastest CPU runtime vs eager PyTorch (batch 100)"]
    assert fastest["measured"] == 8.0 and fastest["met"] and "executorch-int8" in fastest["detail"]
    assert goals["ours vs PGGAN on torch-cpu (batch 100)"]["measured"] == 25.0
    assert goals["ours vs SAGAN on torch-cpu (batch 100)"]["measured"] == 1.5
    assert goals["ours vs SAGAN on torch-cpu (batch 100)"]["met"] is False
    assert goals["int8 .pte vs fp32 .pte (batch 100)"]["measured"] == 2.0    # onnxruntime failed parity: not fastest
    assert goals["achieved GFLOP/s / fp32 matmul peak, fastest CPU runtime (batch 100)"]["measured"] == 0.8
    assert not any("batch 1)" in g for g in goals)                     # no batch-1 rows, no batch-1 goals
    rows[0]["single"] = rows[2]["single"] = {"batch_size": 1, "seconds_per_100": {"median": 4.0}}
    goals = {g["goal"]: g for g in compute_goals(report)}
    assert goals["fastest CPU runtime vs eager PyTorch (batch 1)"]["measured"] == 1.0


def validate(report):
    jsonschema.validate(report, SCHEMA)


# ---------------------------------------------------------------- the real command

def test_bench_cli_on_tiny_every_runtime_has_a_row(run_dir, tmp_path):
    """One repetition of every runtime on a tiny run: a row each, and the JSON validates against the schema."""
    out = tmp_path / "bench"
    result = cli("bench", run_dir, "--runtimes", "all", "--baselines", "none", "--out", out, "--repeats", 1,
                 "--images", 2, "--batch-size", 1, "--single-images", 2, "--warmup", 0)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = out.glob("bench_*.json")
    report = json.loads(path.read_text())
    validate(report)
    rows = {r["runtime"]: r for r in report["rows"]}
    assert list(rows) == list(RUNTIMES)                               # every requested runtime has a row
    for name in ("torch-cpu", "onnxruntime", "executorch-fp32", "executorch-int8"):
        row = rows[name]
        assert row["status"] == "ok", row
        assert row["batch"]["seconds_per_100"]["median"] > 0 and row["single"]["latency_ms"]["p90"] > 0
        assert row["memory"]["peak_mb"] > 0 and row["threads"] == report["host"]["threads"]
        assert row["achieved_gflops_per_s"] > 0 and 0 < row["fraction_of_peak"]
    for name in ("onnxruntime", "executorch-fp32", "executorch-int8"):
        art = rows[name]["artifact"]
        assert art["parity"]["passed"] and (out / art["file"]).stat().st_size == art["bytes"]
    if not torch.cuda.is_available():
        assert rows["cuda-fp32"]["status"] == "skipped" and "CUDA" in rows["cuda-fp32"]["reason"]
    assert rows["coreml"]["status"] in ("skipped", "ok")
    md = path.with_suffix(".md").read_text()
    assert "| Method | NoP-G | NoP-D |" in md and "IT executorch-int8 (s)" in md and "## Goals" in md
    assert path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert report["models"][0]["run_dir"] == str(run_dir)


def test_a_missing_runtime_package_is_skipped_with_the_install_line(tmp_path, monkeypatch):
    real = runtimes_module.importlib.util.find_spec
    monkeypatch.setattr(runtimes_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    settings = BenchSettings(batch_size=2, images=2, repeats=1, warmup=0, single_images=0)
    paths = run_bench(tmp_path, preset="tiny", runtimes="torch-cpu,onnxruntime", baselines=[], settings=settings, **quiet)
    report = json.loads(paths["json"].read_text())
    validate(report)
    ort, eager = report["rows"][1], report["rows"][0]
    assert ort["status"] == "skipped" and "pip install 'lrgan-edge[onnx]'" in ort["reason"]
    assert eager["status"] == "ok" and eager["single"] is None        # the others still run
    assert math.isfinite(eager["batch"]["seconds_per_100"]["median"])
    write_markdown(report, tmp_path / "again.md")
    assert "onnxruntime: skipped (onnxruntime is not installed" in (tmp_path / "again.md").read_text()


def test_bench_bad_input_gets_one_line(run_dir, tmp_path):
    assert_one_line_error(cli("bench", "--preset", "tiny", "--runtimes", "tflite", "--out", tmp_path),
                          "unknown runtime 'tflite'", "onnxruntime", "executorch-fp32")
    assert_one_line_error(cli("bench", "--preset", "tiny", "--batch-size", 0, "--out", tmp_path),
                          "--batch-size 0", "positive")
    assert_one_line_error(cli("bench", tmp_path / "not-a-run", "--out", tmp_path), "not-a-run")
    assert_one_line_error(cli("bench", "--preset", "huge", "--out", tmp_path), "unknown preset 'huge'")
    assert_one_line_error(cli("bench", run_dir, "--preset", "tiny", "--out", tmp_path), "not both")
    assert not list(tmp_path.glob("bench_*"))                         # nothing measured, nothing written

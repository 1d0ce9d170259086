"""The equal-training-time ablation study (benchmarks/ablation.py) on the tiny preset."""

import json

import pytest

from lrgan_edge.benchmarks.ablation import VARIANTS, run_ablation, summarise
from lrgan_edge.errors import ConfigError


def test_every_variant_trains_for_the_same_time_and_is_reported(tmp_path):
    report = run_ablation(tmp_path, ["ours", "no-lrm", "sa"], [0, 1], budget_s=0.6, slice_s=0.3, preset="tiny",
                          eval_every=2, eval_num=8, data="synthetic:longrange:32", on_message=lambda m: None)
    assert [(r["variant"], r["seed"]) for r in report["runs"]] == [
        ("ours", 0), ("ours", 1), ("no-lrm", 0), ("no-lrm", 1), ("sa", 0), ("sa", 1)]
    for run in report["runs"]:
        curve = run["curve"]
        assert run["steps"] == curve[-1]["step"] and curve[-1]["elapsed_s"] >= 0.6
        assert all(-1 <= p["consistency"] <= 1 and p["variety"] >= 0 for p in curve)
        steps, times = [p["step"] for p in curve], [p["elapsed_s"] for p in curve]
        assert steps == sorted(set(steps)) and times == sorted(times)          # turns continue, never restart
    assert all(0 < r["reach"]["far_half_over_near_half"] and r["reach"]["res"] == 8 for r in report["runs"])
    ours, no_lrm = (report["runs"][0]["nop_g"], report["runs"][2]["nop_g"])
    assert ours > no_lrm                                                     # the flag changed the network
    assert set(report["summary"]) == {"ours", "no-lrm", "sa"}
    assert report["fid_note"] and "Inception weights" in report["fid_note"]  # no weights here: said, not faked
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["summary"] == report["summary"]
    table = (tmp_path / "ablation.md").read_text()
    assert all(VARIANTS[v][0] in table for v in ("ours", "no-lrm", "sa")) and "156.59" in table
    assert (tmp_path / "ablation.png").stat().st_size > 10_000


def test_summary_takes_final_late_and_best_over_seeds():
    def run(seed, values):
        curve = [{"elapsed_s": t, "consistency": v, "variety": 1.0} for t, v in zip((25, 50, 75, 100), values)]
        return {"variant": "ours", "seed": seed, "budget_s": 100, "steps": 40, "images_per_s": 10.0,
                "nop_g": 5, "nop_d": 6, "curve": curve}
    row = summarise([run(0, [0.1, 0.2, 0.6, 0.4]), run(1, [0.1, 0.3, 0.2, 0.2])])["ours"]
    assert row["consistency_final"]["values"] == [0.4, 0.2] and row["consistency_final"]["mean"] == pytest.approx(0.3)
    assert row["consistency_late"]["values"] == [0.5, 0.2]                   # points at >= 75 s of 100
    assert row["consistency_best"]["values"] == [0.6, 0.3]
    assert row["consistency_final"]["sd"] == pytest.approx(0.1414, abs=1e-4)


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown variant.*nolrm; known: ours, no-meta"):
        run_ablation(tmp_path, ["nolrm"], [0], budget_s=1, preset="tiny", data="synthetic:longrange:8")


def test_reach_sees_the_lrms_long_range_paths():
    import dataclasses
    import torch
    from lrgan_edge import PRESETS, build_generator
    from lrgan_edge.benchmarks.ablation import reach
    tiny = PRESETS["tiny"]
    far = {}
    for attention in ("lrm", "none"):
        torch.manual_seed(0)
        G = build_generator(dataclasses.replace(tiny.model, attention=attention))
        G.set_fast_attention(False)
        far[attention] = reach(G, 8)["far_half_over_near_half"]
    assert far["lrm"] > 1.5 * far["none"], far           # convolutions alone barely reach the far half

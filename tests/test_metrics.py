"""FID / KID: the library computation against closed forms on known Gaussians; Inception weights offline."""

import json

import pytest
import torch

from lrgan_edge import metrics
from lrgan_edge.errors import MetricsError
from lrgan_edge.metrics import InceptionFeatures, fid_kid, find_inception_weights


def test_fid_matches_the_closed_form_for_gaussians():
    """N(0, I) vs N(mu, s^2 I) in d dims: FID = |mu|^2 + d (1 - s)^2."""
    gen = torch.Generator().manual_seed(0)
    d, n, s = 8, 200_000, 1.5
    mu = torch.full((d,), 0.5, dtype=torch.float64)
    real = torch.randn(n, d, generator=gen, dtype=torch.float64)
    fake = mu + s * torch.randn(n, d, generator=gen, dtype=torch.float64)
    got = fid_kid(real, fake, kid_subset=1000, kid_subsets=20)
    expected = float(mu.square().sum()) + d * (1 - s) ** 2       # 2.0 + 2.0
    assert got["fid"] == pytest.approx(expected, rel=0.02)
    assert fid_kid(real, real.clone(), kid_subsets=5)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_kid_matches_a_direct_unbiased_mmd():
    """KID = unbiased MMD^2 with the cubic kernel k(x, y) = (x.y / d + 1)^3; one subset of all samples."""
    gen = torch.Generator().manual_seed(1)
    d, n = 4, 300
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = 0.3 + torch.randn(n, d, generator=gen, dtype=torch.float64)
    k = lambda a, b: (a @ b.T / d + 1) ** 3                                       # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd = ((kxx.sum() - kxx.diag().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diag().sum()) / (n * (n - 1))
           - 2 * kxy.mean())
    got = fid_kid(x, y, kid_subset=n, kid_subsets=1)
    assert got["kid"] == pytest.approx(float(mmd), rel=1e-6)
    assert got["kid"] > 0 and got["num_real"] == n


def fake_inception_weights(path):
    """A state dict with the real file's keys and shapes (random values), as torch-fidelity would load it."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as patch:                                       # build it without weights
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, *a, **k: None)
        patch.setattr(torch, "load", lambda *a, **k: {})
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="none")
    torch.save(net.state_dict(), path)
    return path


def test_inception_features_from_a_local_file_and_from_the_cache(tmp_path, monkeypatch):
    weights = fake_inception_weights(tmp_path / "inception.pth")
    net = InceptionFeatures(weights)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    f = net(images)
    assert f.shape == (3, 2048) and torch.isfinite(f).all()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MetricsError, match="Inception weights not found.*--inception-weights"):
        find_inception_weights()
    cached = metrics.inception_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights.read_bytes())
    assert find_inception_weights() == cached
    with pytest.raises(MetricsError, match="no such file"):
        InceptionFeatures(tmp_path / "missing.pth")
    (tmp_path / "text.pth").write_text("not weights")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "other.pth")
    for wrong in ("text.pth", "other.pth"):
        with pytest.raises(MetricsError, match="not torch-fidelity's Inception-v3 weights"):
            InceptionFeatures(tmp_path / wrong)


def test_eval_end_to_end_on_a_tiny_run(run_dir, tmp_path):
    from lrgan_edge.evaluation import METRICS_FILE, evaluate
    weights = fake_inception_weights(tmp_path / "inception.pth")
    messages = []
    record = evaluate(run_dir, "synthetic:longrange:24", num=12, inception_weights=weights, on_message=messages.append)
    assert record["fid"] >= 0 and record["num_fake"] == 12 and record["step"] == 2
    assert "copy check skipped" in messages[-1]                       # the run trained on synthetic:longrange:16
    assert 0.9 < record["consistency"]["real"] <= 1.0 and record["consistency"]["fake"] < 0.9
    assert "at 32x32 (the run's size)" in messages[0] and not any("resized" in m for m in messages)
    staged = evaluate(run_dir, "synthetic:longrange:24", num=12, inception_weights=weights, seed=1, per_stage=True,
                      on_message=messages.append)
    assert list(staged["stages"]) == ["16", "32"] and staged["stages"]["32"]["fid"] == pytest.approx(staged["fid"])
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["seed"] == 1          # appended, not overwritten
    with pytest.raises(MetricsError, match="--num 30 but synthetic:longrange:24 holds only 24"):
        evaluate(run_dir, "synthetic:longrange:24", num=30, inception_weights=weights, on_message=messages.append)


def test_eval_cli_bad_input_gets_one_line(run_dir, tmp_path):
    from .test_cli import assert_one_line_error, cli
    assert_one_line_error(cli("eval", run_dir, "--data", "synthetic:longrange:8", "--num", 4,
                              "--inception-weights", tmp_path / "missing.pth"), "no such file")
    assert_one_line_error(cli("eval", tmp_path / "nowhere", "--data", "synthetic:longrange:8"), "does not exist")


def test_eval_every_during_training_leaves_training_unchanged(tmp_path):
    from lrgan_edge.checkpoint import read_checkpoint
    from lrgan_edge.rundir import run_training
    weights = fake_inception_weights(tmp_path / "inception.pth")
    quiet = dict(on_message=lambda m: None)
    plain, evaluated = tmp_path / "plain", tmp_path / "eval"
    run_training("synthetic:longrange:16", plain, "tiny", {"train.steps": 4}, **quiet)
    run_training("synthetic:longrange:16", evaluated, "tiny",
                 {"train.steps": 4, "train.eval_every": 2, "train.eval_num": 8}, inception_weights=weights, **quiet)
    records = [json.loads(line) for line in (evaluated / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4] and all(r["fid"] >= 0 and r["num_fake"] == 8 for r in records)
    a, b = read_checkpoint(plain)[1], read_checkpoint(evaluated)[1]
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("G.", "D.")))   # evaluation moved no RNG
    assert not (plain / "metrics.jsonl").exists()
    with pytest.raises(MetricsError, match="no such file"):              # missing weights stop before training
        run_training("synthetic:longrange:16", tmp_path / "x", "tiny", {"train.eval_every": 2},
                     inception_weights=tmp_path / "none.pth", **quiet)
    assert not (tmp_path / "x" / "checkpoint.safetensors").exists()


def test_copy_check_tells_a_copy_from_a_new_image(run_dir):
    from lrgan_edge.checkpoint import load_generator, read_checkpoint
    from lrgan_edge.data import load_images
    from lrgan_edge.evaluation import copy_check, evaluate
    G = load_generator(run_dir)
    _, tensors, state, _ = read_checkpoint(run_dir)
    reals = load_images(state["data"], G.img_resolution)
    index = tensors["meta_bank_index"]
    assert len(index) == len(G.meta_bank) and int(index.max()) < len(reals)
    honest = copy_check(G, reals, index, n=8)
    assert honest["rms_to_meta_image"] > 0.05 and 0 <= honest["closer_to_meta_image"] <= 1

    class Copier(torch.nn.Module):                    # "generates" exactly the training image of its bank row
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))
            self.meta_bank, self.z_dim = G.meta_bank, G.z_dim

        def forward(self, z, meta):
            rows = [int((G.meta_bank == m).all(dim=1).nonzero()[0]) for m in meta]
            return reals.images[index[rows]].float() / 127.5 - 1

    copied = copy_check(Copier(), reals, index, n=8)
    assert copied["rms_to_meta_image"] < 1e-6 and copied["closer_to_meta_image"] == 1.0
    record = evaluate(run_dir, state["data"], num=8, inception_weights=fake_inception_weights(run_dir / "w.pth"),
                      on_message=lambda m: None)
    assert record["copy_check"]["samples"] == 8


def test_eval_on_images_of_another_size_resizes_and_says_so(run_dir, tmp_path):
    from PIL import Image
    from lrgan_edge.evaluation import evaluate
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(10):
        Image.new("RGB", (48, 40), (i * 20, 50, 90)).save(folder / f"{i}.png")
    Image.new("RGB", (32, 32)).save(folder / "exact.png")
    messages = []
    record = evaluate(run_dir, str(folder), num=11, inception_weights=fake_inception_weights(tmp_path / "w.pth"),
                      on_message=messages.append)
    assert record["resolution"] == 32 and record["num_real"] == 11
    note = next(m for m in messages if "resized" in m)
    assert "10 of 11 images" in note and "not 32x32 (most common: 48x40)" in note and "centre-cropped to 32x32" in note


def test_pairwise_rms_measures_variety():
    from lrgan_edge.evaluation import pairwise_rms
    same = torch.full((6, 3, 8, 8), 0.3)
    assert pairwise_rms(same) == pytest.approx(0.0, abs=1e-6)
    black_white = torch.stack([torch.zeros(3, 8, 8), torch.full((3, 8, 8), 255.0)]).to(torch.uint8)
    assert pairwise_rms(black_white) == pytest.approx(1.0, rel=1e-4)               # uint8: 0..255
    assert pairwise_rms(torch.stack([-torch.ones(3, 4, 4), torch.ones(3, 4, 4)])) == pytest.approx(1.0, rel=1e-4)
    mixed = torch.cat([black_white, black_white[:1]])                              # 2 of 3 pairs differ
    assert pairwise_rms(mixed) == pytest.approx(2 / 3, rel=1e-4)

import os
import signal

import pytest
import torch

from lrgan_edge.checkpoint import CHECKPOINT_NAME, read_checkpoint
from lrgan_edge.errors import ConfigError, RunDirError, TrainingError
from lrgan_edge.rundir import run_training

DATA = "synthetic:longrange:24"
quiet = dict(on_message=lambda m: None)


def weights(run_dir):
    _, tensors, state, _ = read_checkpoint(run_dir)
    return tensors, state


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_training(DATA, straight, "tiny", {"train.steps": 4}, **quiet)
    run_training(DATA, split, "tiny", {"train.steps": 2}, **quiet)
    result = run_training(None, split, None, {"train.steps": 4}, resume=True, **quiet)
    assert result.step == 4
    a, state_a = weights(straight)
    b, state_b = weights(split)
    assert state_a["sampler"] == state_b["sampler"]
    assert a.keys() == b.keys()
    for key in a:
        if key != "rng.torch":
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    log = (split / "log.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in log] == [1, 2, 3, 4]


def test_training_changes_weights_and_ema_lags(tmp_path):
    run_training(DATA, tmp_path, "tiny", {"train.steps": 3}, **quiet)
    t, _ = weights(tmp_path)
    torch.manual_seed(0)
    from lrgan_edge import PRESETS, build_generator
    init = build_generator(PRESETS["tiny"]).state_dict()
    w, w_ema, w0 = t["G.fc.0.weight"], t["G_ema.fc.0.weight"], init["fc.0.weight"]
    assert not torch.equal(w, w0)
    # The EMA sits between the start and the current weights.
    assert 0 < (w_ema - w0).norm() < (w - w0).norm()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    run_training(DATA, tmp_path, "tiny", {"train.steps": 2}, **quiet)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    import lrgan_edge.training as training
    real = training.discriminator_loss
    monkeypatch.setattr(training, "discriminator_loss", lambda r, f: real(r, f) * float("nan"))
    with pytest.raises(TrainingError, match=r"non-finite loss at step 3 \(loss_d=nan.*last good checkpoint \(step 2\)"):
        run_training(None, tmp_path, None, {"train.steps": 4}, resume=True, **quiet)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_and_stops(tmp_path, sig):
    before = signal.getsignal(sig)

    def on_progress(phase, total):
        if phase == "train":
            return lambda step, values: os.kill(os.getpid(), sig) if step == 1 else None
        return lambda n: None
    result = run_training(DATA, tmp_path, "tiny", {"train.steps": 50, "train.checkpoint_every": 100},
                          on_progress=on_progress, **quiet)
    assert result.stopped_by == sig.name and result.step == 1
    assert weights(tmp_path)[1]["step"] == 1                             # saved although not a checkpoint step
    assert signal.getsignal(sig) is before                               # handlers restored


def test_time_limit_stops_after_that_much_training_and_saves(tmp_path):
    result = run_training(DATA, tmp_path, "tiny", {"train.steps": 10**6, "train.max_train_s": 0.3,
                                                   "train.checkpoint_every": 10**6}, **quiet)
    assert result.stopped_by == "time limit" and 0 < result.step < 10**6 and result.elapsed_s >= 0.3
    _, state = weights(tmp_path)
    assert state["step"] == result.step and state["elapsed_s"] == pytest.approx(result.elapsed_s)
    again = run_training(None, tmp_path, None, {}, resume=True, **quiet)          # budget spent: no more steps
    assert again.step == result.step and again.stopped_by == "time limit"
    more = run_training(None, tmp_path, None, {"train.max_train_s": result.elapsed_s + 0.3}, resume=True, **quiet)
    assert more.step > result.step and more.stopped_by == "time limit"
    with pytest.raises(ConfigError, match="max_train_s=-1: must be >= 0"):
        run_training(DATA, tmp_path / "neg", "tiny", {"train.max_train_s": -1}, **quiet)


def test_refuses_to_overwrite_another_run(tmp_path):
    run_training(DATA, tmp_path, "tiny", {"train.steps": 1}, **quiet)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        run_training(DATA, tmp_path, "tiny", {"train.steps": 1}, **quiet)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    run_training(DATA, tmp_path, "tiny", {"train.steps": 2, "train.seed": 5}, overwrite=True, **quiet)
    assert weights(tmp_path)[1]["step"] == 2


def test_refuses_non_run_folder_and_model_change_on_resume(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(RunDirError, match="not empty and holds no lrgan-edge run"):
        run_training(DATA, tmp_path, "tiny", {}, overwrite=True, **quiet)
    run = tmp_path / "run"
    run_training(DATA, run, "tiny", {"train.steps": 1}, **quiet)
    with pytest.raises(ConfigError, match="cannot change model.z_dim"):
        run_training(None, run, None, {"model.z_dim": 3}, resume=True, **quiet)

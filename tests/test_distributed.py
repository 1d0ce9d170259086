"""Scale-out and fault survival: DDP on gloo with 2 CPU processes, kill -9, SIGTERM, a full disk."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from lrgan_edge import checkpoint as ckpt
from lrgan_edge.checkpoint import CHECKPOINT_NAME, read_checkpoint
from lrgan_edge.distributed import check_ranks_agree, digest
from lrgan_edge.errors import TrainingError
from lrgan_edge.rundir import run_training

DATA = "synthetic:longrange:24"
quiet = dict(on_message=lambda m: None)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def logged_steps(run_dir):
    """Steps in log.jsonl; a line torn by kill -9 is ignored."""
    steps = []
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            pass
    return steps


def train_process(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "lrgan_edge", "train", "--data", DATA, "--preset", "tiny",
                             "--out", str(out), *map(str, extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)


def wait_for(predicate, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def assert_same_training_state(a_dir, b_dir):
    a, b = read_checkpoint(a_dir)[1], read_checkpoint(b_dir)[1]
    assert a.keys() == b.keys()
    for key in a:
        if key != "rng.torch":
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_two_gloo_processes_stay_identical_and_a_single_process_resumes(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lrgan_edge",
           "train", "--data", DATA, "--preset", "tiny", "--out", str(out), "--steps", "3",
           "--set", "r1_gamma=1", "--set", "r1_every=2"]               # R1's double backward goes through DDP too
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 processes (gloo), 2 images each per step" in result.stdout
    assert result.stdout.count("done: 3 steps") == 1                     # rank 0 alone speaks
    _, tensors, state, _ = read_checkpoint(out)
    assert state["step"] == 3 and state["world_size"] == 2
    assert len(state["rank_digests"]) == 2 and len(set(state["rank_digests"])) == 1   # bit-identical ranks
    assert not torch.equal(tensors["rng.noise"], tensors["rng.noise.rank1"])         # each rank its own noise
    assert logged_steps(out) == [1, 2, 3]                                # one writer
    messages = []
    resumed = run_training(None, out, None, {"train.steps": 5}, resume=True, on_message=messages.append)
    assert resumed.step == 5 and read_checkpoint(out)[2]["world_size"] == 1
    assert any("trained by 2 process(es), now 1" in m for m in messages)


def test_rank_divergence_is_caught():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert digest(a) == digest(b)
    check_ranks_agree([digest(a), digest(b)], step=7)
    with torch.no_grad():
        b.bias[0] += 1e-7                                                   # one ulp-sized change is enough
    with pytest.raises(TrainingError, match="ranks' weights differ at step 7"):
        check_ranks_agree([digest(a), digest(b)], step=7)


def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(tmp_path):
    seed = random.randrange(10**6)
    delay = random.Random(seed).uniform(0.0, 1.5)                         # a random moment, reported on failure
    killed = tmp_path / "killed"
    proc = train_process(killed, "--steps", 100000, "--checkpoint-every", 2, "--sample-every", 100000)
    wait_for(lambda: (killed / CHECKPOINT_NAME).exists(), proc)
    time.sleep(delay)
    proc.kill()                                                             # SIGKILL: no handler runs
    proc.wait()
    _, _, state, _ = read_checkpoint(killed)                                # never torn
    lost = max(logged_steps(killed)) - state["step"]
    assert 0 <= lost <= 2, f"lost {lost} steps (seed {seed}, delay {delay:.2f} s)"
    (killed / f".{CHECKPOINT_NAME}.tmp-99999").write_bytes(b"half a checkpoint")   # as a kill mid-write leaves
    target = state["step"] + 2                  # same thread count throughout (ENV): bit-identical arithmetic
    resumed = subprocess.run([sys.executable, "-m", "lrgan_edge", "train", "--resume", str(killed), "--steps",
                              str(target)], capture_output=True, text=True, env=ENV, timeout=300)
    assert resumed.returncode == 0 and f"done: {target} steps" in resumed.stdout, resumed.stdout + resumed.stderr
    assert not list(killed.glob(".*.tmp-*"))
    assert logged_steps(killed) == list(range(1, target + 1))             # records past the checkpoint retrained once
    straight = tmp_path / "straight"
    proc = train_process(straight, "--steps", target)
    assert proc.wait(timeout=300) == 0
    assert_same_training_state(straight, killed)                           # the kill cost nothing but time


def test_sigterm_saves_and_exits_zero_within_seconds(tmp_path):
    proc = train_process(tmp_path, "--steps", 100000, "--checkpoint-every", 100000, "--sample-every", 100000)
    wait_for(lambda: (tmp_path / "log.jsonl").exists() and len(logged_steps(tmp_path)) >= 2, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 0, output
    assert took < 10, f"took {took:.1f} s to stop"
    assert "stopped by SIGTERM" in output and "--resume" in output
    assert read_checkpoint(tmp_path)[2]["step"] == max(logged_steps(tmp_path))


def test_full_disk_stops_with_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run_training(DATA, tmp_path, "tiny", {"train.steps": 2}, **quiet)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    real_fsync = os.fsync

    def no_space(fd):                                # the disk fills up while training: checkpoints fail
        if CHECKPOINT_NAME in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)
    monkeypatch.setattr(ckpt.os, "fsync", no_space)
    with pytest.raises(TrainingError, match=r"cannot write the checkpoint in .* at step 4 \(No space left on device\); "
                                            r"the checkpoint of step 2 is kept; free disk space"):
        run_training(None, tmp_path, None, {"train.steps": 4}, resume=True, **quiet)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before and not list(tmp_path.glob(".*.tmp-*"))
    monkeypatch.undo()                                                      # space freed: the run goes on
    assert run_training(None, tmp_path, None, {"train.steps": 4}, resume=True, **quiet).step == 4


def test_gpus_flag_without_enough_gpus_is_one_line(tmp_path):
    from .test_cli import assert_one_line_error, cli
    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has the GPUs: --gpus 2 would train")
    assert_one_line_error(cli("train", "--data", DATA, "--preset", "tiny", "--out", tmp_path / "r", "--gpus", 2),
                          "--gpus 2 but", "CUDA device(s) are visible", "torchrun --nproc_per_node")
    assert not (tmp_path / "r").exists()

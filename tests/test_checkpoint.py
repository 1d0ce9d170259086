import pytest
import torch
from safetensors.torch import save_file

from lrgan_edge import load_generator
from lrgan_edge.checkpoint import CHECKPOINT_NAME, read_checkpoint
from lrgan_edge.errors import CheckpointError
from lrgan_edge.rundir import run_training

from .conftest import with_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_training("synthetic:longrange:16", out, "tiny", {"train.steps": 2}, on_message=lambda m: None)
    return out


def test_run_directory_contents(run_dir):
    assert (run_dir / CHECKPOINT_NAME).is_file() and (run_dir / "config.json").is_file()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["meta_images.png", "step_0000000.png", "step_0000002.png"]
    cfg, tensors, state, header = read_checkpoint(run_dir)
    assert cfg.preset == "tiny" and state["step"] == 2 and state["data"] == "synthetic:longrange:16"
    assert header["package_version"] and tensors["meta_bank"].shape == (8, 512)
    assert not list(run_dir.glob(".*tmp*"))                       # atomic writes leave no temp file


def test_load_generator_restores_ema_in_eval_mode(run_dir):
    cfg, tensors, _, _ = read_checkpoint(run_dir)
    G = load_generator(run_dir)
    assert not G.training and G.metadata_source == "random-init" and G.meta_bank.shape == (8, 512)
    torch.testing.assert_close(G.fc[0].weight, tensors["G_ema.fc.0.weight"])
    assert not torch.equal(tensors["G_ema.fc.0.weight"], tensors["G.fc.0.weight"])
    raw = load_generator(run_dir / CHECKPOINT_NAME, ema=False)
    torch.testing.assert_close(raw.fc[0].weight, tensors["G.fc.0.weight"])
    assert G.sample(2).shape == (2, 3, 32, 32)


def test_truncated_checkpoint(run_dir, tmp_path):
    bad = tmp_path / CHECKPOINT_NAME
    data = (run_dir / CHECKPOINT_NAME).read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load_generator(tmp_path)


def test_foreign_and_missing_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_generator(tmp_path)
    save_file({"weight": torch.zeros(3)}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="not an lrgan-edge checkpoint"):
        load_generator(tmp_path)
    (tmp_path / CHECKPOINT_NAME).write_text("hello")
    with pytest.raises(CheckpointError, match="truncated or not a safetensors"):
        load_generator(tmp_path)


def test_mismatched_checkpoint(run_dir, tmp_path, tiny, monkeypatch):
    """Weights that don't fit the config (here: a config edited by hand) give one clear error."""
    import lrgan_edge.checkpoint as ckpt
    real_read = ckpt.read_checkpoint

    def edited(path):
        cfg, tensors, state, header = real_read(path)
        return with_model(cfg, g_channels_4x4=64), tensors, state, header
    monkeypatch.setattr(ckpt, "read_checkpoint", edited)
    with pytest.raises(CheckpointError, match="do not match its config .*shape differs"):
        load_generator(run_dir)

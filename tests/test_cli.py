"""The real `lrgan-edge` command, run as a subprocess."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from lrgan_edge.checkpoint import CHECKPOINT_NAME


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lrgan_edge", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for i in range(6):
        Image.new("RGB", (40, 40), (40 * i, 100, 200 - 30 * i)).save(root / f"img{i}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    return root


@pytest.fixture(scope="module")
def trained(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = cli("train", "--data", image_folder, "--preset", "tiny", "--out", out, "--steps", 2,
                 "--set", "lr_d=1e-4")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 unreadable image file(s)" in result.stdout
    assert "done: 2 steps" in result.stdout
    return out


def test_presets_json():
    result = cli("presets", "--json")
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"paper-ffhq", "paper-cub", "demo", "tiny"} <= set(rows)
    assert 6.3e6 <= rows["paper-ffhq"]["nop_g"] <= 7.7e6 and 6.84e6 <= rows["paper-ffhq"]["nop_d"] <= 8.36e6
    assert rows["paper-cub"]["lrm_resolution"] == 64


def test_train_then_sample(trained, tmp_path, image_folder):
    config = json.loads((trained / "config.json").read_text())
    assert config["train"]["lr_d"] == 1e-4 and config["preset"] == "tiny" and config["data"] == str(image_folder)
    grid = tmp_path / "grid.png"
    result = cli("sample", trained, "-n", 4, "--seed", 1, "--out", grid, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    with Image.open(grid) as img:
        assert img.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)     # 2x2 grid of 32px images, 2px padding
    meta_grid = tmp_path / "meta.png"
    result = cli("sample", trained, "-n", 2, "--out", meta_grid, "--meta-image", image_folder / "img0.png")
    assert result.returncode == 0 and meta_grid.is_file(), result.stderr


def test_resume_extends_a_run(trained, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    result = cli("train", "--resume", run, "--steps", 3)
    assert result.returncode == 0, result.stderr
    assert "resumed" in result.stdout and "done: 3 steps" in result.stdout


def test_bad_inputs_get_one_line(trained, tmp_path, image_folder):
    before = (trained / CHECKPOINT_NAME).read_bytes()
    assert_one_line_error(cli("train", "--data", tmp_path / "missing", "--preset", "tiny", "--out", tmp_path / "o"),
                          "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("train", "--data", tmp_path / "empty", "--preset", "tiny", "--out", tmp_path / "o"),
                          "no image files", "empty")
    assert_one_line_error(cli("train", "--data", image_folder, "--preset", "huge", "--out", tmp_path / "o"),
                          "unknown preset 'huge'", "paper-ffhq")
    assert_one_line_error(cli("train", "--data", image_folder, "--preset", "tiny", "--out", trained),
                          "already holds a run", "--resume")
    assert_one_line_error(cli("train", "--data", image_folder, "--preset", "tiny", "--out", tmp_path / "o",
                              "--set", "model.lrm_size=2"), "unknown config key", "model.lrm_resolution")
    assert (trained / CHECKPOINT_NAME).read_bytes() == before     # nothing overwritten
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CHECKPOINT_NAME).write_bytes(before[:1000])
    assert_one_line_error(cli("sample", broken, "-n", 1, "--out", tmp_path / "g.png"), "truncated")
    assert_one_line_error(cli("train", "--resume", broken), "truncated")
    assert_one_line_error(cli("sample", tmp_path / "nowhere"), "does not exist")


def test_export_command(trained, tmp_path):
    out = tmp_path / "export"
    result = cli("export", trained, "--target", "onnx", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "parity ok" in result.stdout and (out / "tiny.onnx").is_file() and (out / "manifest.json").is_file()
    assert_one_line_error(cli("export", trained, "--target", "tflite", "--out", tmp_path / "x"),
                          "unknown target 'tflite'", "onnx, executorch, coreml, all")
    assert_one_line_error(cli("export", trained, "--target", "onnx", "--out", out), "already holds an export")

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from lrgan_edge.data import EpochSampler, load_images, stage_pyramid, to_float
from lrgan_edge.errors import DataError
from lrgan_edge.synthetic import longrange_consistency, render_longrange


def make_folder(root):
    """Good images of every supported format and odd mode, plus broken files."""
    (root / "nested" / "deeper").mkdir(parents=True)
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)          # red left third, cropped away by the centre crop
    rgb[:, 20:40] = (0, 255, 0)        # green centre, kept
    Image.fromarray(rgb).save(root / "wide.png")
    Image.fromarray(rgb).save(root / "photo.jpg", quality=95)
    Image.fromarray(rgb).save(root / "nested" / "pic.webp")
    Image.fromarray(rgb).save(root / "nested" / "deeper" / "pic.BMP")
    Image.fromarray(np.full((16, 16), 128, np.uint8), mode="L").save(root / "gray.png")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(root / "sixteen.png")        # 16-bit grayscale
    Image.new("RGBA", (16, 16), (0, 0, 255, 255)).save(root / "alpha.png")
    Image.new("P", (16, 16), 3).save(root / "palette.png")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(root / "cmyk.jpg")                  # print-shop JPEG: red
    Image.new("1", (16, 16), 1).save(root / "bilevel.png")
    Image.new("1", (20000, 10000)).save(root / "huge.png")        # 200 Mpx: a decompression bomb, refused
    good = (root / "wide.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    (root / "notes.txt").write_text("ignored: not an image extension")
    return 10, 4


def test_folder_with_every_format_and_broken_files(tmp_path):
    n_good, n_bad = make_folder(tmp_path)
    data = load_images(str(tmp_path), 16)
    assert data.images.shape == (n_good, 3, 16, 16) and data.images.dtype == torch.uint8
    assert len(data.skipped) == n_bad
    assert f"skipped {n_bad} unreadable" in data.skipped_summary()
    by_name = dict(zip(data.names, data.images))
    wide = by_name["wide.png"]
    assert wide[1, 8, 8] == 255 and wide[0, 8, 8] == 0          # centre crop keeps the green centre
    assert wide[0, :, 0].float().mean() > 100                    # ... and a little of the red edge
    assert abs(int(by_name["sixteen.png"][0, 0, 0]) - round(40000 / 65535 * 255)) <= 1
    assert by_name["alpha.png"][:, 0, 0].tolist() == [0, 0, 255]
    assert by_name["gray.png"][:, 0, 0].tolist() == [128, 128, 128]
    assert "nested/deeper/pic.BMP" in by_name
    assert by_name["cmyk.jpg"][:, 8, 8].tolist()[0] > 200 and by_name["cmyk.jpg"][1:, 8, 8].max() < 60
    assert by_name["bilevel.png"].min() == 255
    assert "huge.png" in dict(data.skipped) and "decompression bomb" in dict(data.skipped)["huge.png"].lower()


def test_training_proceeds_on_the_good_images_and_lists_the_rest(tmp_path):
    n_good, n_bad = make_folder(tmp_path / "mixed")
    messages = []
    from lrgan_edge.rundir import SKIPPED_FILES, run_training
    result = run_training(str(tmp_path / "mixed"), tmp_path / "run", "tiny", {"train.steps": 1},
                          on_message=messages.append)
    assert result.step == 1
    assert any(f"skipped {n_bad} unreadable" in m and SKIPPED_FILES in m for m in messages)
    listed = dict(line.split("\t") for line in (tmp_path / "run" / SKIPPED_FILES).read_text().splitlines())
    assert set(listed) == {"truncated.png", "empty.jpg", "text.png", "huge.png"}
    assert any(f"data: {n_good} images" in m for m in messages)


def test_zip_of_a_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    n_good, n_bad = make_folder(src)
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in src.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(src))
    data = load_images(str(archive), 8)
    assert len(data) == n_good and len(data.skipped) == n_bad
    torch.testing.assert_close(data.images, load_images(str(src), 8).images)


def test_bad_data_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_images(str(tmp_path / "nope"), 16)
    with pytest.raises(DataError, match=f"no image files .* found in {tmp_path}"):
        load_images(str(tmp_path), 16)
    (tmp_path / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="none of the 1 image files"):
        load_images(str(tmp_path), 16)
    with pytest.raises(DataError, match="synthetic:longrange"):
        load_images("synthetic:stripes", 16)


def test_synthetic_is_deterministic_and_mirrored():
    a = render_longrange(4, 32, seed=3)
    np.testing.assert_array_equal(a, render_longrange(4, 32, seed=3))
    assert not np.array_equal(a, render_longrange(4, 32, seed=4))
    np.testing.assert_array_equal(a, a[:, :, ::-1])               # exact mirror about the vertical centre
    data = load_images("synthetic:longrange:6:3", 32)
    assert len(data) == 6
    np.testing.assert_array_equal(data.images[:4].permute(0, 2, 3, 1).numpy(), a)


def test_consistency_score_separates_real_from_broken():
    real = to_float(load_images("synthetic:longrange:64", 32).images)
    assert longrange_consistency(real).mean() > 0.99
    noise = torch.rand_like(real) * 2 - 1
    assert longrange_consistency(noise).mean().abs() < 0.05
    one_sided = real.clone()
    one_sided[..., 16:] = one_sided[..., 16:].mean(dim=(2, 3), keepdim=True)   # erase the mirrored shape
    assert longrange_consistency(one_sided).mean() < 0.2
    shifted = real.clone()
    shifted[..., 16:] = torch.roll(real[..., 16:], shifts=8, dims=2)       # right shape at the wrong height
    assert longrange_consistency(shifted).mean() < longrange_consistency(real).mean() - 0.3
    assert float(longrange_consistency(torch.zeros(1, 3, 8, 8))) == 0.0


def test_stage_pyramid():
    x = torch.rand(2, 3, 32, 32)
    small, full = stage_pyramid(x, (16, 32))
    assert small.shape == (2, 3, 16, 16) and full is x
    torch.testing.assert_close(small[0, :, 0, 0], x[0, :, :2, :2].mean((1, 2)))


def test_epoch_sampler_covers_shards_and_restores():
    s = EpochSampler(10, seed=1)
    first = torch.cat([s.next(3) for _ in range(3)] + [s.next(1)])
    assert sorted(first.tolist()) == list(range(10))             # one epoch covers every image once
    ranks = [EpochSampler(10, seed=1, rank=r, world_size=2).next(5) for r in range(2)]
    assert sorted(torch.cat(ranks).tolist()) == list(range(10))   # ranks are disjoint shards
    a = EpochSampler(10, seed=2)
    a.next(7)
    b = EpochSampler(10, seed=2)
    b.load_state(a.state())
    torch.testing.assert_close(a.next(9), b.next(9))

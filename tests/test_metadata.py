import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from lrgan_edge.errors import MetadataError
from lrgan_edge.metadata import MetadataEncoder, vgg16_features


def test_random_init_is_deterministic_and_image_dependent():
    a, b = MetadataEncoder("random-init"), MetadataEncoder("random-init")
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    ma = a(x)
    assert ma.shape == (3, 512)
    torch.testing.assert_close(ma, b(x))
    assert not torch.allclose(ma[0], ma[1])
    assert not any(p.requires_grad for p in a.parameters())


def test_none_is_zeros():
    assert MetadataEncoder("none")(torch.rand(2, 3, 32, 32)).abs().sum() == 0


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_from_a_file(tmp_path, suffix):
    torch.manual_seed(5)
    state = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}   # as in a full vgg16()
    path = tmp_path / f"vgg16{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    enc = MetadataEncoder(str(path))
    torch.testing.assert_close(enc.features[0].weight, state["features.0.weight"])
    torch.testing.assert_close(enc.features[28].bias, state["features.28.bias"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert not torch.allclose(enc(x), MetadataEncoder("random-init")(x))


def test_global_average_of_relu5_3():
    enc = MetadataEncoder("random-init")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    feats = enc.features(((x + 1) / 2 - enc.mean) / enc.std)
    assert feats.shape == (2, 512, 4, 4)
    torch.testing.assert_close(enc(x), feats.mean((2, 3)))


def test_imagenet_weights_unavailable_is_an_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(MetadataError, match=r"not in the torch cache .*vgg16-397923af\.pth.*random-init"):
        MetadataEncoder("imagenet")


def test_imagenet_weights_from_the_cache(monkeypatch, tmp_path):
    """The real loader reads torchvision's cache file when it is there (here: weights the test makes)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(7)
    state = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    torch.save(state, cache / "vgg16-397923af.pth")
    enc = MetadataEncoder("imagenet")
    torch.testing.assert_close(enc.features[2].weight, state["features.2.weight"])


def test_bad_sources(tmp_path):
    with pytest.raises(MetadataError, match="neither a file nor one of imagenet, random-init, none"):
        MetadataEncoder("imagenett")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not weights")
    with pytest.raises(MetadataError, match="cannot read VGG-16 weights"):
        MetadataEncoder(str(junk))
    other = tmp_path / "other.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(MetadataError, match="not a VGG-16 state dict"):
        MetadataEncoder(str(other))

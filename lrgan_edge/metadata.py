"""Metadata of the paper §3.3 / appendix A: global VGG-16 relu5_3 features of a real image (DESIGN §6).

Sources, chosen by name and reported in every output that depends on them:
- "imagenet":    torchvision's ImageNet weights, from its cache or a download; an error saying how
                 to provide them when neither works, never a silent fallback.
- a file path:   a VGG-16 state dict (.pth or .safetensors), full model or `features` only.
- "random-init": a weight-free encoder with fixed, seeded random weights (tests, offline demos).
- "none":        zeros, the paper's "w/o Meta" ablation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import MetadataError

RELU5_3 = 30          # vgg16().features[:30] ends with the ReLU after conv5_3
META_DIM = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NAMED_SOURCES = ("imagenet", "random-init", "none")


class MetadataEncoder(nn.Module):
    """Frozen: images in [-1, 1], (B, 3, H, W) with H, W >= 32 -> (B, 512) metadata."""

    def __init__(self, source: str = "imagenet") -> None:
        super().__init__()
        self.source = source
        self.features: nn.Module | None = None
        if source != "none":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)   # "random-init" is the same encoder on every machine
                self.features = vgg16_features()
            if source != "random-init":
                self.features.load_state_dict(_load_vgg_features(source))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "MetadataEncoder":
        return super().train(False)   # frozen: always in eval mode

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            return images.new_zeros(images.shape[0], META_DIM)
        x = ((images.float() + 1) / 2 - self.mean) / self.std     # ImageNet normalisation
        return self.features(x).mean(dim=(2, 3))                     # (B, 512): global average of relu5_3

    @torch.no_grad()
    def encode_batched(self, images_u8: torch.Tensor, batch_size: int = 64, device: str | torch.device = "cpu",
                       progress=None) -> torch.Tensor:
        """Metadata of uint8 images (N, 3, H, W), in batches; returns (N, 512) float32 on the CPU."""
        self.to(device)
        out = []
        for i in range(0, len(images_u8), batch_size):
            batch = images_u8[i:i + batch_size].to(device).float() / 127.5 - 1
            out.append(self(batch).float().cpu())
            if progress is not None:
                progress(len(batch))
        return torch.cat(out) if out else torch.zeros(0, META_DIM)


def vgg16_features() -> nn.Sequential:
    """torchvision's VGG-16 `features[:30]` (up to relu5_3) with its initialisation, without the
    120 M-parameter classifier that a full `vgg16()` would build and throw away."""
    from torchvision.models.vgg import cfgs, make_layers
    features = make_layers(cfgs["D"])[:RELU5_3]
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


def _load_vgg_features(source: str) -> dict[str, torch.Tensor]:
    if source == "imagenet":
        state = _imagenet_state_dict()
    else:
        state = _file_state_dict(Path(source))
    feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.") or k[0].isdigit()}
    wanted = {k: v for k, v in feats.items() if int(k.split(".")[0]) < RELU5_3}
    if len(wanted) != 26:   # 13 convolutions, weight and bias each
        raise MetadataError(f"metadata weights {source!r} are not a VGG-16 state dict (found {len(wanted)} of the 26 "
                            f"conv tensors of features[:30]); pass torchvision's vgg16 weights")
    return wanted


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights
    url = VGG16_Weights.IMAGENET1K_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    try:
        return torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to get the weights gets the same instructions
        raise MetadataError(
            f"VGG-16 ImageNet weights are not in the torch cache ({cached}) and could not be downloaded "
            f"({type(exc).__name__}); copy {Path(url).name} there, or pass --metadata /path/to/vgg16.pth, "
            f"or --metadata random-init for a weight-free encoder") from None


def _file_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MetadataError(f"metadata source {str(path)!r} is neither a file nor one of {', '.join(NAMED_SOURCES)}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise MetadataError(f"cannot read VGG-16 weights from {path} ({exc}); pass a .pth or .safetensors state dict") from None

"""Image-quality metrics: FID and KID (torchmetrics, on torch-fidelity's Inception-v3 features).

Inception weights are torch-fidelity's `weights-inception-2015-12-05-6726825d.pth` (the TF
Inception the FID paper used), taken from a file given by the user or from the torch hub cache
where torch-fidelity puts it; where neither exists we stop with the command that fetches it,
never download behind the user's back and never fall back to other weights.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from .errors import MetricsError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
INSTALL_HINT = "pip install 'lrgan-edge[eval]'  (torchmetrics, torch-fidelity)"


def inception_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The weights file to use: `path` if given, else torch-fidelity's cached download."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MetricsError(f"--inception-weights {path}: no such file")
        return path
    cached = inception_cache_path()
    if cached.is_file():
        return cached
    raise MetricsError(f"Inception weights not found at {cached}; download {INCEPTION_URL} there "
                       f"(e.g. curl -L --create-dirs -o {cached} {INCEPTION_URL}) or pass --inception-weights PATH")


class InceptionFeatures(nn.Module):
    """uint8 images [N, 3, H, W] -> 2048-d pool features of torch-fidelity's Inception-v3 (resized to 299 inside)."""

    num_features = 2048

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError:
            raise MetricsError(f"FID/KID need their extra: {INSTALL_HINT}") from None
        path = find_inception_weights(weights)
        try:
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=str(path))
        except (RuntimeError, OSError, KeyError, pickle.UnpicklingError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MetricsError(f"{path} is not torch-fidelity's Inception-v3 weights file ({first}); "
                               f"get {INCEPTION_URL}") from None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(images.shape[0], -1)          # (N, 2048)


class Features(nn.Module):
    """Identity on already-extracted features: one extraction then feeds both FID and KID."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def extract(images: torch.Tensor, extractor: nn.Module, batch: int = 64) -> torch.Tensor:
    """Features [N, D] (float64, CPU) of images fed in batches on the extractor's device."""
    device = next(extractor.parameters()).device
    return torch.cat([extractor(images[i:i + batch].to(device)).double().cpu() for i in range(0, len(images), batch)])


def fid_kid(real: torch.Tensor, fake: torch.Tensor, kid_subset: int = 1000, kid_subsets: int = 100,
            seed: int = 0) -> dict[str, float]:
    """FID and KID (mean and std over random subsets) between two feature sets [N, D] (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance
    d = real.shape[1]
    fid = FrechetInceptionDistance(feature=Features(d)).set_dtype(torch.float64)
    kid = KernelInceptionDistance(feature=Features(d), subset_size=min(kid_subset, len(real), len(fake)),
                                  subsets=kid_subsets).set_dtype(torch.float64)
    for metric in (fid, kid):
        metric.update(real.double(), real=True)
        metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):                   # KID draws its subsets at random
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std),
            "num_real": len(real), "num_fake": len(fake)}

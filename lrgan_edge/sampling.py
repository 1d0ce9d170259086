"""Images from a checkpoint: `lrgan-edge sample`."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import save_image

from .checkpoint import load_generator
from .data import decode_image, to_float
from .errors import DataError
from .metadata import MetadataEncoder
from .training import pick_device


def metadata_from_images(paths: list[Path], source: str, resolution: int, device: torch.device) -> torch.Tensor:
    """(len(paths), 512) metadata of user images, with the encoder the run was trained with."""
    arrays = []
    for p in paths:
        try:
            arrays.append(decode_image(Path(p).read_bytes(), resolution))
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot read meta-image {p} ({type(exc).__name__}); pass a png, jpg, webp or bmp file") from None
    images = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays])
    return MetadataEncoder(source).to(device)(to_float(images).to(device))


@torch.no_grad()
def generate(run_dir: Path, n: int, seed: int, meta_images: list[Path] | None = None,
             device: str = "auto") -> tuple[torch.Tensor, str]:
    """(n final-stage images in [-1, 1] on the CPU, the metadata source used)."""
    if n < 1:
        raise DataError(f"-n {n}: ask for at least one image")
    dev = pick_device(device)
    G = load_generator(run_dir, device=dev)
    if not meta_images:
        return G.sample(n=n, seed=seed).cpu(), f"{G.metadata_source} (bank of {0 if G.meta_bank is None else len(G.meta_bank)})"
    meta = metadata_from_images(meta_images, G.metadata_source, G.img_resolution, dev)
    meta = meta[torch.arange(n) % len(meta)]                      # cycle the given images over the grid
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(dev)
    return G(z, meta).cpu(), f"{G.metadata_source} (from {len(meta_images)} image(s))"


def sample_grid(run_dir: Path, n: int, seed: int, out: Path, meta_images: list[Path] | None = None,
                device: str = "auto") -> Path:
    images, _ = generate(run_dir, n, seed, meta_images, device)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(images * 0.5 + 0.5, out, nrow=math.ceil(math.sqrt(n)))
    return out

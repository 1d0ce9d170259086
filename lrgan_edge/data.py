"""Training data: an image folder, a zip of one, or the built-in synthetic set.

Images are decoded once, resized and centre-cropped to the output size, and cached in memory as
uint8 (N, 3, R, R): a training step then only gathers indices, so the model never waits on
decoding. Each stage's real images are the full-size batch downsampled on the device.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .errors import DataError
from .synthetic import DEFAULT_COUNT, render_longrange

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_KINDS = ("longrange",)


@dataclass
class ImageSet:
    images: torch.Tensor                 # (N, 3, R, R) uint8
    names: list[str]                     # where each image came from
    source: str                          # the spec it was loaded from
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (name, reason) of unreadable files
    source_sizes: dict[tuple[int, int], int] = field(default_factory=dict)  # (width, height) -> count, before resizing

    def __len__(self) -> int:
        return len(self.images)

    def skipped_summary(self) -> str | None:
        if not self.skipped:
            return None
        name, reason = self.skipped[0]
        return (f"skipped {len(self.skipped)} unreadable image file(s) in {self.source} "
                f"(first: {name}: {reason})")

    def resize_summary(self) -> str | None:
        """Say so when the source images were not already at the loaded size."""
        R = self.images.shape[-1]
        other = {size: n for size, n in self.source_sizes.items() if size != (R, R)}
        if not other:
            return None
        (w, h), _ = max(other.items(), key=lambda kv: kv[1])
        return (f"{sum(other.values())} of {len(self)} images in {self.source} are not {R}x{R} (most common: {w}x{h}); "
                f"resized (shorter side) and centre-cropped to {R}x{R}")


def load_images(spec: str, resolution: int, workers: int = 4) -> ImageSet:
    """A folder (recursive), a .zip, or `synthetic:longrange[:COUNT[:SEED]]`, at `resolution`."""
    if spec.startswith(SYNTHETIC_PREFIX):
        return _synthetic(spec, resolution)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"data path {spec} does not exist; pass a folder of images, a .zip of one, "
                        f"or synthetic:longrange")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        entries = [(str(p.relative_to(path)), p.read_bytes) for p in files]
    elif zipfile.is_zipfile(path):
        entries = _zip_entries(path)
    else:
        raise DataError(f"data path {spec} is neither a folder nor a zip file; pass a folder of images or a .zip of one")
    if not entries:
        raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {spec}; point --data at a folder "
                        f"that holds images")

    def decode(entry):
        name, read = entry
        try:
            return name, *decode_image(read(), resolution, with_size=True), None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return name, None, None, f"{type(exc).__name__}: {exc}".splitlines()[0][:120]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(decode, entries))
    good = [(n, a) for n, a, _, _ in results if a is not None]
    skipped = [(n, r) for n, a, _, r in results if a is None]
    sizes = Counter(size for _, a, size, _ in results if a is not None)
    if not good:
        raise DataError(f"none of the {len(entries)} image files in {spec} could be read "
                        f"(first: {skipped[0][0]}: {skipped[0][1]}); check the files or point --data elsewhere")
    images = torch.from_numpy(np.stack([a for _, a in good])).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, [n for n, _ in good], spec, skipped, dict(sizes))


def _zip_entries(path: Path):
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS and not n.endswith("/"))

    def reader(name):
        def read():
            with zipfile.ZipFile(path) as zf:   # one handle per read: safe across threads
                return zf.read(name)
        return read
    return [(n, reader(n)) for n in names]


def decode_image(data: bytes, resolution: int, with_size: bool = False):
    """Bytes of any common image -> (R, R, 3) uint8, resized (shorter side) and centre-cropped
    (and, `with_size`, the source's (width, height))."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        size = img.size
        img = _to_rgb(img)
        img = ImageOps.fit(img, (resolution, resolution), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
        arr = np.asarray(img, dtype=np.uint8)
    return (arr, size) if with_size else arr


def _to_rgb(img: Image.Image) -> Image.Image:
    """Grayscale, palette, alpha, 16-bit and float images to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "F" else max(float(arr.max()), 1.0)
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))   # transparent areas become white
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _synthetic(spec: str, resolution: int) -> ImageSet:
    parts = spec[len(SYNTHETIC_PREFIX):].split(":")
    kind = parts[0]
    if kind not in SYNTHETIC_KINDS or len(parts) > 3:
        raise DataError(f"unknown synthetic data set {spec!r}; use synthetic:longrange[:COUNT[:SEED]]")
    try:
        count = int(parts[1]) if len(parts) > 1 else DEFAULT_COUNT
        seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise DataError(f"bad synthetic data spec {spec!r}; COUNT and SEED are integers, "
                        f"e.g. synthetic:longrange:1024:0") from None
    if count < 1:
        raise DataError(f"synthetic data set {spec!r} needs COUNT >= 1")
    arr = render_longrange(count, resolution, seed)
    images = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, [f"{kind}-{seed}-{i}" for i in range(count)], spec)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images_u8.float() / 127.5 - 1.0


def stage_pyramid(images: torch.Tensor, resolutions: tuple[int, ...]) -> list[torch.Tensor]:
    """The real images each stage's discriminator sees: the batch area-downsampled to every stage size."""
    return [images if r == images.shape[-1] else F.interpolate(images, size=(r, r), mode="area")
            for r in resolutions]


class EpochSampler:
    """Indices of a shuffled epoch, sharded by rank, restartable from (epoch, position).

    Every rank draws the same permutation from (seed, epoch) and takes its own stride, as
    DistributedSampler does; the position within the epoch is part of the training state.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch, self.position = 0, 0
        self._order = self._permutation()

    def _permutation(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.size, generator=gen)
        usable = self.size - self.size % self.world_size         # equal shares: ranks turn epochs together
        return perm[:usable][self.rank::self.world_size]

    def next(self, batch_size: int) -> torch.Tensor:
        out = []
        while batch_size > 0:
            if self.position >= len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            take = self._order[self.position:self.position + batch_size]
            self.position += len(take)
            batch_size -= len(take)
            out.append(take)
        return torch.cat(out)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation()

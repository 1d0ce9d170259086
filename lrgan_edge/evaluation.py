"""`lrgan-edge eval`: FID / KID of a run's generator (EMA weights) against real images, appended
to `metrics.jsonl` in the run directory, plus the long-range consistency score on the synthetic data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .checkpoint import load_generator, read_checkpoint
from .data import ImageSet, load_images, stage_pyramid, to_float
from .errors import MetricsError
from .metrics import InceptionFeatures, extract, fid_kid
from .synthetic import longrange_consistency
from .training import METRICS_FILE



def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> [0, 255] uint8, as Inception expects."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def pairwise_rms(images: torch.Tensor, n: int = 256) -> float:
    """Mean RMS pixel distance (images in [0, 1]) between pairs of the first n images: how varied a set is.

    A generator that collapses to a few images scores near 0; divide by the real images' value
    for a ratio (1 = as varied as the data)."""
    x = images[:n].float().flatten(1)
    x = x / 255 if images.dtype == torch.uint8 else (x + 1) / 2
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    m = len(x)
    return float(d.sum() / max(m * (m - 1), 1))


@torch.no_grad()
def generate(G, n: int, seed: int, batch: int = 64) -> list[torch.Tensor]:
    """n images of every stage, uint8 [n, 3, R_k, R_k] per stage."""
    chunks = [G.sample(min(batch, n - i), seed=seed + i, all_stages=True) for i in range(0, n, batch)]
    return [torch.cat([to_uint8(c[k]).cpu() for c in chunks]) for k in range(len(chunks[0]))]


def training_evaluator(reals: ImageSet, num: int, inception_weights: str | Path | None, device: torch.device,
                       seed: int = 0, on_message=print):
    """`G -> {fid, kid, ...}` for `--eval-every`: Inception is loaded and the real features computed
    once, before training starts (so missing weights stop the run at once, not hours later)."""
    extractor = InceptionFeatures(inception_weights).to(device)
    n = min(num, len(reals))
    if n < num:
        on_message(f"note: --eval-num {num} but the data holds {len(reals)} images; evaluating on {n}")
    pick = torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed))[:n]
    real = extract(reals.images[pick], extractor)

    def evaluate_generator(G) -> dict:
        was_training = G.training
        result = fid_kid(real, extract(generate(G.eval(), n, seed)[-1], extractor))
        G.train(was_training)
        return result
    return evaluate_generator


@torch.no_grad()
def copy_check(G, reals: ImageSet, bank_index: torch.Tensor, n: int = 64, seed: int = 0) -> dict:
    """Does a sample copy the training image its metadata came from (paper §4.2)?

    For n samples, each generated from one bank row: the RMS pixel distance (images in [0, 1]) to
    that row's training image against the distance to the nearest *other* training image. A copy
    would sit far closer to its meta-image than to anything else.
    """
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(G.meta_bank), (n,), generator=gen)
    z = torch.randn(n, G.z_dim, generator=gen)
    device = next(G.parameters()).device
    fake = (G(z.to(device), G.meta_bank[rows].to(device)).float().cpu() + 1) / 2                 # (n, 3, R, R)
    real = reals.images.float() / 255                                                             # (N, 3, R, R)
    dist = torch.cat([torch.cdist(fake.flatten(1), chunk.flatten(1)) for chunk in real.split(1024)], dim=1)
    dist = dist / fake[0].numel() ** 0.5                                                          # RMS per pixel
    own = bank_index[rows]
    to_meta = dist[torch.arange(n), own]
    dist[torch.arange(n), own] = float("inf")
    to_other = dist.min(dim=1).values
    return {"samples": n, "rms_to_meta_image": round(float(to_meta.mean()), 4),
            "rms_to_nearest_other": round(float(to_other.mean()), 4),
            "closer_to_meta_image": round(float((to_meta < to_other).float().mean()), 3)}


def evaluate(run_dir: str | Path, data: str, num: int = 5000, inception_weights: str | Path | None = None,
             seed: int = 0, per_stage: bool = False, on_message=print) -> dict:
    """FID and KID of `num` generated images against `num` real ones (of the final stage, or of every
    stage against the real images area-downsampled to its size); the record is appended to metrics.jsonl."""
    if num < 2:
        raise MetricsError(f"--num {num}: FID needs at least 2 images per side")
    _, tensors, state, _ = read_checkpoint(run_dir)
    G = load_generator(run_dir)
    res = G.img_resolution
    reals = load_images(data, res)
    on_message(f"real images: {len(reals)} from {data} at {res}x{res} (the run's size)")
    for note in (reals.resize_summary(), reals.skipped_summary()):
        if note:
            on_message(f"note: {note}")
    if len(reals) < num:
        raise MetricsError(f"--num {num} but {data} holds only {len(reals)} readable images; "
                           f"lower --num to {len(reals)} or add images")
    start = time.perf_counter()
    extractor = InceptionFeatures(inception_weights)
    real = reals.images[torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed))[:num]]
    fakes = generate(G, num, seed)
    fake = fakes[-1]
    record = {"step": int(state.get("step", 0)), "data": data, "num": num, "seed": seed,
              "metadata": G.metadata_source, "resolution": res,
              **fid_kid(extract(real, extractor), extract(fake, extractor))}
    if per_stage:
        sizes = [f.shape[-1] for f in fakes]
        reals_k = [to_uint8(x) for x in stage_pyramid(to_float(real), tuple(sizes))]
        record["stages"] = {str(r): fid_kid(extract(rk, extractor), extract(fk, extractor))
                            for r, rk, fk in zip(sizes, reals_k, fakes)}
    if data.startswith("synthetic:longrange"):
        record["consistency"] = {"real": float(longrange_consistency(to_float(real)).mean()),
                                 "fake": float(longrange_consistency(to_float(fake)).mean())}
    if "meta_bank_index" in tensors and state.get("data") == data:     # bank rows index this very data
        record["copy_check"] = copy_check(G, reals, tensors["meta_bank_index"], n=min(64, num), seed=seed)
    else:
        on_message("copy check skipped: it needs the run's own --data and a checkpoint that records its bank rows")
    record["wall_s"] = round(time.perf_counter() - start, 1)
    with open(Path(run_dir) / METRICS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record

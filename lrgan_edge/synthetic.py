"""A built-in data set whose parts are coordinated across long distances, and its score.

Each image holds one bright shape on a dark plain background and the shape's mirror image on
the far side (mirrored about the vertical centre line), sharing colour, size and height. Local
convolutions see one shape at a time; drawing the pair consistently takes long-range
dependencies. `longrange_consistency` scores exactly that property.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch

DEFAULT_COUNT = 1024
SHAPES = ("disc", "square", "diamond")


def render_longrange(count: int, resolution: int, seed: int = 0) -> np.ndarray:
    """`count` images (count, R, R, 3) uint8; image i depends only on (seed, i, R)."""
    return np.stack([_render_one(np.random.default_rng([seed, i]), resolution) for i in range(count)])


def _render_one(rng: np.random.Generator, R: int) -> np.ndarray:
    bg = rng.uniform(0.0, 0.3, size=3)
    hue, sat, val = rng.uniform(), rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0)
    fg = np.array(colorsys.hsv_to_rgb(hue, sat, val))
    size = rng.uniform(0.09, 0.16) * R                      # radius / half-side in pixels
    cx = rng.uniform(size + 1, 0.44 * R - size)              # left shape, clear of the centre line
    cy = rng.uniform(size + 1, R - size - 1)
    kind = SHAPES[rng.integers(len(SHAPES))]
    ys, xs = np.mgrid[0:R, 0:R] + 0.5                        # pixel centres
    dx = np.minimum(np.abs(xs - cx), np.abs(xs - (R - cx)))  # distance to the shape or its mirror
    dy = np.abs(ys - cy)
    if kind == "disc":
        mask = dx ** 2 + dy ** 2 <= size ** 2
    elif kind == "square":
        mask = (dx <= size) & (dy <= size)
    else:
        mask = dx + dy <= size * 1.3
    img = np.where(mask[..., None], fg, bg)
    return np.round(img * 255).astype(np.uint8)


def longrange_consistency(images: torch.Tensor) -> torch.Tensor:
    """Per-image score in [-1, 1]: Pearson correlation of the left half with the mirrored right half.

    Real images score 1; independent left and right halves (noise, a shape drawn on one side
    only, or two unrelated shapes) score near 0. A half with no variation scores 0.
    Accepts (B, 3, H, W) in [-1, 1] float or uint8.
    """
    x = images.float()
    W = x.shape[-1]
    left = x[..., : W // 2].flatten(2)                       # (B, 3, H*W/2)
    right = x[..., W - W // 2:].flip(-1).flatten(2)
    left = (left - left.mean(2, keepdim=True)).flatten(1)    # centred per channel: colour casts don't count
    right = (right - right.mean(2, keepdim=True)).flatten(1)
    denom = left.norm(dim=1) * right.norm(dim=1)
    corr = (left * right).sum(1) / denom.clamp_min(1e-12)
    return torch.where(denom > 1e-6 * left.shape[1], corr, torch.zeros_like(corr))

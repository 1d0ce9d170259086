"""Objectives of the paper: Eq. 1 (colour consistency), Eq. 4 (generator), Eq. 5 (discriminator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """sum_k -1/2 E[log D_k(G_k)] (Eq. 4, first term): the non-saturating loss, summed over stages."""
    return sum(0.5 * F.softplus(-logit).mean() for logit in fake_logits)  # -log sigmoid(l) = softplus(-l)


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """sum_k -1/2 E[log D_k(I_k)] - 1/2 E[log(1 - D_k(G_k))] (Eq. 5)."""
    return sum(0.5 * F.softplus(-r).mean() + 0.5 * F.softplus(f).mean() for r, f in zip(real_logits, fake_logits))


def color_mean_covariance(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image RGB mean (B, 3) and 3x3 covariance (B, 3, 3) over pixels."""
    pixels = images.float().flatten(2)                       # (B, 3, N)
    mu = pixels.mean(dim=2)                                  # (B, 3)
    centred = pixels - mu.unsqueeze(2)
    cov = torch.bmm(centred, centred.transpose(1, 2)) / pixels.shape[2]   # (B, 3, 3)
    return mu, cov


def color_consistency_loss(upper: torch.Tensor, lower: torch.Tensor, lambda_mean: float = 1.0,
                           lambda_cov: float = 5.0) -> torch.Tensor:
    """L_C of Eq. 1 between stage i (upper) and stage i-1 (lower, the target, not differentiated).

    1/n sum_j lambda1 ||mu_i - mu_{i-1}||^2 + lambda2 ||Sigma_i - Sigma_{i-1}||_F^2.
    """
    mu_u, cov_u = color_mean_covariance(upper)
    mu_l, cov_l = color_mean_covariance(lower.detach())
    per_image = lambda_mean * (mu_u - mu_l).pow(2).sum(1) + lambda_cov * (cov_u - cov_l).pow(2).sum((1, 2))
    return per_image.mean()


def total_color_loss(stage_images: list[torch.Tensor], lambda_mean: float, lambda_cov: float) -> torch.Tensor:
    """sum_{i=2..K} L_C_i (weighted by λ3 in the generator objective)."""
    terms = [color_consistency_loss(stage_images[i], stage_images[i - 1], lambda_mean, lambda_cov)
             for i in range(1, len(stage_images))]
    return sum(terms) if terms else stage_images[0].new_zeros(())


def r1_penalty(reals: list[torch.Tensor], logits: list[torch.Tensor]) -> torch.Tensor:
    """sum over stages of E|dD_k(x)/dx|^2 on real images (Mescheder et al. 2018); an optional
    regulariser, off in the paper presets. `reals` must require grad."""
    grads = torch.autograd.grad([l.float().sum() for l in logits], reals, create_graph=True)
    return sum(g.float().square().sum(dim=(1, 2, 3)).mean() for g in grads)

import math

import numpy as np
import torch

from lrgan_edge.losses import (color_consistency_loss, color_mean_covariance, discriminator_loss,
                               generator_adversarial_loss, r1_penalty, total_color_loss)


def test_mean_covariance_against_numpy():
    x = torch.randn(2, 3, 5, 7)
    mu, cov = color_mean_covariance(x)
    for b in range(2):
        pixels = x[b].reshape(3, -1).numpy()
        np.testing.assert_allclose(mu[b].numpy(), pixels.mean(1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cov[b].numpy(), np.cov(pixels, bias=True), rtol=1e-4, atol=1e-6)


def test_color_consistency_hand_computation():
    # Upper: constant colour (0.5, 0, 0) -> mu = (0.5, 0, 0), cov = 0.
    upper = torch.zeros(1, 3, 2, 2)
    upper[:, 0] = 0.5
    # Lower: red channel alternates 0 / 1 -> mu = (0.5, 0, 0), var_r = 0.25; blue constant 0.2.
    lower = torch.zeros(1, 3, 2, 2)
    lower[0, 0] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    lower[0, 2] = 0.2
    # ||mu_u - mu_l||^2 = 0.2^2 = 0.04 ; ||cov_u - cov_l||_F^2 = 0.25^2 = 0.0625
    expected = 1.0 * 0.04 + 5.0 * 0.0625
    assert math.isclose(float(color_consistency_loss(upper, lower, 1.0, 5.0)), expected, rel_tol=1e-6)


def test_color_consistency_lower_stage_is_the_target():
    upper = torch.randn(2, 3, 8, 8, requires_grad=True)
    lower = torch.randn(2, 3, 4, 4, requires_grad=True)
    color_consistency_loss(upper, lower).backward()
    assert upper.grad is not None and upper.grad.abs().sum() > 0
    assert lower.grad is None


def test_total_color_loss_sums_consecutive_pairs():
    s = [torch.rand(2, 3, 4, 4), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)]
    expected = color_consistency_loss(s[1], s[0], 1, 5) + color_consistency_loss(s[2], s[1], 1, 5)
    torch.testing.assert_close(total_color_loss(s, 1, 5), expected)
    assert float(total_color_loss(s[:1], 1, 5)) == 0.0


def test_gan_losses_hand_computation():
    real = [torch.tensor([2.0, -1.0])]
    fake = [torch.tensor([0.5, -3.0])]
    sig = torch.sigmoid
    # Eq. 5: -1/2 E log D(real) - 1/2 E log(1 - D(fake))
    expected_d = -0.5 * torch.log(sig(real[0])).mean() - 0.5 * torch.log(1 - sig(fake[0])).mean()
    torch.testing.assert_close(discriminator_loss(real, fake), expected_d)
    # Eq. 4 adversarial term: -1/2 E log D(fake), summed over stages
    expected_g = 2 * (-0.5 * torch.log(sig(fake[0])).mean())
    torch.testing.assert_close(generator_adversarial_loss(fake + fake), expected_g)
    assert math.isclose(float(discriminator_loss([torch.zeros(3)], [torch.zeros(3)])), math.log(2), rel_tol=1e-6)


def test_r1_penalty_of_a_linear_discriminator():
    a = torch.randn(3, 4, 4)
    reals = [torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True)]
    logits = [(x * a).sum(dim=(1, 2, 3)) for x in reals]        # dD/dx = a for every image
    torch.testing.assert_close(r1_penalty(reals, logits), 2 * a.square().sum())

"""Honesty checks of the render-match-subtract chain: noise in sigma units, its correlation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from classifier.render import (
    CANVAS,
    ConditionRanges,
    Scene,
    difference_variance,
    draw_conditions,
    noise_covariance_with_filter,
    render,
)


def _blank(seed: int, cross: bool = False):
    rng = np.random.default_rng(seed)
    cond = replace(draw_conditions(rng, ConditionRanges()), cross=cross)
    return cond, render(Scene(), cond, rng)


# cross: both images convolved (each with the other's PSF); the noise model must follow either way
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_it_makes_unit_normal_noise_in_sigma_units(seed: int, cross: bool) -> None:
    cond, out = _blank(seed, cross)
    z = out.difference_e[10:-10, 10:-10] / np.sqrt(difference_variance(cond))
    assert abs(z.mean()) < 0.05
    assert z.std() == pytest.approx(1.0, abs=0.04)
    kurtosis = ((z - z.mean()) ** 4).mean() / z.var() ** 2 - 3
    assert abs(kurtosis) < 0.2
    assert (np.abs(z) > 5).sum() == 0


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_it_has_the_autocorrelation_of_the_convolved_reference_noise(
    seed: int, cross: bool
) -> None:
    cond, _ = _blank(seed, cross)
    delta = np.ones((1, 1))
    cov = noise_covariance_with_filter(delta, cond)
    c = cov.shape[0] // 2
    predicted = [cov[c, c + 1] / cov[c, c], cov[c + 1, c + 1] / cov[c, c]]
    measured = np.zeros(2)
    rng = np.random.default_rng(100 + seed)
    for _ in range(4):
        d = render(Scene(), cond, rng).difference_e[8:-8, 8:-8]
        d = d - d.mean()
        measured += [
            (d[:, :-1] * d[:, 1:]).mean() / d.var(),
            (d[:-1, :-1] * d[1:, 1:]).mean() / d.var(),
        ] / np.array(4.0)
    assert measured == pytest.approx(predicted, abs=0.03)
    assert CANVAS > 100


def test_it_makes_the_difference_noise_correlated_when_the_reference_is_shallow() -> None:
    # A shallow reference convolved with a wide kernel correlates neighbouring pixels.
    rng = np.random.default_rng(7)
    cond = draw_conditions(rng, ConditionRanges(ref_depth=(4.0, 4.0), ref_fwhm_ratio=(0.7, 0.7)))
    cov = noise_covariance_with_filter(np.ones((1, 1)), cond)
    c = cov.shape[0] // 2
    assert cov[c, c + 1] / cov[c, c] > 0.02

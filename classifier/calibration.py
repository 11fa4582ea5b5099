"""Calibration of the TCN's score: Platt scaling of its logit, fitted on held-out tracklets."""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_platt(logits: np.ndarray, y: np.ndarray, balanced: bool = False) -> dict[str, float]:
    """Platt scaling: a, b minimising the log loss of sigmoid(a * logit + b) on held-out data.

    `balanced` weighs real and bogus alike whatever their counts: the score is then calibrated
    for a 50/50 prior, as the baseline's is, even on a set with five real tracklets to a bogus.
    """
    import torch

    x = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(y, dtype=torch.float64)
    w = None
    if balanced:
        n_real = max(float(t.sum()), 1.0)
        n_bogus = max(float(len(t) - t.sum()), 1.0)
        w = torch.where(t > 0.5, len(t) / (2 * n_real), len(t) / (2 * n_bogus))
    log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)  # a = exp(log_a) > 0:
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)  # the order never flips
    opt = torch.optim.LBFGS([log_a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            log_a.exp() * x + b, t, weight=w
        )
        loss.backward()
        return loss

    opt.step(closure)
    return {"method": "platt", "a": float(log_a.detach().exp()), "b": float(b.detach())}


def calibrate_logits(logits: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Calibrated probabilities of real from TCN logits (plain sigmoid without calibration)."""
    z = np.asarray(logits, dtype=np.float64)
    if calibration:
        z = calibration["a"] * z + calibration["b"]
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

"""Figures of tracklet scores against the truth: the threshold for a recall, ROC AUC, the
operating point at a threshold, and the reliability table. Pure NumPy (SciPy for ranks)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def threshold_for_recall(scores: np.ndarray, real: np.ndarray, target: float) -> float:
    """The highest threshold t with recall(score >= t) >= target on the real tracklets, less a
    millionth: the real tracklet it sits on stays kept when the same model, loaded elsewhere or
    run another way, scores it in the last float32 digit differently."""
    real_scores = np.sort(scores[real])
    if not len(real_scores):
        raise ValueError("no real tracklets to choose a threshold on")
    allowed_misses = int(math.floor((1.0 - target) * len(real_scores) + 1e-9))
    at = float(real_scores[allowed_misses])
    return at - 1e-6 * abs(at)


def roc_auc(scores: np.ndarray, real: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by ranks."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos, n_neg = int(real.sum()), int((~real).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[real].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def operating_point(scores: np.ndarray, real: np.ndarray, threshold: float) -> dict[str, float]:
    keep = scores >= threshold
    return {
        "threshold": float(threshold),
        "real_recall": float(keep[real].mean()) if real.any() else float("nan"),
        "bogus_rejection": float((~keep[~real]).mean()) if (~real).any() else float("nan"),
    }


def reliability(scores: np.ndarray, real: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table (equal-width score bins) and the expected calibration error."""
    scores, real = np.asarray(scores, dtype=np.float64), np.asarray(real, dtype=bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        if n:
            mean_score, frac = float(scores[inside].mean()), float(real[inside].mean())
            ece += n / len(scores) * abs(mean_score - frac)
            rows.append(
                {
                    "lo": float(edges[k]),
                    "hi": float(edges[k + 1]),
                    "n": n,
                    "mean_score": mean_score,
                    "fraction_real": frac,
                }
            )
    return {"bins": rows, "ece": float(ece)}

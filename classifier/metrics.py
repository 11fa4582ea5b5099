"""Figures of tracklet scores against the truth: the threshold for a recall, ROC AUC, the
operating point at a threshold, and the reliability table; the held-out stamp accuracy a model
page shows. Pure NumPy (SciPy for ranks), no PyTorch: the web process imports it."""

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


def held_out_stamp_accuracy(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each model's ICN accuracy on the held-out labelled stamps, as a page shows it:
    {"candidate"|"base": {"accuracy", "stamps", "lacks"}}. A model cannot be right on a stamp
    of a class it does not have (the base has none of the new classes): its accuracy is over
    the stamps of its own classes, None where there are none, and "lacks" names the others."""
    new = set(comparison.get("new_classes") or [])
    held = comparison.get("holdout_stamps") or {}
    out: dict[str, dict[str, Any]] = {}
    for side in ("candidate", "base"):
        figures = held.get(side) or {}
        counts = figures.get("per_class_stamps") or {}
        lacks = sorted(c for c in counts if c in new) if side == "base" else []
        if not lacks:
            out[side] = {
                "accuracy": figures.get("accuracy"),
                "stamps": figures.get("stamps"),
                "lacks": [],
            }
            continue
        per_class = figures.get("per_class") or {}
        own = {c: n for c, n in counts.items() if c not in new and per_class.get(c) is not None}
        stamps = sum(own.values())
        accuracy = (sum(per_class[c] * n for c, n in own.items()) / stamps) if stamps else None
        out[side] = {"accuracy": accuracy, "stamps": stamps, "lacks": lacks}
    return out

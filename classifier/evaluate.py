"""Evaluation on simulated tracklets: ROC/AUC, operating points, per-kind rejection, confusion.

Writes a JSON report and PNG plots (confusion matrix, ROC, per-class recall by SNR bin).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from classifier.datasets import SNR_EDGES, TrackletSet
from classifier.inference import ScreeningModel
from classifier.metrics import operating_point, reliability, roc_auc, threshold_for_recall

PAPER_RECALL = 0.996


def roc_curve(scores: np.ndarray, real: np.ndarray, points: int = 400) -> dict[str, list[float]]:
    """False- and true-positive rates over thresholds spread on the score quantiles."""
    thresholds = np.unique(np.quantile(scores, np.linspace(0, 1, points)))
    tpr = [(scores[real] >= t).mean() for t in thresholds]
    fpr = [(scores[~real] >= t).mean() for t in thresholds]
    return {
        "threshold": thresholds.tolist(),
        "tpr": [float(v) for v in tpr],
        "fpr": [float(v) for v in fpr],
    }


def confusion(
    true: list[str], predicted: np.ndarray, model_classes: tuple[str, ...]
) -> dict[str, Any]:
    """Counts of true class (rows, every class present) against the ICN's argmax (columns)."""
    rows = sorted(
        set(true),
        key=lambda c: (
            c not in model_classes,
            model_classes.index(c) if c in model_classes else 0,
            c,
        ),
    )
    matrix = np.zeros((len(rows), len(model_classes)), dtype=int)
    index = {c: i for i, c in enumerate(rows)}
    for t, p in zip(true, predicted, strict=True):
        matrix[index[t], p] += 1
    return {"rows": rows, "columns": list(model_classes), "counts": matrix.tolist()}


def recall_by_snr(
    true: list[str], predicted: np.ndarray, snr: np.ndarray, model_classes: tuple[str, ...]
) -> dict[str, Any]:
    """Per true class and SNR bin: stamps and the fraction the ICN gives their own class."""
    true_arr = np.array(true)
    out: dict[str, Any] = {"edges": list(SNR_EDGES), "classes": {}}
    for cls in sorted(set(true)):
        sel = true_arr == cls
        counts, recalls = [], []
        for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:], strict=True):
            b = sel & (snr >= lo) & (snr < hi)
            counts.append(int(b.sum()))
            if cls in model_classes and b.any():
                recalls.append(float((predicted[b] == model_classes.index(cls)).mean()))
            else:
                recalls.append(None)
        out["classes"][cls] = {"count": counts, "recall": recalls}
    return out


def evaluate_tracklets(model: ScreeningModel, tset: TrackletSet) -> dict[str, Any]:
    """All figures of one tracklet set (stamps already prepared with the model's preset)."""
    probs, scores = score_set(model, tset)
    return tracklet_figures(scores, probs, tset, model.classes, model.threshold)


def score_set(
    model: ScreeningModel, tset: TrackletSet, *, motion_rule: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(stamp probabilities, tracklet scores) of a prepared tracklet set, cues and all, in
    float32 (thresholds are chosen and figures measured on these: a bf16 machine's own scores
    would move them), with the motion rule (`classifier.motion`) where the set's cues were
    measured, as `ScreeningModel.assess` applies it; `motion_rule=False`: the networks' scores
    alone, which a threshold is chosen on (the rule caps scores at half the threshold: a
    threshold chosen on capped scores could follow a capped real tracklet down to it)."""
    from classifier import motion

    model = model.exact()
    probs = model.stamp_probabilities(tset.images)
    cues = None
    if model.needs_metadata:
        version = model.tcn_config.cues
        cues = (tset.det_inputs(version), tset.trk_inputs(version))
    scores = model.tracklet_scores(probs, tset.lengths, cues)
    if motion_rule and tset.trk_raw is not None:
        still = motion.still(tset.trk_raw)
        scores = motion.cap(scores, still, model.threshold)
    return probs, scores


def _recall_by_bins(
    scores: np.ndarray,
    sel: np.ndarray,
    values: np.ndarray,
    edges: tuple[float, ...],
    threshold: float,
) -> list[dict[str, Any]]:
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        b = sel & (values >= lo) & (values < hi)
        n = int(b.sum())
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "n": n,
                "recall": float((scores[b] >= threshold).mean()) if n else None,
            }
        )
    return rows


RATE_EDGES = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 1e9)  # deg/day


def passing_by_class(
    scores: np.ndarray,
    real: np.ndarray,
    det_classes: list[str],
    lengths: np.ndarray,
    threshold: float,
) -> dict[str, dict[str, Any]]:
    """Per bogus stamp class: the bogus tracklets with at least one stamp of it, and the share
    of them that pass the threshold (say, tracklets with planet glare the model lets through)."""
    ends = np.cumsum(lengths)
    starts = ends - np.asarray(lengths)
    det = np.asarray(det_classes)
    out = {}
    for cls in sorted(set(det_classes)):
        has = np.array([cls in det[a:b] for a, b in zip(starts, ends, strict=True)]) & ~real
        n = int(has.sum())
        if n:
            out[cls] = {"tracklets": n, "passing": float((scores[has] >= threshold).mean())}
    return out


def tracklet_figures(
    scores: np.ndarray,
    probs: np.ndarray,
    tset: TrackletSet,
    classes: tuple[str, ...],
    threshold: float,
) -> dict[str, Any]:
    """All figures from tracklet scores and stamp probabilities of one tracklet set."""
    real = tset.real
    predicted = probs.argmax(1)
    t_paper = threshold_for_recall(scores, real, PAPER_RECALL)
    kinds = np.array(tset.kinds)
    by_kind = {}
    for kind in sorted(set(tset.kinds) - {"real"}):
        sel = kinds == kind
        by_kind[kind] = {
            "tracklets": int(sel.sum()),
            "rejection_at_threshold": float((scores[sel] < threshold).mean()),
            "rejection_at_paper_recall": float((scores[sel] < t_paper).mean()),
        }
    return {
        "tracklets": {
            "real": int(real.sum()),
            "bogus": int((~real).sum()),
            "stamps": int(len(tset.images)),
        },
        "passing_by_class": passing_by_class(
            scores, real, tset.det_classes, tset.lengths, threshold
        ),
        "auc": roc_auc(scores, real),
        "at_model_threshold": operating_point(scores, real, threshold),
        "at_paper_recall": operating_point(scores, real, t_paper),
        "by_bogus_kind": by_kind,
        "icn_confusion": confusion(tset.det_classes, predicted, classes),
        "icn_accuracy": icn_accuracy(tset.det_classes, predicted, classes),
        "icn_recall_by_snr": recall_by_snr(tset.det_classes, predicted, tset.det_snr, classes),
        "real_recall_by_snr": None
        if tset.snr is None
        else _recall_by_bins(scores, real, tset.snr, SNR_EDGES, threshold),
        "real_recall_by_rate": None
        if tset.rate is None
        else _recall_by_bins(scores, real, tset.rate, RATE_EDGES, threshold),
        "reliability": reliability(scores, real),
        "roc": roc_curve(scores, real),
        "params": tset.params,
    }


def icn_accuracy(true: list[str], predicted: np.ndarray, classes: tuple[str, ...]) -> float:
    """Share of stamps of the model's classes whose argmax is their true class."""
    pairs = [(classes.index(t), p) for t, p in zip(true, predicted, strict=True) if t in classes]
    return float(np.mean([t == p for t, p in pairs])) if pairs else float("nan")


def format_confusion(conf: dict[str, Any]) -> str:
    """The confusion matrix as row-normalised percentages in a text table."""
    cols = conf["columns"]
    lines = ["true \\ icn " + " ".join(f"{c:>6}" for c in cols) + "      n"]
    for name, row in zip(conf["rows"], conf["counts"], strict=True):
        n = max(sum(row), 1)
        lines.append(f"{name:>10} " + " ".join(f"{100 * v / n:6.1f}" for v in row) + f" {n:6d}")
    return "\n".join(lines)


def draw_confusion(ax, conf: dict[str, Any], title: str, fontsize: int = 7) -> None:
    """The ICN confusion matrix of `confusion()` as a heat map, each row in % of its class."""
    counts = np.array(conf["counts"], dtype=float)
    norm = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(conf["columns"])), conf["columns"], rotation=45, fontsize=fontsize)
    ax.set_yticks(range(len(conf["rows"])), conf["rows"], fontsize=fontsize)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            ax.text(
                j,
                i,
                f"{100 * norm[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("ICN class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=fontsize + 2)


def write_plots(report: dict[str, Any], out_dir: Path, name: str) -> list[Path]:
    """Confusion matrix, ROC curve and recall-by-SNR PNGs for one evaluated set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(7, 6))
    draw_confusion(ax, report["icn_confusion"], f"ICN confusion (% of row), {name}")
    fig.tight_layout()
    paths.append(out_dir / f"{name}_confusion.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    roc = report["roc"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(roc["fpr"], roc["tpr"])
    op = report["at_paper_recall"]
    ax.plot([1 - op["bogus_rejection"]], [op["real_recall"]], "o", label="99.6% real recall")
    op = report["at_model_threshold"]
    ax.plot(
        [1 - op["bogus_rejection"]],
        [op["real_recall"]],
        "s",
        label=f"threshold {op['threshold']:.3g}",
    )
    ax.set_xscale("log")
    ax.set_xlabel("bogus kept (false-positive rate)")
    ax.set_ylabel("real kept (recall)")
    ax.set_title(f"TCN ROC, AUC {report['auc']:.4f}, {name}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths.append(out_dir / f"{name}_roc.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    rec = report["icn_recall_by_snr"]
    fig, ax = plt.subplots(figsize=(7, 4))
    centres = np.arange(len(rec["edges"]) - 1)
    for cls, data in rec["classes"].items():
        values = [np.nan if v is None else v for v in data["recall"]]
        if not all(np.isnan(values)):
            ax.plot(centres, values, "o-", label=cls)
    labels = [
        f"{lo:g}-{hi:g}" if hi < 1e9 else f"{lo:g}+"
        for lo, hi in zip(rec["edges"][:-1], rec["edges"][1:], strict=True)
    ]
    ax.set_xticks(centres, labels)
    ax.set_xlabel("SNR (bogus: strength latent)")
    ax.set_ylabel("ICN recall")
    ax.set_title(f"ICN per-class recall by SNR, {name}")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    paths.append(out_dir / f"{name}_recall_by_snr.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    rel = report.get("reliability")
    if rel and rel["bins"]:
        fig, ax = plt.subplots(figsize=(5, 5))
        n = sum(b["n"] for b in rel["bins"])
        draw_reliability(ax, rel, f"Reliability, {n} tracklets, {name}")
        fig.tight_layout()
        paths.append(out_dir / f"{name}_reliability.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def draw_reliability(axes, rel: dict[str, Any], title: str) -> None:
    """Mean score of each score bin against the fraction of it really real, the diagonal
    (perfect calibration) and the tracklets per bin as bars on a second (log) axis."""
    bins = rel["bins"]
    counts = axes.twinx()
    counts.bar(
        [(b["lo"] + b["hi"]) / 2 for b in bins],
        [b["n"] for b in bins],
        width=[0.9 * (b["hi"] - b["lo"]) for b in bins],
        color="#8a949e",
        alpha=0.35,
    )
    counts.set_yscale("log")  # most tracklets sit in the end bins
    counts.set_ylim(0.8, 20 * max(b["n"] for b in bins))
    counts.set_ylabel("tracklets in the bin", color="#6e7781")
    axes.set_zorder(counts.get_zorder() + 1)
    axes.patch.set_visible(False)  # the curve over the bars
    axes.plot([0, 1], [0, 1], "--", color="black", linewidth=1, label="perfectly calibrated")
    axes.plot(
        [b["mean_score"] for b in bins],
        [b["fraction_real"] for b in bins],
        "o-",
        label=f"this model (ECE {rel['ece']:.3f})",
    )
    axes.legend(loc="upper left", fontsize=8)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("mean score in the bin")
    axes.set_ylabel("fraction really real")
    axes.set_title(title, fontsize=9)


def write_report(report: dict[str, Any], out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(report, indent=1, default=float) + "\n")
    return path


def summary_line(report: dict[str, Any]) -> str:
    a, p = report["at_model_threshold"], report["at_paper_recall"]
    return (
        f"AUC {report['auc']:.4f} | threshold {a['threshold']:.3f}: real recall "
        f"{100 * a['real_recall']:.2f}%, bogus rejection {100 * a['bogus_rejection']:.2f}% | "
        f"99.6% recall at threshold {p['threshold']:.4f}: real recall "
        f"{100 * p['real_recall']:.2f}%, bogus rejection {100 * p['bogus_rejection']:.2f}%"
    )

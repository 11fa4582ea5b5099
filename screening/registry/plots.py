"""Plots of a model version (matplotlib PNGs): ROC curves, ICN confusion, score histograms,
reliability.

ROC and confusion come from the fixed synthetic evaluation a training run stores with a candidate
(`metrics["comparison"]["synthetic"]`), with the model it was compared to drawn beside it, or
from a stand-alone one (`manage.py model_evaluate`, for a model made outside a training run); the
score histogram is of the tracklets this model actually scored, split by reviewers' verdicts; the
reliability diagram is the checkpoint's own, on its held-out validation tracklets (which models
before checkpoint format 2 lack).
"""

from __future__ import annotations

import math
from typing import Any

from screening.figures import figure_png
from screening.models import CurrentVerdict, ModelVersion, TrackletScore
from screening.registry.versions import synthetic_report
from screening.reports.night_summary import score_histogram_figure


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def roc_png(model: ModelVersion) -> bytes:
    figure = _figure(4.6, 4.2)
    axes = figure.add_subplot()
    synthetic = synthetic_report(model)
    drawn = False
    for side, label, style in (("candidate", model.version[:12], "-"), ("base", "base", "--")):
        report = synthetic.get(side) or {}
        roc = report.get("roc")
        if roc:
            auc = report.get("auc")
            axes.plot(roc["fpr"], roc["tpr"], style, label=f"{label} (AUC {auc:.3f})")
            drawn = True
    if drawn:
        axes.legend(loc="lower right", fontsize=8)
    else:
        axes.text(
            0.5,
            0.5,
            f"no evaluation stored\n(manage.py model_evaluate {model.version})",
            ha="center",
            va="center",
        )
    axes.set_xlabel("bogus kept (false positive rate)")
    axes.set_ylabel("real kept (true positive rate)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_title("ROC, fixed synthetic set (glare in the mix)", fontsize=9)
    return figure_png(figure)


def confusion_png(model: ModelVersion) -> bytes:
    from classifier.evaluate import draw_confusion

    figure = _figure(5.6, 4.8)
    axes = figure.add_subplot()
    conf = (synthetic_report(model).get("candidate") or {}).get("icn_confusion")
    if conf and conf.get("counts"):
        draw_confusion(axes, conf, "ICN confusion (% of each true class)", fontsize=6)
    else:
        axes.text(0.5, 0.5, "no evaluation stored", ha="center", va="center")
        axes.set_axis_off()
    return figure_png(figure)


def score_histogram_png(model: ModelVersion) -> bytes:
    """Scores this model gave, split by the tracklets' agreed current verdict."""
    verdicts: dict[int, set[str]] = {}
    for tracklet_id, value in CurrentVerdict.objects.exclude(value="withdrawn").values_list(
        "tracklet_id", "value"
    ):
        verdicts.setdefault(tracklet_id, set()).add(value)
    groups: dict[str, list[float]] = {"not judged": [], "bogus": [], "real": []}
    for tracklet_id, score in TrackletScore.objects.filter(model_version=model).values_list(
        "tracklet_id", "score"
    ):
        values = verdicts.get(tracklet_id, set())
        groups[values.pop() if len(values) == 1 else "not judged"].append(score)
    return score_histogram_figure(
        groups,
        [model.threshold],
        "Scores given by this model, by verdict",
        empty="this model has scored no tracklet yet",
        size=(6.4, 3.0),
    )


def reliability_report(model: ModelVersion) -> dict[str, Any] | None:
    """The checkpoint's reliability table on its validation tracklets, {"bins": [...], "ece",
    "n"}, or None where the model has none (or one that is not a table of finite numbers).

    Training from scratch stores it as `validation.reliability`, a retraining run as
    `validation.tcn.reliability` (beside its other held-out TCN figures).
    """
    validation = (model.metrics or {}).get("validation")
    if not isinstance(validation, dict):
        return None
    tcn = validation.get("tcn") if isinstance(validation.get("tcn"), dict) else {}
    stored = validation.get("reliability") or tcn.get("reliability")
    if not isinstance(stored, dict) or not isinstance(stored.get("bins"), list):
        return None
    bins = []
    for row in stored["bins"]:
        try:
            values = {k: float(row[k]) for k in ("lo", "hi", "mean_score", "fraction_real")}
            n = int(row["n"])
        except (KeyError, TypeError, ValueError):
            return None
        if not all(math.isfinite(v) for v in values.values()) or n < 0:
            return None
        bins.append({**values, "n": n})
    ece = stored.get("ece")
    if not bins or not isinstance(ece, int | float) or not math.isfinite(ece):
        return None
    return {"bins": bins, "ece": float(ece), "n": sum(b["n"] for b in bins)}


def reliability_png(model: ModelVersion) -> bytes:
    """Mean score of each score bin against the fraction of it really real, with the diagonal
    (perfect calibration) and the tracklets per bin as bars on a second axis."""
    figure = _figure(4.6, 4.2)
    axes = figure.add_subplot()
    report = reliability_report(model)
    if report is None:
        axes.text(0.5, 0.5, "not calibrated / no reliability data", ha="center", va="center")
        axes.set_axis_off()
        return figure_png(figure)
    from classifier.evaluate import draw_reliability

    draw_reliability(axes, report, f"Reliability, {report['n']} held-out validation tracklets")
    return figure_png(figure)


def audit_figure(nights: list[tuple[str, object]], target: float, title: str):
    """The lost-real estimate night by night: the rate with its exact interval, the target."""
    figure = _figure(7.0, 3.2)
    axes = figure.add_subplot()
    judged = [(name, e) for name, e in nights if e.judged]
    if judged:
        x = list(range(len(judged)))
        rates = [100 * e.rate for _, e in judged]
        low = [100 * (e.rate - e.low) for _, e in judged]
        high = [100 * (e.high - e.rate) for _, e in judged]
        colours = ["#d9534f" if e.status == "alarm" else "#3fb950" if e.status == "ok"
                   else "#8a949e" for _, e in judged]  # fmt: skip
        axes.errorbar(x, rates, yerr=[low, high], fmt="none", ecolor="#555", capsize=3)
        axes.scatter(x, rates, c=colours, zorder=3)
        step = max(1, len(judged) // 12)
        axes.set_xticks(x[::step], [name for name, _ in judged][::step], rotation=30, fontsize=7)
    else:
        axes.text(0.5, 0.5, "no audit judged yet", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
    axes.axhline(100 * target, color="#d9534f", linestyle="--", linewidth=1, label="target")
    axes.set_ylabel("real among auto-rejected, %")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title(title, fontsize=9)
    return figure


def audit_png(model: ModelVersion) -> bytes:
    from django.conf import settings

    from screening.review.audit import model_estimates

    nights = [(n.date.isoformat(), e) for n, e in model_estimates(model)["nights"]]
    title = (f"Audit of auto-rejection by {model.version[:8]}: estimate and "
             f"{100 * settings.AUDIT_CONFIDENCE:g}% exact interval per night")  # fmt: skip
    return figure_png(audit_figure(nights, settings.AUDIT_TARGET_LOSS, title))


PLOTS = {
    "audit": audit_png,
    "roc": roc_png,
    "confusion": confusion_png,
    "scores": score_histogram_png,
    "reliability": reliability_png,
}

"""Plots of a model version (matplotlib PNGs): ROC curves, ICN confusion, score histograms.

ROC and confusion come from the fixed synthetic evaluation a training run stores with a candidate
(`metrics["comparison"]["synthetic"]`), with the model it was compared to drawn beside it, or
from a stand-alone one (`manage.py model_evaluate`, for a model made outside a training run); the
score histogram is of the tracklets this model actually scored, split by reviewers' verdicts.
"""

from __future__ import annotations

import io

from screening.model_registry import synthetic_report
from screening.models import CurrentVerdict, ModelVersion, TrackletScore
from screening.night_summary import score_histogram_figure


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


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
    return _png(figure)


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
    return _png(figure)


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


PLOTS = {"roc": roc_png, "confusion": confusion_png, "scores": score_histogram_png}

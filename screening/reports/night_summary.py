"""A night's summary figures and its score histogram split by verdict."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import Count, F, Min, Q

from screening.figures import figure_png
from screening.models import Night, Tracklet, Verdict
from screening.reports.ades import MJD_EPOCH
from screening.review.blind import below_threshold_q
from screening.review.verdicts import current_verdicts


def night_summary_counts(night: Night) -> dict[str, float]:
    """Tracklets in, scored, auto-rejected, reviewed, real found, and the share not looked at."""
    counts = Tracklet.objects.filter(night=night).aggregate(
        total=Count("id"),
        scored=Count("id", filter=Q(score__isnull=False)),
        auto_rejected=Count("id", filter=below_threshold_q()),
        # below the threshold but unlike the model's training data: kept for review
        kept_unlike_training=Count(
            "id", filter=Q(score__lt=F("model_version__threshold")) & ~Q(unlike_training="")
        ),
        # capped below the threshold as not moving (classifier.motion), like training (before
        # the `unlike_training` count: an aggregate's name hides the field in later filters)
        capped_not_moving=Count("id", filter=~Q(not_moving="") & Q(unlike_training="")),
        unlike_training=Count("id", filter=~Q(unlike_training="")),
        reviewed=Count("id", filter=Q(status=Tracklet.Status.REVIEWED)),
        neo_candidates=Count("id", filter=Q(digest2_neo__gte=settings.DIGEST2_NEO_CANDIDATE)),
    )
    verdicts = _tracklet_verdicts(night)
    counts["real_found"] = sum(1 for v in verdicts.values() if v == Verdict.Value.REAL)
    counts["disagreements"] = sum(1 for v in verdicts.values() if v == "disagreement")
    counts["share_not_looked_at"] = (
        counts["auto_rejected"] / counts["total"] if counts["total"] else 0.0
    )
    return counts


def _tracklet_verdicts(night: Night) -> dict[int, str]:
    """Each reviewed tracklet's verdict: real, bogus, or disagreement between reviewers."""
    ids = list(
        Tracklet.objects.filter(night=night, status=Tracklet.Status.REVIEWED).values_list(
            "id", flat=True
        )
    )
    out = {}
    for tracklet_id, by_reviewer in current_verdicts(ids).items():
        values = {v for v in by_reviewer.values() if v != Verdict.Value.WITHDRAWN}
        if values:
            out[tracklet_id] = values.pop() if len(values) == 1 else "disagreement"
    return out


def neo_candidates(night: Night, viewer=None, limit: int = 50) -> list[dict]:
    """The night's NEO candidates (digest2 NEO score at least DIGEST2_NEO_CANDIDATE), highest
    first, at most `limit`: each with its verdict (real, bogus, disagreement, or not judged),
    its report, and the time from its first detection to that report (what a follow-up
    observer waits for). On a row still blind for the `viewer` (in their to-review queue, blind
    screening on) others' verdicts and the report they led to are not shown (`blind`)."""
    from screening.review.blind import blind_q

    rows = list(
        Tracklet.objects.filter(night=night, digest2_neo__gte=settings.DIGEST2_NEO_CANDIDATE)
        .select_related("report")
        .annotate(first_mjd=Min("detections__mjd"))
        .order_by("-digest2_neo", "id")[:limit]
    )
    verdicts = _tracklet_verdicts(night)
    blind_rows: set[int] = set()
    hidden = blind_q(viewer) if viewer is not None else None
    if hidden is not None:
        blind_rows = set(
            Tracklet.objects.filter(pk__in=[t.pk for t in rows])
            .filter(hidden)
            .values_list("pk", flat=True)
        )
    out = []
    for t in rows:
        if t.pk in blind_rows:
            out.append({"tracklet": t, "neo": min(t.digest2_neo, 100.0), "blind": True,
                        "verdict": "after your verdict", "report": None,
                        "to_report_seconds": None})  # fmt: skip
            continue
        seconds = None
        if t.report is not None:
            first = MJD_EPOCH + datetime.timedelta(days=t.first_mjd)
            seconds = (t.report.created_at - first).total_seconds()
        out.append(
            {
                "tracklet": t,
                "neo": min(t.digest2_neo, 100.0),
                "verdict": verdicts.get(t.pk, "not judged"),
                "blind": False,
                "report": t.report,
                "to_report_seconds": seconds,
            }
        )
    return out


VERDICT_COLOURS = {
    "not judged": "#8a949e",
    "bogus": "#d9534f",
    "real": "#3fb950",
    "disagreement": "#e3b341",
}


def score_histogram_figure(
    groups: dict[str, list[float]],
    thresholds,
    title: str,
    *,
    empty: str,
    size: tuple[float, float] = (7, 3.2),
) -> bytes:
    """A PNG histogram of scores stacked by verdict group, thresholds as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    axes = figure.add_subplot()
    names = [name for name, values in groups.items() if values]
    total = sum(len(v) for v in groups.values())
    if names:
        axes.hist(
            [groups[n] for n in names],
            bins=40,
            range=(0, 1),
            stacked=True,
            color=[VERDICT_COLOURS[n] for n in names],
            label=names,
        )
        axes.legend(loc="upper center", fontsize=8)
    else:
        axes.text(0.5, 0.5, empty, ha="center", va="center")
    for threshold in sorted(t for t in thresholds if t is not None):
        axes.axvline(threshold, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("tracklet score (1 = real)")
    axes.set_ylabel("tracklets")
    axes.set_yscale("log" if total > 200 else "linear")
    axes.set_title(title, fontsize=9)
    return figure_png(figure)


def score_histogram_png(night: Night) -> bytes:
    """Histogram of the night's scores, stacked by current verdict, with the threshold marked."""
    verdicts = _tracklet_verdicts(night)
    scored = Tracklet.objects.filter(night=night, score__isnull=False).values_list(
        "id", "score", "model_version__threshold"
    )
    groups: dict[str, list[float]] = {"not judged": [], "bogus": [], "real": [], "disagreement": []}
    thresholds = set()
    for tracklet_id, score, threshold in scored:
        groups[verdicts.get(tracklet_id, "not judged")].append(score)
        thresholds.add(threshold)
    return score_histogram_figure(
        groups,
        thresholds,
        f"Night {night.date.isoformat()}: scores by verdict",
        empty="no scored tracklet yet",
    )

"""The screening queue: which tracklets a reviewer sees, in what order, and what each row shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse

from screening.models import (
    MARGIN_ORDER,
    QUEUE_ORDER_ASC,
    QUEUE_ORDER_DESC,
    REVIEW_ORDER_ASC,
    REVIEW_ORDER_DESC,
    CurrentVerdict,
    Detection,
    ModelVersion,
    Night,
    StampLabel,
    StampPrediction,
    Tracklet,
    Verdict,
)
from screening.review import current_verdicts

STATUS_FILTERS = {
    "to_review": "to review",
    "reviewed": "reviewed",
    "auto_rejected": "auto-rejected (below threshold)",
    "all": "all",
}


ORDERS = {
    "desc": "highest score first",
    "asc": "lowest score first",
    "informative": "least sure first (nearest the threshold)",
}


@dataclass(frozen=True)
class QueueFilters:
    status: str = "to_review"
    score_min: float | None = None
    score_max: float | None = None
    stamp_class: str = ""
    hide_judged: bool = False
    order: str = "desc"

    @property
    def ascending(self) -> bool:
        return self.order == "asc"

    @property
    def blind(self) -> bool:
        """The to-review queue is blind: rows show no score, class or status before a verdict."""
        return self.status == "to_review" and settings.SCREENING_BLIND

    @classmethod
    def from_query(cls, query: Any) -> QueueFilters:
        """Read the filters from a request's GET parameters; bad values fall back to defaults."""

        def number(name: str) -> float | None:
            try:
                return float(query.get(name, ""))
            except ValueError:
                return None

        status = query.get("status", "to_review")
        return cls(
            status=status if status in STATUS_FILTERS else "to_review",
            score_min=number("score_min"),
            score_max=number("score_max"),
            stamp_class=query.get("stamp_class", "").strip().upper(),
            hide_judged=query.get("hide_judged") in ("1", "on", "true"),
            order=query.get("order") if query.get("order") in ORDERS else "desc",
        )


def _below_threshold() -> Q:
    return Q(score__isnull=False, score__lt=F("model_version__threshold"))


def queue_tracklets(
    *, night: Night, reviewer: AbstractBaseUser, filters: QueueFilters
) -> QuerySet[Tracklet]:
    """The night's tracklets that pass the filters, sorted by score (unscored last)."""
    # the model's threshold and version, not its metrics, classes and path, for every row
    tracklets = (
        Tracklet.objects.filter(night=night)
        .select_related("model_version")
        .defer("model_version__metrics", "model_version__classes", "model_version__checkpoint")
    )
    mine = CurrentVerdict.objects.filter(tracklet=OuterRef("pk"), reviewer=reviewer).exclude(
        value=Verdict.Value.WITHDRAWN
    )
    score = "score"
    if filters.status == "to_review":
        # Wanted by fewer reviewers than asked for (2 when double-screened, every reviewer for
        # gold), not judged by me, and passing, or a blind row (audit, gold) placed in the queue.
        tracklets = (
            tracklets.filter(n_reviews__lt=F("reviews_wanted"))
            .exclude(Exists(mine))
            .filter(Q(queue_score__isnull=False) | ~_below_threshold())
            .alias(review_score=Coalesce(F("queue_score"), F("score")))
        )
        score = "review_score"
    elif filters.status == "reviewed":
        tracklets = tracklets.filter(status=Tracklet.Status.REVIEWED)
    elif filters.status == "auto_rejected":
        tracklets = tracklets.filter(_below_threshold())
        # A bound on the sort keys themselves, which the queue's indexes can seek to: without it
        # a night's passing tracklets are walked through first (327 ms a page at 1,000,000).
        top = ModelVersion.objects.aggregate(top=Max("threshold"))["top"]
        if top is not None:
            tracklets = tracklets.alias(
                below_desc=QUEUE_ORDER_DESC, below_asc=QUEUE_ORDER_ASC
            ).filter(below_desc__lt=top, below_asc__lt=top)
    if filters.score_min is not None:
        tracklets = tracklets.filter(**{f"{score}__gte": filters.score_min})
    if filters.score_max is not None:
        tracklets = tracklets.filter(**{f"{score}__lte": filters.score_max})
    if filters.stamp_class:
        tracklets = tracklets.filter(
            Exists(
                StampPrediction.objects.filter(
                    detection__tracklet=OuterRef("pk"),
                    model_version=OuterRef("model_version"),
                    top_class=filters.stamp_class,
                )
            )
        )
    if filters.hide_judged:
        tracklets = tracklets.exclude(Exists(mine))
    if filters.order == "informative":
        return tracklets.order_by(MARGIN_ORDER.asc(), "id")
    to_review = filters.status == "to_review"
    if filters.ascending:
        order = (REVIEW_ORDER_ASC if to_review else QUEUE_ORDER_ASC).asc()
    else:
        order = (REVIEW_ORDER_DESC if to_review else QUEUE_ORDER_DESC).desc()
    return tracklets.order_by(order, "id")


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue; no total count, which would cost a scan of the whole night."""

    number: int
    tracklets: list[Tracklet]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int | None:
        """The next page's number, None on the last page (as Django's Page, without a count)."""
        return self.number + 1 if self.has_next else None

    @property
    def previous_page_number(self) -> int | None:
        return self.number - 1 if self.has_previous else None


def queue_page(tracklets: QuerySet[Tracklet], *, number: int, size: int) -> QueuePage:
    """Page `number` (from 1) of `size` tracklets, reading one more row to know if more follow."""
    number = max(1, number)
    rows = list(tracklets[(number - 1) * size : number * size + 1])
    return QueuePage(number=number, tracklets=rows[:size], has_next=len(rows) > size)


@dataclass
class StampView:
    detection: Detection
    top_class: str = ""
    top_probability: float | None = None
    probabilities: list[tuple[str, float]] = field(default_factory=list)
    label: str = ""

    url: str = ""

    @property
    def caption(self) -> str:
        return f"{self.top_class} {self.top_probability:.2f}" if self.top_class else ""

    @property
    def distribution(self) -> str:
        """The full class distribution, highest first, as text (hover) and for the tooltip."""
        return ", ".join(f"{name} {p:.3f}" for name, p in self.probabilities)


@dataclass
class QueueRow:
    tracklet: Tracklet
    stamps: list[StampView]
    my_verdict: str | None
    verdicts: dict[str, int]  # value to number of reviewers currently giving it
    auto_rejected: bool
    blind: bool = False  # score, classes, status and others' verdicts hidden until mine
    url: str = ""  # the tracklet's page

    @property
    def arrow_rotation(self) -> float:
        """CSS rotation of an up-arrow showing the motion on a north-up, east-left sky."""
        return (360.0 - self.tracklet.position_angle_deg) % 360.0

    @property
    def disagreement(self) -> bool:
        return self.verdicts.get("real", 0) > 0 and self.verdicts.get("bogus", 0) > 0


def queue_rows(
    tracklets: list[Tracklet],
    *,
    reviewer: AbstractBaseUser,
    blind: bool = False,
    full_detections: bool = False,
) -> list[QueueRow]:
    """What each row shows, in a fixed number of queries whatever the page size.

    The detections carry only their id and index (what a strip shows) unless `full_detections`
    (the tracklet's page lists their positions, magnitudes and stamp files).

    Blind rows (the to-review queue when SCREENING_BLIND is on) carry no score, class, status
    or others' verdicts until the reviewer's own verdict: the same fields, empty, for every row.
    """
    ids = [t.pk for t in tracklets]
    detections: dict[int, list[Detection]] = {}
    found = Detection.objects.filter(tracklet_id__in=ids).order_by("tracklet_id", "index")
    if not full_detections:
        found = found.only("id", "tracklet_id", "index")
    for detection in found:
        detections.setdefault(detection.tracklet_id, []).append(detection)
    versions = {t.pk: t.model_version_id for t in tracklets}
    verdicts = current_verdicts(ids)
    if blind:
        # a blind row shows no class until the reviewer's own verdict: read only those rows'
        shown = [
            pk
            for pk in ids
            if verdicts.get(pk, {}).get(reviewer.pk) not in (None, Verdict.Value.WITHDRAWN)
        ]
    else:
        shown = ids
    predictions: dict[int, tuple[str, float, dict[str, float]]] = {}
    for (
        detection_id,
        tracklet_id,
        version_id,
        top,
        probability,
        probabilities,
    ) in StampPrediction.objects.filter(
        detection__tracklet_id__in=shown,
        model_version_id__in={v for v in versions.values() if v is not None},
    ).values_list(
        "detection_id",
        "detection__tracklet_id",
        "model_version_id",
        "top_class",
        "top_probability",
        "probabilities",
    ):
        if version_id == versions[tracklet_id]:
            predictions[detection_id] = (top, probability, probabilities)
    labels: dict[int, str] = {}
    for detection_id, name in (
        StampLabel.objects.filter(detection__tracklet_id__in=ids)
        .order_by("detection_id", "-created_at", "-id")
        .values_list("detection_id", "stamp_class__name")
    ):
        labels.setdefault(detection_id, name)
    url_prefix = reverse("stamp-display", args=[0]).removesuffix("0.png")
    page_prefix = reverse("tracklet-page", args=[0]).removesuffix("0/")
    rows = []
    for tracklet in tracklets:
        stamps = []
        for detection in detections.get(tracklet.pk, []):
            view = StampView(
                detection=detection,
                label=labels.get(detection.pk, ""),
                url=f"{url_prefix}{detection.pk}.png",
            )
            if detection.pk in predictions:
                view.top_class, view.top_probability, probabilities = predictions[detection.pk]
                view.probabilities = sorted(probabilities.items(), key=lambda item: -item[1])
            stamps.append(view)
        current = verdicts.get(tracklet.pk, {})
        counts: dict[str, int] = {}
        for value in current.values():
            if value != Verdict.Value.WITHDRAWN:
                counts[value] = counts.get(value, 0) + 1
        threshold = tracklet.model_version.threshold if tracklet.model_version else None
        mine = current.get(reviewer.pk)
        if blind and mine in (None, Verdict.Value.WITHDRAWN):
            for stamp in stamps:
                stamp.top_class, stamp.top_probability, stamp.probabilities = "", None, []
            rows.append(
                QueueRow(
                    tracklet=tracklet,
                    stamps=stamps,
                    my_verdict=mine,
                    verdicts={},
                    auto_rejected=False,
                    blind=True,
                    url=f"{page_prefix}{tracklet.pk}/",
                )
            )
            continue
        rows.append(
            QueueRow(
                tracklet=tracklet,
                stamps=stamps,
                my_verdict=current.get(reviewer.pk),
                verdicts=counts,
                auto_rejected=tracklet.score is not None
                and threshold is not None
                and tracklet.score < threshold,
                url=f"{page_prefix}{tracklet.pk}/",
            )
        )
    return rows

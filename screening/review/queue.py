"""The screening queue: which tracklets a reviewer sees, in what order, and what each row shows."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    JSONField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from screening.models import (
    DIGEST2_ORDER,
    MARGIN_ORDER,
    QUEUE_ORDER_ASC,
    QUEUE_ORDER_DESC,
    REVIEW_ORDER_ASC,
    REVIEW_ORDER_DESC,
    Detection,
    ModelVersion,
    Night,
    ReviewClaim,
    StampLabel,
    Tracklet,
    Verdict,
    stamp_classes_match,
)
from screening.review.blind import (
    auto_rejected,
    below_threshold_q,
    blind_applies,
    blind_q,
    mine_q,
    row_is_blind,
    to_review_q,
)
from screening.review.displays import displays_draw
from screening.review.verdicts import current_verdicts

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
    "neo": "NEO candidates first (digest2, highest first)",
}


@dataclass(frozen=True)
class QueueFilters:
    status: str = "to_review"
    score_min: float | None = None
    score_max: float | None = None
    stamp_class: str = ""
    hide_judged: bool = False
    order: str = "desc"
    neo_only: bool = False  # digest2's NEO score at least DIGEST2_NEO_CANDIDATE
    unlike_only: bool = False  # unlike the model's training data (classifier.novelty)
    still_only: bool = False  # capped as a source that does not move (classifier.motion)

    @property
    def ascending(self) -> bool:
        return self.order == "asc"

    @property
    def blind(self) -> bool:
        """Blind screening is on (each reviewer's rows to review show no score, class or
        others' verdicts before their verdict, in every view: `screening.review.blind`)."""
        return settings.SCREENING_BLIND

    @property
    def to_review(self) -> bool:
        return self.status == "to_review"

    @classmethod
    def from_query(cls, query: Any) -> QueueFilters:
        """Read the filters from a request's GET parameters; bad values fall back to defaults."""

        def number(name: str) -> float | None:
            try:
                value = float(query.get(name, ""))
            except ValueError:
                return None
            return value if math.isfinite(value) else None

        status = query.get("status", "to_review")
        return cls(
            status=status if status in STATUS_FILTERS else "to_review",
            score_min=number("score_min"),
            score_max=number("score_max"),
            stamp_class=query.get("stamp_class", "").strip().upper()[:32],
            hide_judged=query.get("hide_judged") in ("1", "on", "true"),
            order=query.get("order") if query.get("order") in ORDERS else "desc",
            neo_only=query.get("neo") in ("1", "on", "true"),
            unlike_only=query.get("unlike") in ("1", "on", "true"),
            still_only=query.get("still") in ("1", "on", "true"),
        )


# --- who is screening what: claims -----------------------------------------------------------

CLAIM_SECONDS = 300  # a claim lapses this long after its page last renewed it


def _claimed_by_others(reviewer: AbstractBaseUser, now) -> Subquery:
    return Subquery(
        ReviewClaim.objects.filter(tracklet=OuterRef("pk"), expires_at__gt=now)
        .exclude(reviewer=reviewer)
        .order_by()
        .values("tracklet")
        .annotate(n=Count("id"))
        .values("n")[:1],
        output_field=IntegerField(),
    )


def claims_take(
    *, reviewer: AbstractBaseUser, tracklet_ids: list[int]
) -> dict[int, list[tuple[int, str]]]:
    """Claim (or renew the claim on) these tracklets for the reviewer, for CLAIM_SECONDS.

    Returns the live claims on them, everyone's, in the order they were made ({tracklet id:
    [(reviewer id, name), ...]}, `rows_taken`'s `claimed`): on PostgreSQL read by the same
    statement that writes the reviewer's, elsewhere by a second one."""
    if not tracklet_ids:
        return {}
    tracklet_ids = list(dict.fromkeys(tracklet_ids))  # a row named twice is claimed once
    now = timezone.now()
    until = now + datetime.timedelta(seconds=CLAIM_SECONDS)
    # One statement, atomic by itself: new claims made, this reviewer's claims on the others
    # renewed. (bulk_create's upsert built 50 instances and wrapped them in BEGIN and COMMIT:
    # about 1.5 ms of a queue page's 25.)
    meta = ReviewClaim._meta
    stamp = meta.get_field("created_at")
    when = [stamp.get_db_prep_value(v, connection) for v in (now, until)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    insert = f"INSERT INTO {table} (tracklet_id, reviewer_id, created_at, expires_at) "
    conflict = (
        "ON CONFLICT (tracklet_id, reviewer_id) DO UPDATE SET expires_at = excluded.expires_at"
    )
    if connection.vendor != "postgresql":
        params: list = []
        for pk in tracklet_ids:
            params += [pk, reviewer.pk, *when]
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(tracklet_ids))
        with connection.cursor() as cursor:
            cursor.execute(f"{insert}VALUES {rows} {conflict}", params)
        return claims_live(tracklet_ids, now)
    # The others' live claims as they stood, and this reviewer's as just written, by time made
    # (the times sorted on, not sent: each is parsed in Python); the ids as one array each time
    # (50 rows of four values each cost more to send than to write).
    users = quote(get_user_model()._meta.db_table)
    sql = (
        f"WITH mine AS ({insert}SELECT unnest(%s::bigint[]), %s, %s, %s {conflict} "
        "RETURNING id, tracklet_id, created_at) "
        "SELECT tracklet_id, reviewer_id, username FROM ("  # noqa: S608 - no input in the text
        "SELECT c.id, c.tracklet_id, c.reviewer_id, u.username, c.created_at "
        f"FROM {table} c JOIN {users} u ON u.id = c.reviewer_id "
        "WHERE c.tracklet_id = ANY(%s::bigint[]) AND c.expires_at > %s AND c.reviewer_id <> %s "
        "UNION ALL SELECT m.id, m.tracklet_id, %s::integer, %s::text, m.created_at FROM mine m"
        ") claims ORDER BY created_at, id"
    )
    params = [tracklet_ids, reviewer.pk, *when, tracklet_ids, when[0], reviewer.pk]
    params += [reviewer.pk, reviewer.get_username()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _claims_by_tracklet(cursor.fetchall())


def claims_live(tracklet_ids, now=None) -> dict[int, list[tuple[int, str]]]:
    """The live claims on these tracklets, everyone's, in the order they were made."""
    claims = ReviewClaim.objects.filter(
        tracklet_id__in=tracklet_ids, expires_at__gt=now or timezone.now()
    ).order_by("created_at", "id")
    return _claims_by_tracklet(
        claims.values_list("tracklet_id", "reviewer_id", "reviewer__username")
    )


def _claims_by_tracklet(rows) -> dict[int, list[tuple[int, str]]]:
    """(tracklet id, reviewer id, name) rows, in claim order, as {tracklet id: [(id, name)]}."""
    claimed: dict[int, list[tuple[int, str]]] = {}
    for pk, reviewer_id, name in rows:
        claimed.setdefault(pk, []).append((reviewer_id, name))
    return claimed


def claims_release(*, reviewer: AbstractBaseUser, tracklet_ids: list[int]) -> None:
    ReviewClaim.objects.filter(reviewer=reviewer, tracklet_id__in=tracklet_ids).delete()


def rows_taken(
    *,
    reviewer: AbstractBaseUser,
    tracklet_ids: list[int] | None = None,
    rows: list[Tracklet] | None = None,
    verdicts: dict[int, dict[int, str]] | None = None,
    claimed: dict[int, list[tuple[int, str]]] | None = None,
) -> dict[int, str]:
    """Which of these tracklets (ids, or the rows as loaded, with their `current_verdicts` and
    live claims (`claims_take`'s answer) if the caller has them) another reviewer has taken
    from this one, and how: judged by enough reviewers already, or claimed by others who got
    there first. {id: what to show}."""
    if rows is not None:
        tracklets = {t.pk: (t.n_reviews, t.reviews_wanted) for t in rows}
    elif tracklet_ids:
        tracklets = {
            pk: (n, wanted)
            for pk, n, wanted in Tracklet.objects.filter(pk__in=tracklet_ids).values_list(
                "pk", "n_reviews", "reviews_wanted"
            )
        }
    else:
        tracklets = {}
    if not tracklets:
        return {}
    verdicts = current_verdicts(list(tracklets)) if verdicts is None else verdicts
    judges: dict[int, list[int]] = {}
    for pk, by in verdicts.items():
        judges[pk] = [r for r, v in by.items() if v != Verdict.Value.WITHDRAWN]
    claimed = claims_live(list(tracklets)) if claimed is None else claimed
    names = dict(
        get_user_model()
        .objects.filter(pk__in={r for rs in judges.values() for r in rs})
        .values_list("pk", "username")
    )
    taken: dict[int, str] = {}
    for pk, (n_reviews, wanted) in tracklets.items():
        if reviewer.pk in judges.get(pk, []):
            continue  # judged by me: mine, whatever others did
        if n_reviews >= wanted:
            who = ", ".join(names.get(r, "?") for r in judges.get(pk, []))
            taken[pk] = f"judged by {who}"
            continue
        before_me = []
        for reviewer_id, name in claimed.get(pk, []):
            if reviewer_id == reviewer.pk:
                break
            if reviewer_id not in judges.get(pk, []):
                before_me.append(name)
        if n_reviews + len(before_me) >= wanted:
            verb = "is" if len(before_me) == 1 else "are"
            taken[pk] = f"{' and '.join(before_me)} {verb} on it"
    return taken


# --- the queue --------------------------------------------------------------------------------


def queue_order(filters: QueueFilters) -> tuple[Any, bool]:
    """The view's sort key (an expression the queue's indexes hold) and whether it descends.

    Every view but the auto-rejected one sorts blind rows (audits, gold) by their place in the
    to-review queue, so that no view gives them away; the auto-rejected view leaves them out.
    """
    if filters.order == "informative":
        return MARGIN_ORDER, False
    if filters.order == "neo":
        return DIGEST2_ORDER, True
    if filters.status == "auto_rejected":
        return (QUEUE_ORDER_ASC, False) if filters.ascending else (QUEUE_ORDER_DESC, True)
    return (REVIEW_ORDER_ASC, False) if filters.ascending else (REVIEW_ORDER_DESC, True)


# What a queue row reads of its tracklet and model (the rows, their blindness, paging cursors,
# who took them): only these. Every other column costs the page its parsing, the timestamps most
# (Django reads each through a Python loader: about 2 ms of a 50-row page), and a field read
# that is not here costs a query a row (tests/screening/test_queue.py counts the queries).
ROW_FIELDS = (
    "night_id", "survey_id", "status", "score", "queue_score", "n_detections", "rate_deg_per_day",
    "position_angle_deg", "mean_mag", "reviews_wanted", "n_reviews", "digest2_neo",
    "digest2_scores", "digest2_version", "digest2_problem", "unlike_training", "not_moving",
    "model_version__version", "model_version__threshold",
)  # fmt: skip


def queue_tracklets(
    *,
    night: Night,
    reviewer: AbstractBaseUser,
    filters: QueueFilters,
    claims: bool = False,
) -> QuerySet[Tracklet]:
    """The night's tracklets that pass the filters, in the view's order (unscored last).

    `claims`: leave out what other reviewers hold (their pages' claims), for a screening pass.
    """
    tracklets = (
        Tracklet.objects.filter(night=night).select_related("model_version").only(*ROW_FIELDS)
    )
    blind = blind_q(reviewer)
    if filters.status == "to_review":
        tracklets = tracklets.filter(to_review_q(reviewer))
        if claims:
            tracklets = tracklets.alias(
                held=F("n_reviews") + Coalesce(_claimed_by_others(reviewer, timezone.now()), 0)
            ).filter(held__lt=F("reviews_wanted"))
    elif filters.status == "reviewed":
        tracklets = tracklets.filter(status=Tracklet.Status.REVIEWED)
    elif filters.status == "auto_rejected":
        tracklets = tracklets.filter(below_threshold_q())
        if blind is not None:  # an audit row in my queue is no auto-rejected row to me
            # Below the threshold only a row placed in the queue (an audit, gold) can be blind:
            # tested first, so that the rest never read the reviewer's verdicts (PostgreSQL
            # hashed all of them, 50,000 at 1,000,000 tracklets, for every page).
            tracklets = tracklets.exclude(Q(queue_score__isnull=False) & blind)
        # A bound on the sort keys themselves, which the queue's indexes can seek to: without it
        # a night's passing tracklets are walked through first (327 ms a page at 1,000,000).
        top = ModelVersion.objects.aggregate(top=Max("threshold"))["top"]
        if top is not None:
            tracklets = tracklets.alias(
                below_desc=QUEUE_ORDER_DESC, below_asc=QUEUE_ORDER_ASC
            ).filter(below_desc__lt=top, below_asc__lt=top)
    # Score filters act on what the view sorts by: a blind row's place, not its score.
    score = "score" if filters.status == "auto_rejected" else "shown_score"
    if score == "shown_score":
        tracklets = tracklets.alias(shown_score=Coalesce(F("queue_score"), F("score")))
    if filters.score_min is not None:
        tracklets = tracklets.filter(**{f"{score}__gte": filters.score_min})
    if filters.score_max is not None:
        tracklets = tracklets.filter(**{f"{score}__lte": filters.score_max})
    if filters.stamp_class:
        # a stamp its model called this class: the tracklet's own column of its stamps' top
        # classes, written at scoring, not a probe of every stamp's prediction per row walked
        tracklets = tracklets.filter(
            stamp_classes__contains=stamp_classes_match(filters.stamp_class)
        )
        if blind is not None:  # a blind row's classes choose nothing
            tracklets = tracklets.exclude(blind)
    if filters.hide_judged:
        tracklets = tracklets.exclude(mine_q(reviewer))
    if filters.neo_only:
        tracklets = tracklets.filter(digest2_neo__gte=settings.DIGEST2_NEO_CANDIDATE)
    if filters.unlike_only:
        tracklets = tracklets.exclude(unlike_training="")
    if filters.still_only:
        tracklets = tracklets.exclude(not_moving="")
        if blind is not None:  # what the model made of a blind row chooses nothing either
            tracklets = tracklets.exclude(blind)
    key, descending = queue_order(filters)
    return tracklets.order_by(key.desc() if descending else key.asc(), "id")


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, paged by its last row (keyset), not by an offset: rows judged
    meanwhile leave the view without moving unseen rows behind the reviewer. No total count,
    which would cost a scan of the whole night."""

    number: int
    tracklets: list[Tracklet]
    has_next: bool
    has_previous: bool
    next_cursor: str | None = None  # rows after this page's last
    previous_cursor: str | None = None  # rows before this page's first

    @property
    def next_page_number(self) -> int | None:
        return self.number + 1 if self.has_next else None

    @property
    def previous_page_number(self) -> int | None:
        return max(1, self.number - 1) if self.has_previous else None


class CursorError(ValueError):
    """A page cursor that is not one this queue made."""


def sort_value(tracklet: Tracklet, filters: QueueFilters) -> float:
    """The row's value of the view's sort key, as the database computes it (queue_order)."""
    queue_score, score = tracklet.queue_score, tracklet.score
    if filters.order == "informative":
        shown = queue_score if queue_score is not None else score
        if shown is None or not tracklet.model_version_id:
            return 2.0
        return abs(shown - tracklet.model_version.threshold)
    if filters.order == "neo":
        return tracklet.digest2_neo if tracklet.digest2_neo is not None else -1.0
    if filters.status == "auto_rejected":
        shown = score
    else:
        shown = queue_score if queue_score is not None else score
    if shown is None:
        return 2.0 if filters.ascending else -1.0
    return shown


def cursor_of(tracklet: Tracklet, filters: QueueFilters) -> str:
    return f"{sort_value(tracklet, filters)!r}_{tracklet.pk}"


def cursor_parse(text: str) -> tuple[float, int]:
    try:
        value, pk = text.rsplit("_", 1)
        number, ident = float(value), int(pk)
    except ValueError:
        raise CursorError(f"{text[:40]!r} is not a page cursor (score_id)") from None
    if not math.isfinite(number):
        raise CursorError(f"{text[:40]!r} is not a page cursor (score_id)")
    return number, ident


def queue_page(
    tracklets: QuerySet[Tracklet],
    *,
    filters: QueueFilters,
    size: int,
    after: str = "",
    before: str = "",
    number: int = 1,
) -> QueuePage:
    """`size` rows after the row of cursor `after` (or before `before`; from the top with
    neither), reading one row more to know whether more follow. `number` is only shown."""
    key, descending = queue_order(filters)
    tracklets = tracklets.alias(sort_key=key)
    number = max(1, number)
    if before:
        value, pk = cursor_parse(before)
        earlier = Q(sort_key__gt=value) if descending else Q(sort_key__lt=value)
        rows = list(
            tracklets.filter(earlier | Q(sort_key=value, id__lt=pk)).order_by(
                key.asc() if descending else key.desc(), "-id"
            )[: size + 1]
        )
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return QueuePage(
            number=number,
            tracklets=rows,
            has_next=True,
            has_previous=more_before,
            next_cursor=cursor_of(rows[-1], filters) if rows else before,
            previous_cursor=cursor_of(rows[0], filters) if rows and more_before else None,
        )
    if after:
        value, pk = cursor_parse(after)
        later = Q(sort_key__lt=value) if descending else Q(sort_key__gt=value)
        tracklets = tracklets.filter(later | Q(sort_key=value, id__gt=pk))
    rows = list(tracklets[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    return QueuePage(
        number=number,
        tracklets=rows,
        has_next=has_next,
        has_previous=bool(after),
        next_cursor=cursor_of(rows[-1], filters) if rows and has_next else None,
        previous_cursor=cursor_of(rows[0], filters) if rows and after else (after or None),
    )


@dataclass(frozen=True)
class DetectionRef:
    """A detection as a queue row's strip needs it (its id and place; whether its display image
    is drawn)."""

    pk: int
    index: int
    display: str = ""


@dataclass
class StampView:
    detection: Detection | DetectionRef
    top_class: str = ""
    top_probability: float | None = None
    probabilities: list[tuple[str, float]] = field(default_factory=list)
    label: str = ""

    url: str = ""

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
    taken: str = ""  # another reviewer judged it or got to it first (rows_taken)

    @property
    def arrow_rotation(self) -> float:
        """CSS rotation of an up-arrow showing the motion on a north-up, east-left sky."""
        return (360.0 - self.tracklet.position_angle_deg) % 360.0

    @property
    def disagreement(self) -> bool:
        return self.verdicts.get("real", 0) > 0 and self.verdicts.get("bogus", 0) > 0


_probability = itemgetter(1)


def _strip_reads(shown: list[int], any_blind: bool, reviewer: AbstractBaseUser) -> dict:
    """What the strips' one query reads beside each stamp (`queue_rows`): its prediction by its
    row's model and its latest class label. `shown`: the rows not blind; the others' classes
    are not even read (nothing of them can reach the page), nor others' labels of their
    stamps: others' opinions (only the reviewer's own)."""
    shown_row = Q(tracklet_id__any_of=shown) if shown and any_blind else Q()
    if shown:
        condition = Q(predictions__model_version_id=F("tracklet__model_version_id"))
        reads: dict = {  # the relation first: the fields after it read through it
            "shown_prediction": FilteredRelation("predictions", condition=condition & shown_row)
        }
        for name in ("top_class", "top_probability", "probabilities"):
            reads[name] = F(f"shown_prediction__{name}")
    else:
        reads = {
            "top_class": Value(None, CharField()),
            "top_probability": Value(None, FloatField()),
            "probabilities": Value(None, JSONField()),
        }
    latest = StampLabel.objects.filter(detection=OuterRef("pk")).order_by("-created_at", "-id")
    anyone = Subquery(latest.values("stamp_class__name")[:1])
    mine = Subquery(latest.filter(reviewer=reviewer).values("stamp_class__name")[:1])
    if not any_blind:
        reads["label"] = anyone
    elif not shown:
        reads["label"] = mine
    else:
        reads["label"] = Case(When(shown_row, then=anyone), default=mine)
    return reads


def queue_rows(
    tracklets: list[Tracklet],
    *,
    reviewer: AbstractBaseUser,
    full_detections: bool = False,
    verdicts: dict[int, dict[int, str]] | None = None,
    draw: bool = False,
) -> list[QueueRow]:
    """What each row shows, in a fixed number of queries whatever the page size.

    The detections carry only their id and index (what a strip shows) unless `full_detections`
    (the tracklet's page lists their positions, magnitudes and stamp files).

    Blind rows (those of the reviewer's to-review queue, when they screen blind: `blind_q`)
    carry no score, class, status or others' verdicts until the reviewer's own verdict, in
    every view: the same fields, empty, for every such row.
    """
    ids = [t.pk for t in tracklets]
    verdicts = current_verdicts(ids) if verdicts is None else verdicts
    screens_blind = blind_applies(reviewer)
    blind_ids = {
        t.pk
        for t in tracklets
        if screens_blind and row_is_blind(t, verdicts.get(t.pk, {}).get(reviewer.pk))
    }
    shown = [pk for pk in ids if pk not in blind_ids]
    found = Detection.objects.filter(tracklet_id__any_of=ids).order_by("tracklet_id", "index")
    found = found.annotate(**_strip_reads(shown, bool(blind_ids), reviewer))
    detections: dict[int, list[Detection | DetectionRef]] = {}
    predictions: dict[int, tuple[str, float, dict[str, float]]] = {}
    labels: dict[int, str] = {}
    if full_detections:
        rows_read = ((d, d.pk, d.tracklet_id, d.top_class, d.top_probability, d.probabilities,
                      d.label) for d in found)  # fmt: skip
    else:  # what a strip shows, without a model instance a stamp
        rows_read = (
            (DetectionRef(pk, index, display), pk, tracklet_id, top, probability, dist, label)
            for pk, tracklet_id, index, display, top, probability, dist, label in found.values_list(
                "id", "tracklet_id", "index", "display", "top_class", "top_probability",
                "probabilities", "label",
            )
        )  # fmt: skip
    for detection, pk, tracklet_id, top, probability, probabilities, label in rows_read:
        detections.setdefault(tracklet_id, []).append(detection)
        if top is not None:
            predictions[pk] = (top, probability, probabilities)
        if label:
            labels[pk] = label
    if draw:  # the display images a row lacks, drawn before the page is shown
        missing = [d.pk for ds in detections.values() for d in ds if not d.display]
        if missing:
            displays_draw(
                Detection.objects.filter(pk__in=missing).only(
                    "id", "tracklet_id", "index", "stamp", "display"
                )
            )
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
                # highest first; ties keep their stored order (a reversed sort is stable too)
                view.probabilities = sorted(probabilities.items(), key=_probability, reverse=True)
            stamps.append(view)
        current = verdicts.get(tracklet.pk, {})
        counts: dict[str, int] = {}
        for value in current.values():
            if value != Verdict.Value.WITHDRAWN:
                counts[value] = counts.get(value, 0) + 1
        mine = current.get(reviewer.pk)
        if tracklet.pk in blind_ids:
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
                auto_rejected=auto_rejected(tracklet),
                url=f"{page_prefix}{tracklet.pk}/",
            )
        )
    return rows

"""Audited auto-rejection: a blind, keyed sample of auto-rejected tracklets, and the lost-real
rate it estimates (exact binomial interval), per night, per model and over a rolling window.

The draw. Every scored tracklet gets `audit_key`, an HMAC of (secret, night, model version,
survey id) mapped to [0, 1). A night's sample for a model is every auto-rejected tracklet whose key
is below AUDIT_RATE, topped up to the AUDIT_MIN_PER_NIGHT lowest keys (one a reviewer judged
before the draw is not put in the queue again). The
keys do not depend on the tracklet's content, so the sample is a simple random sample of the
auto-rejected tracklets; given the secret anyone can re-derive it (`audit_draw --verify`),
without it the pipeline cannot foresee it. A judged audit row stays; an unjudged top-up row that
later arrivals push out of the lowest keys leaves the queue.

The estimate. Reviewers judge audit rows blind, as any other row; the first verdict given on
each is the audit's outcome. With k real in n judged, the lost-real rate of auto-rejection is
k / n with the Clopper-Pearson interval at AUDIT_CONFIDENCE; times the number auto-rejected it
is the estimate of real tracklets lost. The status is `alarm` when the upper bound is above
AUDIT_TARGET_LOSS and either enough audits are judged to have brought it below the target had
none been real, or the lower bound is above the target too; `pending` while too few are judged
to tell; `ok` when the upper bound is at or below the target.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from scipy.stats import beta

from screening.models import ModelVersion, Night, QueueAssignment, Tracklet
from screening.queueing import request_displays
from screening.review.blind import below_threshold_q

log = logging.getLogger(__name__)

AUDIT_STATUSES = [("ok", "ok"), ("alarm", "alarm"), ("pending", "pending")]


def audit_key(*, night: str, version: str, survey_id: str, salt: str = "draw") -> float:
    """The keyed hash of one tracklet's audit draw, uniform in [0, 1)."""
    message = f"{salt}|{night}|{version}|{survey_id}".encode()
    digest = hmac.new(settings.AUDIT_SECRET.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def sample_keys(keys: dict[int, float], *, rate: float, minimum: int) -> set[int]:
    """Which of these tracklets (id to key) the draw takes: keys below `rate`, topped up to the
    `minimum` lowest keys."""
    chosen = {pk for pk, key in keys.items() if key < rate}
    if len(chosen) < minimum:
        chosen.update(pk for pk, _ in sorted(keys.items(), key=lambda kv: kv[1])[:minimum])
    return chosen


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial rate, k successes in n."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def judged_needed(target: float, confidence: float) -> int:
    """Audits needed, none real, for the upper bound to reach the target."""
    if target <= 0:
        return 10**9
    if target >= 1:
        return 0
    return math.ceil(math.log((1 - confidence) / 2) / math.log(1 - target))


@dataclass(frozen=True)
class AuditEstimate:
    """The lost-real estimate from judged audits."""

    rejected: int  # tracklets auto-rejected (the population)
    drawn: int  # audit rows drawn
    judged: int  # audit rows with a verdict
    real: int  # of which judged real
    rate: float | None  # real / judged
    low: float
    high: float
    lost: float | None  # rate x rejected: the estimated real tracklets lost
    lost_high: float  # high x rejected
    confidence: float
    target: float
    needed: int  # judged audits needed to certify the target with none real
    status: str  # ok, alarm, pending

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def lost_shown(self) -> str:
        """The estimate of real tracklets lost in whole tracklets: "≈1361" ("0" when none of
        the judged audits was real; "—" before any is judged)."""
        if self.lost is None:
            return "—"
        return tracklets_about(self.lost)

    @property
    def lost_high_shown(self) -> str:
        """The upper bound of real tracklets lost, rounded up to a whole tracklet."""
        return str(tracklets_up_to(self.lost_high))


def tracklets_up_to(count: float) -> int:
    """A bound on a number of tracklets, rounded up to a whole one (1.000000001 reads 1)."""
    return max(0, math.ceil(round(count, 6)))


def tracklets_about(count: float) -> str:
    """An estimated number of tracklets, to the nearest whole one, "≈" where it is rounded."""
    whole = math.floor(count + 0.5)
    return str(whole) if abs(count - whole) < 1e-6 else f"≈{whole}"


def estimate(*, rejected: int, drawn: int, judged: int, real: int) -> AuditEstimate:
    """The estimate and its status from counts, with the settings' confidence and target."""
    confidence, target = settings.AUDIT_CONFIDENCE, settings.AUDIT_TARGET_LOSS
    low, high = clopper_pearson(real, judged, confidence)
    needed = judged_needed(target, confidence)
    if high <= target:
        status = "ok"
    elif judged >= needed or low > target:
        status = "alarm"
    else:
        status = "pending"
    rate = real / judged if judged else None
    return AuditEstimate(
        rejected=rejected,
        drawn=drawn,
        judged=judged,
        real=real,
        rate=rate,
        low=low,
        high=high,
        lost=rate * rejected if rate is not None else None,
        lost_high=high * rejected,
        confidence=confidence,
        target=target,
        needed=needed,
        status=status,
    )


def _rejected(night_ids, model: ModelVersion):
    return Tracklet.objects.filter(
        night_id__in=night_ids, model_version=model, score__lt=model.threshold, unlike_training=""
    )


def audit_draw(*, night: Night, model: ModelVersion) -> int:
    """Draw (or top up) the night's audit sample for this model; return how many rows it added.

    Idempotent; runs after each batch of scores is stored.
    """
    rate, minimum = settings.AUDIT_RATE, settings.AUDIT_MIN_PER_NIGHT
    if rate <= 0 and minimum <= 0:
        return 0
    rejected = _rejected([night.pk], model).filter(audit_key__isnull=False)
    keys = dict(rejected.values_list("id", "audit_key"))
    chosen = sample_keys(keys, rate=rate, minimum=minimum)
    with transaction.atomic():
        rows = QueueAssignment.objects.filter(
            kind=QueueAssignment.Kind.AUDIT, model_version=model, tracklet__night=night
        )
        drawn = set(rows.values_list("tracklet_id", flat=True))
        # A top-up row that later tracklets pushed out of the lowest keys, not judged yet,
        # leaves again: the sample stays the one the secret derives from the whole night.
        stale = rows.filter(value="").exclude(tracklet_id__in=chosen)
        stale_ids = list(stale.values_list("tracklet_id", flat=True))
        if stale_ids:
            stale.delete()
            Tracklet.objects.filter(pk__in=stale_ids).update(queue_score=None)
        reviewed = set(rejected.filter(pk__in=chosen, n_reviews__gt=0).values_list("id", flat=True))
        new = sorted(chosen - drawn - reviewed)
        if not new:
            return 0
        QueueAssignment.objects.bulk_create(
            [
                QueueAssignment(
                    tracklet_id=pk, kind=QueueAssignment.Kind.AUDIT, model_version=model
                )
                for pk in new
            ],
            ignore_conflicts=True,
        )
        blind_rows_place(night=night, model=model, tracklet_ids=new)
    return len(new)


def blind_rows_place(*, night: Night, model: ModelVersion, tracklet_ids: list[int]) -> None:
    """Give blind rows a place in the to-review queue: the score of a passing tracklet of the
    night picked by a second keyed hash, so the order looks like any other row's."""
    passing = sorted(
        Tracklet.objects.filter(
            night=night, model_version=model, score__gte=model.threshold
        ).values_list("score", flat=True)
    )
    rows = Tracklet.objects.filter(pk__in=tracklet_ids).values_list("pk", "survey_id")
    updates = []
    for pk, survey_id in rows:
        key = audit_key(
            night=night.date.isoformat(), version=model.version, survey_id=survey_id, salt="place"
        )
        if passing:
            place = passing[min(len(passing) - 1, int(key * len(passing)))]
        else:
            place = model.threshold + key * (1 - model.threshold)
        updates.append(Tracklet(pk=pk, queue_score=place))
    Tracklet.objects.bulk_update(updates, ["queue_score"], batch_size=1000)
    # in reviewers' queues now: their display images drawn before a page shows them
    placed = [row.pk for row in updates]
    transaction.on_commit(lambda: request_displays(placed))


def assignments_judge(*, tracklet: Tracklet, verdict) -> None:
    """Record a verdict as the outcome of the tracklet's blind assignments; called inside
    verdict_record's transaction.

    An open assignment takes the first real or bogus verdict, and the row leaves the blind
    queue. The reviewer who gave it can still correct it (the outcome follows their current
    verdict) or undo it: the assignment opens again and the row returns to the queue, blind.
    Gold rows are scored from every reviewer's current verdict, so they are left as they are.
    """
    value = verdict.value
    rows = tracklet.assignments.exclude(kind=QueueAssignment.Kind.GOLD)
    opened = rows.filter(verdict__isnull=True, value="")
    mine = rows.filter(verdict__reviewer=verdict.reviewer).exclude(value="")
    changes: list[tuple[QueueAssignment, str]] = []  # (audit row, its outcome before)
    if value in ("real", "bogus"):
        changes += [(row, "") for row in opened.filter(kind=QueueAssignment.Kind.AUDIT)]
        changes += [(row, row.value) for row in mine.filter(kind=QueueAssignment.Kind.AUDIT)]
        mine.update(verdict=verdict, value=value, judged_at=verdict.created_at)  # a correction
        opened.update(verdict=verdict, value=value, judged_at=verdict.created_at)
        if (
            tracklet.queue_score is not None
            and not tracklet.assignments.filter(kind=QueueAssignment.Kind.GOLD).exists()
        ):
            Tracklet.objects.filter(pk=tracklet.pk).update(queue_score=None)
    elif value == "withdrawn":
        undone = list(mine.filter(kind=QueueAssignment.Kind.AUDIT).select_related("model_version"))
        mine.update(verdict=None, value="", judged_at=None)
        for row in undone:  # back in the queue at its blind place
            blind_rows_place(
                night=tracklet.night, model=row.model_version, tracklet_ids=[tracklet.pk]
            )
        transaction.on_commit(alarms_reset)
    for row, before in changes:
        if before == value:
            continue
        transaction.on_commit(
            lambda night=tracklet.night, model=row.model_version, before=before: _alarm_log(
                night, model, before, value
            )
        )


def _alarm_log(night: Night, model: ModelVersion, before: str, now: str) -> None:
    """Log the alarm when an audit outcome changing from `before` ("" for none) to `now` puts
    the night and model into it (once, not again at every later verdict)."""
    alarms_reset()
    counts = _counts([night.pk], model)
    result = estimate(**counts)
    earlier = {
        **counts,
        "judged": counts["judged"] - (before == ""),
        "real": counts["real"] - (now == "real") + (before == "real"),
    }
    if result.status == "alarm" and estimate(**earlier).status != "alarm":
        log.warning(
            "AUDIT ALARM night %s model %s: %d real in %d audits of auto-rejected tracklets, "
            "lost-real rate up to %.2f%% (%.0f%% interval), above the %.2f%% target",
            night.date,
            model.version[:12],
            result.real,
            result.judged,
            100 * result.high,
            100 * result.confidence,
            100 * result.target,
        )


def _counts(night_ids, model: ModelVersion) -> dict[str, int]:
    rejected = _rejected(night_ids, model).count()
    counts = QueueAssignment.objects.filter(
        kind=QueueAssignment.Kind.AUDIT, model_version=model, tracklet__night_id__in=night_ids
    ).aggregate(
        drawn=Count("id"),
        judged=Count("id", filter=~Q(value="")),
        real=Count("id", filter=Q(value="real")),
    )
    return {"rejected": rejected, **counts}


def night_model_estimate(night: Night, model: ModelVersion) -> AuditEstimate:
    return estimate(**_counts([night.pk], model))


def night_estimates(night: Night) -> list[tuple[ModelVersion, AuditEstimate]]:
    """The night's estimate for every model that auto-rejected some of it or was audited."""
    ids = set(
        Tracklet.objects.filter(below_threshold_q(), night=night)
        .values_list("model_version_id", flat=True)
        .distinct()
    ) | set(
        QueueAssignment.objects.filter(kind="audit", tracklet__night=night).values_list(
            "model_version_id", flat=True
        )
    )
    models = ModelVersion.objects.filter(pk__in=ids).order_by("-is_active", "-created_at")
    return [(m, night_model_estimate(night, m)) for m in models]


def model_estimates(model: ModelVersion) -> dict:
    """A model's estimate over all its nights, over the rolling window, and night by night."""
    nights = list(
        Night.objects.filter(
            Q(tracklets__model_version=model) | Q(tracklets__assignments__model_version=model)
        )
        .distinct()
        .order_by("date")
    )
    per_night = [(n, night_model_estimate(n, model)) for n in nights]
    window = nights[-settings.AUDIT_WINDOW_NIGHTS :]
    return {
        "overall": estimate(**_counts([n.pk for n in nights], model)),
        "window": estimate(**_counts([n.pk for n in window], model)),
        "window_nights": len(window),
        "nights": per_night,
    }


def active_alarms() -> list[str]:
    """Messages for the banner: the active model's window and its last night in alarm."""
    model = ModelVersion.objects.active()
    if model is None:
        return []
    out = []
    last = Night.objects.filter(tracklets__model_version=model).order_by("-date").first()
    checks = []
    if last is not None:
        checks.append((f"night {last.date}", night_model_estimate(last, model)))
    checks.append(
        (
            f"the last {settings.AUDIT_WINDOW_NIGHTS} nights",
            model_estimates(model)["window"],
        )
    )
    for where, result in checks:
        if result.status == "alarm":
            out.append(
                f"Audit alarm ({where}, model {model.version[:8]}): {result.real} real in "
                f"{result.judged} audited auto-rejections; up to {100 * result.high:.1f}% of "
                f"auto-rejected tracklets may be real (target {100 * result.target:.1f}%)."
            )
    return out


_ALARMS: tuple[tuple, list[str]] = ((), [])


def alarms_context(request) -> dict:
    """Template context: the banner's alarms for signed-in users. Recomputed when an audit is
    judged or the active model changes (one small query a page otherwise)."""
    global _ALARMS
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"audit_alarms": []}
    key = _alarms_key()
    if key != _ALARMS[0]:
        _ALARMS = (key, active_alarms())
    return {"audit_alarms": _ALARMS[1]}


def _alarms_key() -> tuple:
    """What the banner depends on, in one query: the number of judged audit rows, the last
    judgement's time, and the active model."""
    from django.db import connection

    audits, models = QueueAssignment._meta.db_table, ModelVersion._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), MAX(judged_at),"
            f" (SELECT id FROM {models} WHERE is_active ORDER BY id LIMIT 1)"
            f" FROM {audits} WHERE kind = %s AND value <> ''",
            [QueueAssignment.Kind.AUDIT],
        )
        return tuple(cursor.fetchone())


def alarms_reset() -> None:
    """Forget the cached banner."""
    global _ALARMS
    _ALARMS = ((), [])

"""Reviewing: verdicts and stamp labels (append-only), and the tracklet status they imply."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from screening.models import (
    CurrentVerdict,
    Detection,
    ReviewClaim,
    StampClass,
    StampLabel,
    StampPrediction,
    Tracklet,
    Verdict,
)
from screening.nights import night_counts_moved
from screening.review.audit import assignments_judge
from screening.review.blind import blind_applies, row_is_blind


class ReviewError(ValueError):
    """A verdict or label that cannot be recorded, with the reason."""


def verdict_record(
    *, tracklet_id: int, reviewer: AbstractBaseUser, value: str, blind: bool | None = None
) -> Verdict:
    """Append a reviewer's verdict (or its withdrawal) with what their screen showed: the
    score, or nothing when the row was blind; update status.

    `blind`: the row was blind on the reviewer's screen (the page says so). Without it, or when
    the row is blind for them now, it is taken as blind (`screening.review.blind`): a score is
    recorded as shown only where it could have been.
    """
    if value not in Verdict.Value.values:
        raise ReviewError(f"verdict {value!r} must be one of {', '.join(Verdict.Value.values)}")
    with transaction.atomic():
        # Lock the tracklet so concurrent verdicts on it update its status one after the other.
        tracklet = Tracklet.objects.select_for_update().get(pk=tracklet_id)
        mine = _mine(tracklet, reviewer)
        if value == Verdict.Value.WITHDRAWN and mine in (None, Verdict.Value.WITHDRAWN):
            raise ReviewError("there is no verdict of yours on this tracklet to withdraw")
        hidden = _shown_blind(tracklet, reviewer, blind, mine)
        verdict = Verdict.objects.create(
            tracklet=tracklet,
            reviewer=reviewer,
            value=value,
            score_shown=None if hidden else tracklet.score,
            model_version_shown=tracklet.model_version,
            blind=hidden,
        )
        CurrentVerdict.objects.update_or_create(
            tracklet=tracklet, reviewer=reviewer, defaults={"verdict": verdict, "value": value}
        )
        _status_refresh(tracklet)
        assignments_judge(tracklet=tracklet, verdict=verdict)
        if value != Verdict.Value.WITHDRAWN:  # judged: the verdict holds it now, not the claim
            ReviewClaim.objects.filter(tracklet=tracklet, reviewer=reviewer).delete()
    return verdict


def _mine(tracklet: Tracklet, reviewer: AbstractBaseUser) -> str | None:
    return current_verdicts([tracklet.pk]).get(tracklet.pk, {}).get(reviewer.pk)


def _shown_blind(
    tracklet: Tracklet, reviewer: AbstractBaseUser, blind: bool | None, mine: str | None
) -> bool:
    """Whether the row was blind on the reviewer's screen: the page says so (`blind`), or it is
    blind for them now; a score or class is recorded as shown only where it could have been."""
    return bool(blind) or (blind_applies(reviewer) and row_is_blind(tracklet, mine))


def current_verdicts(tracklet_ids: list[int]) -> dict[int, dict[int, str]]:
    """Each reviewer's latest verdict on each tracklet: {tracklet id: {reviewer id: value}}."""
    current: dict[int, dict[int, str]] = {}
    rows = CurrentVerdict.objects.filter(tracklet_id__any_of=tracklet_ids).values_list(
        "tracklet_id", "reviewer_id", "value"
    )
    for tracklet_id, reviewer_id, value in rows:
        current.setdefault(tracklet_id, {})[reviewer_id] = value
    return current


def _status_refresh(tracklet: Tracklet) -> None:
    values = current_verdicts([tracklet.pk]).get(tracklet.pk, {}).values()
    n_reviews = sum(1 for v in values if v != Verdict.Value.WITHDRAWN)
    if n_reviews != tracklet.n_reviews:
        tracklet.n_reviews = n_reviews
        tracklet.save(update_fields=["n_reviews"])
    if n_reviews:
        status = Tracklet.Status.REVIEWED
    elif tracklet.score is not None:
        status = Tracklet.Status.SCORED
    else:
        status = Tracklet.Status.PENDING
    if status != tracklet.status:
        # from the status stored now, which another transaction may have changed meanwhile
        old = Tracklet.objects.filter(pk=tracklet.pk).values_list("status", flat=True).first()
        if Tracklet.objects.filter(pk=tracklet.pk, status=old).update(status=status):
            night_counts_moved(tracklet.night_id, old, status, 1)
        tracklet.status = status


def stamp_label_record(
    *, detection_id: int, reviewer: AbstractBaseUser, class_name: str, blind: bool | None = None
) -> StampLabel:
    """Append a reviewer's class for one stamp, with the model's top class they were shown:
    none when the row was blind (`blind`, or blind for them now, as in `verdict_record`)."""
    stamp_class = StampClass.objects.filter(name=class_name).first()
    if stamp_class is None:
        known = ", ".join(StampClass.objects.values_list("name", flat=True))
        raise ReviewError(f"stamp class {class_name!r} does not exist (known: {known})")
    detection = Detection.objects.select_related("tracklet__model_version").get(pk=detection_id)
    tracklet = detection.tracklet
    hidden = _shown_blind(tracklet, reviewer, blind, _mine(tracklet, reviewer))
    prediction = None
    if not hidden:
        prediction = StampPrediction.objects.filter(
            detection=detection, model_version_id=tracklet.model_version_id
        ).first()
    return StampLabel.objects.create(
        detection=detection,
        reviewer=reviewer,
        stamp_class=stamp_class,
        class_shown=prediction.top_class if prediction else "",
        probability_shown=prediction.top_probability if prediction else None,
        model_version_shown_id=tracklet.model_version_id,
        blind=hidden,
    )


def verdict_undo_last(*, reviewer: AbstractBaseUser, night_id: int | None = None) -> Verdict:
    """Withdraw the reviewer's latest verdict that still stands (of one night, if given), so
    that undo reaches back across pages and page loads. Raises ReviewError when none is left."""
    standing = CurrentVerdict.objects.filter(
        reviewer=reviewer, value__in=[Verdict.Value.REAL, Verdict.Value.BOGUS]
    )
    if night_id is not None:
        standing = standing.filter(tracklet__night_id=night_id)
    last = standing.order_by("-verdict_id").values_list("tracklet_id", flat=True).first()
    if last is None:
        raise ReviewError("nothing to undo: no verdict of yours stands on this night")
    return verdict_record(tracklet_id=last, reviewer=reviewer, value=Verdict.Value.WITHDRAWN)

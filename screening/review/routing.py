"""Who reviews a tracklet once it is scored: its audit key, whether it keeps a place in the
queue (gold rows always; audit rows of the model that scored it), how many reviews it wants
(gold: every reviewer; a keyed sample above the threshold: two, for second screening; else one),
and the night's audit draw with its blind rows.
"""

from __future__ import annotations

from django.conf import settings

from screening.bulk import rows_update
from screening.models import ModelVersion, Night, QueueAssignment, Tracklet
from screening.review.audit import audit_draw, audit_key, blind_rows_place

# Gold tracklets stay in every reviewer's queue until each has judged them.
GOLD_REVIEWS = 1000


def scored_rows_route(*, model_version: ModelVersion, tracklet_ids: list[int]) -> None:
    """Route these tracklets, just scored by `model_version`, to their reviewers (in the
    caller's transaction). Blind rows of another model's audit leave the queue: that model no
    longer decides."""
    rows = Tracklet.objects.filter(pk__in=tracklet_ids).values_list(
        "id", "night__date", "night_id", "survey_id", "queue_score", "score"
    )
    assigned = QueueAssignment.objects.filter(tracklet_id__in=tracklet_ids)
    gold = set(
        assigned.filter(kind=QueueAssignment.Kind.GOLD).values_list("tracklet_id", flat=True)
    )
    keep = gold | set(
        assigned.filter(
            kind=QueueAssignment.Kind.AUDIT, model_version=model_version, value=""
        ).values_list("tracklet_id", flat=True)
    )
    threshold = model_version.threshold
    updates, night_of = [], {}
    for pk, date, night_id, survey_id, queue_score, score in rows:
        night_of[pk] = night_id
        keys = dict(night=date.isoformat(), version=model_version.version, survey_id=survey_id)
        second = audit_key(**keys, salt="second") < settings.SECOND_SCREENING_RATE
        updates.append(
            Tracklet(
                pk=pk,
                audit_key=audit_key(**keys),
                queue_score=queue_score if pk in keep else None,
                reviews_wanted=(
                    GOLD_REVIEWS if pk in gold else 2 if second and score >= threshold else 1
                ),
            )
        )
    rows_update(updates, ["audit_key", "queue_score", "reviews_wanted"])
    for night in Night.objects.filter(pk__in=set(night_of.values())):
        audit_draw(night=night, model=model_version)
        unplaced = [pk for pk in gold if night_of.get(pk) == night.pk]
        if unplaced:
            blind_rows_place(night=night, model=model_version, tracklet_ids=unplaced)

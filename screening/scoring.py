"""Storing the model's output: per-stamp class probabilities and tracklet scores, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from screening.audit import audit_draw, audit_key, blind_rows_place
from screening.models import (
    Detection,
    ModelVersion,
    Night,
    QueueAssignment,
    StampPrediction,
    Tracklet,
    TrackletScore,
)


@dataclass(frozen=True)
class TrackletResult:
    """One tracklet's output from a model: per-stamp probabilities (time order) and its score."""

    tracklet_id: int
    stamp_probabilities: Sequence[Sequence[float]]  # one row per detection, one column per class
    score: float


def scores_store(*, model_version: ModelVersion, results: Sequence[TrackletResult]) -> int:
    """Write predictions and scores for many tracklets in one transaction.

    Returns how many tracklets now show this model's score and did not before.

    A tracklet already scored by this model version keeps that score, so storing twice changes
    nothing. Reviewed tracklets keep their status; pending ones become `scored`.
    """
    classes = list(model_version.classes)
    ids = [r.tracklet_id for r in results]
    with transaction.atomic():
        stored = dict(
            TrackletScore.objects.filter(
                model_version=model_version, tracklet_id__in=ids
            ).values_list("tracklet_id", "score")
        )
        todo = [r for r in results if r.tracklet_id not in stored]
        changed = Tracklet.objects.filter(pk__in=ids).exclude(model_version=model_version).count()
        detections = _detections_by_tracklet([r.tracklet_id for r in todo])
        predictions, scores = [], []
        for result in todo:
            rows = detections[result.tracklet_id]
            if len(rows) != len(result.stamp_probabilities):
                raise ValueError(
                    f"tracklet {result.tracklet_id} has {len(rows)} detections but "
                    f"{len(result.stamp_probabilities)} stamp predictions"
                )
            for detection_id, probabilities in zip(rows, result.stamp_probabilities, strict=True):
                named = {c: round(float(p), 6) for c, p in zip(classes, probabilities, strict=True)}
                top = max(named, key=named.__getitem__)
                predictions.append(
                    StampPrediction(
                        detection_id=detection_id,
                        model_version=model_version,
                        probabilities=named,
                        top_class=top,
                        top_probability=named[top],
                    )
                )
            scores.append(
                TrackletScore(
                    tracklet_id=result.tracklet_id,
                    model_version=model_version,
                    score=float(result.score),
                )
            )
            stored[result.tracklet_id] = float(result.score)
        StampPrediction.objects.bulk_create(predictions, batch_size=2000)
        TrackletScore.objects.bulk_create(scores, batch_size=2000)
        # Every tracklet now shows this model's score: the new one, or the one stored before
        # (a model made active again after a rollback), and is no longer claimed by a worker.
        # Blind rows of another model's audit leave the queue: that model no longer decides.
        now = timezone.now()
        threshold = model_version.threshold
        rows = Tracklet.objects.filter(pk__in=ids).values_list(
            "id", "night__date", "night_id", "survey_id", "queue_score"
        )
        assigned = QueueAssignment.objects.filter(tracklet_id__in=ids)
        gold = set(
            assigned.filter(kind=QueueAssignment.Kind.GOLD).values_list("tracklet_id", flat=True)
        )
        keep = gold | set(
            assigned.filter(
                kind=QueueAssignment.Kind.AUDIT, model_version=model_version, value=""
            ).values_list("tracklet_id", flat=True)
        )
        updates, night_of = [], {}
        for pk, date, night_id, survey_id, queue_score in rows:
            score = stored[pk]
            night_of[pk] = night_id
            keys = dict(night=date.isoformat(), version=model_version.version, survey_id=survey_id)
            second = audit_key(**keys, salt="second") < settings.SECOND_SCREENING_RATE
            updates.append(
                Tracklet(
                    pk=pk,
                    score=score,
                    model_version=model_version,
                    scored_at=now,
                    claimed_at=None,
                    audit_key=audit_key(**keys),
                    queue_score=queue_score if pk in keep else None,
                    reviews_wanted=(
                        GOLD_REVIEWS if pk in gold else 2 if second and score >= threshold else 1
                    ),
                )
            )
        Tracklet.objects.bulk_update(
            updates,
            [
                "score",
                "model_version",
                "scored_at",
                "claimed_at",
                "audit_key",
                "queue_score",
                "reviews_wanted",
            ],
            batch_size=1000,
        )
        Tracklet.objects.filter(pk__in=ids, status=Tracklet.Status.PENDING).update(
            status=Tracklet.Status.SCORED
        )
        for night in Night.objects.filter(pk__in=set(night_of.values())):
            audit_draw(night=night, model=model_version)
            unplaced = [pk for pk in gold if night_of.get(pk) == night.pk]
            if unplaced:
                blind_rows_place(night=night, model=model_version, tracklet_ids=unplaced)
    return changed


# Gold tracklets stay in every reviewer's queue until each has judged them.
GOLD_REVIEWS = 1000


def _detections_by_tracklet(ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in ids}
    for tracklet_id, detection_id in (
        Detection.objects.filter(tracklet_id__in=ids)
        .order_by("tracklet_id", "index")
        .values_list("tracklet_id", "id")
    ):
        out[tracklet_id].append(detection_id)
    return out

"""Storing the model's output: per-stamp class probabilities and tracklet scores, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from screening.bulk import rows_update
from screening.models import (
    NOT_MOVING_MAX,
    UNLIKE_TRAINING_MAX,
    Detection,
    ModelVersion,
    StampPrediction,
    Tracklet,
    TrackletScore,
    stamp_classes_text,
)
from screening.nights import night_counts_moved
from screening.review.routing import scored_rows_route


@dataclass(frozen=True)
class TrackletResult:
    """One tracklet's output from a model: per-stamp probabilities (time order) and its score."""

    tracklet_id: int
    stamp_probabilities: Sequence[Sequence[float]]  # one row per detection, one column per class
    score: float
    unlike_training: str = ""  # why the model's training data holds nothing like it
    not_moving: str = ""  # why the motion rule capped its score (classifier.motion)


def scores_store(*, model_version: ModelVersion, results: Sequence[TrackletResult]) -> int:
    """Write predictions and scores for many tracklets in one transaction.

    Returns how many tracklets now show this model's score and did not before.

    A tracklet already scored by this model version keeps that score, so storing twice changes
    nothing. Reviewed tracklets keep their status; pending ones become `scored`.
    """
    classes = list(model_version.classes)
    ids = [r.tracklet_id for r in results]
    with transaction.atomic():
        stored = {
            pk: (score, unlike, still)
            for pk, score, unlike, still in TrackletScore.objects.filter(
                model_version=model_version, tracklet_id__in=ids
            ).values_list("tracklet_id", "score", "unlike_training", "not_moving")
        }
        todo = [r for r in results if r.tracklet_id not in stored]
        changed = Tracklet.objects.filter(pk__in=ids).exclude(model_version=model_version).count()
        detections = _detections_by_tracklet([r.tracklet_id for r in todo])
        # the stamps' top classes of the scores stored before (a model made active again)
        tops: dict[int, set[str]] = {pk: set() for pk in ids}
        for tracklet_id, top in StampPrediction.objects.filter(
            model_version=model_version, detection__tracklet_id__in=list(stored)
        ).values_list("detection__tracklet_id", "top_class"):
            tops[tracklet_id].add(top)
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
                tops[result.tracklet_id].add(top)
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
                    unlike_training=result.unlike_training[:UNLIKE_TRAINING_MAX],
                    not_moving=result.not_moving[:NOT_MOVING_MAX],
                )
            )
            stored[result.tracklet_id] = (
                float(result.score),
                result.unlike_training[:UNLIKE_TRAINING_MAX],
                result.not_moving[:NOT_MOVING_MAX],
            )
        StampPrediction.objects.bulk_create(predictions, batch_size=2000)
        TrackletScore.objects.bulk_create(scores, batch_size=2000)
        ModelVersion.objects.filter(pk=model_version.pk).update(
            tracklets_scored=F("tracklets_scored") + len(scores),
            stamps_scored=F("stamps_scored") + len(predictions),
        )
        # Every tracklet now shows this model's score (the new one, or the one stored before,
        # for a model made active again after a rollback) and is no longer claimed by a worker;
        # who reviews it next is the review stage's decision.
        # One write of each row (`rows_update`): its score and reason, its stamps' top classes
        # (the queue's class filter), this model, now.
        now = timezone.now()
        rows_update(
            [
                Tracklet(
                    pk=pk,
                    score=stored[pk][0],
                    unlike_training=stored[pk][1],
                    not_moving=stored[pk][2],
                    stamp_classes=stamp_classes_text(tops[pk]),
                    model_version=model_version,
                    scored_at=now,
                    claimed_at=None,
                )
                for pk in ids
            ],
            [
                "score",
                "unlike_training",
                "not_moving",
                "stamp_classes",
                "model_version",
                "scored_at",
                "claimed_at",
            ],  # fmt: skip
        )
        pending: dict[int, list[int]] = {}
        for pk, night_id in Tracklet.objects.filter(
            pk__in=ids, status=Tracklet.Status.PENDING
        ).values_list("pk", "night_id"):
            pending.setdefault(night_id, []).append(pk)
        moved = {
            night_id: Tracklet.objects.filter(
                pk__in=night_ids, status=Tracklet.Status.PENDING
            ).update(status=Tracklet.Status.SCORED)
            for night_id, night_ids in pending.items()
        }
        scored_rows_route(model_version=model_version, tracklet_ids=ids)
        for night_id, n in moved.items():  # last: the night's row is locked until the commit
            night_counts_moved(night_id, Tracklet.Status.PENDING, Tracklet.Status.SCORED, n)
    return changed


def _detections_by_tracklet(ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in ids}
    for tracklet_id, detection_id in (
        Detection.objects.filter(tracklet_id__in=ids)
        .order_by("tracklet_id", "index")
        .values_list("tracklet_id", "id")
    ):
        out[tracklet_id].append(detection_id)
    return out

"""Scoring's Celery tasks (inference queue): score what waits, and the beat's sweep that catches
up after lost messages or killed workers. Names are pinned (`screening.queueing`)."""

from __future__ import annotations

from celery import shared_task

from screening import queueing
from screening.scoring.digest2 import digest2_pending_ids, digest2_store
from screening.scoring.worker import tracklets_score_pending, unscored_waiting


@shared_task(name=queueing.SCORE_PENDING, time_limit=3600, soft_time_limit=3540)
def score_pending() -> int:
    """Score what the active model has not scored yet, in batches."""
    return tracklets_score_pending()


@shared_task(name=queueing.SWEEP_UNSCORED, time_limit=120, soft_time_limit=110)
def sweep_unscored() -> int:
    """Beat: queue scoring when tracklets wait unclaimed (lost messages, killed workers)."""
    waiting = unscored_waiting()
    if waiting:
        score_pending.delay()
    if digest2_pending_ids(limit=1):
        digest2_pending.delay()
    return waiting


@shared_task(name=queueing.DIGEST2_PENDING, time_limit=3600, soft_time_limit=3540)
def digest2_pending() -> int:
    """digest2 for every tracklet the model has scored and digest2 has not, in batches."""
    done = 0
    while ids := digest2_pending_ids(limit=200):
        done += digest2_store(ids)
    return done

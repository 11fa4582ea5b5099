"""Retraining's Celery tasks (training queue) and the beat's housekeeping of training runs.
Names are pinned (`screening.queueing`)."""

from __future__ import annotations

from celery import shared_task

from screening import queueing
from screening.registry.training import (
    TrainingBusy,
    labels_since_last_run,
    training_run_execute,
    training_run_request,
    training_runs_reap,
)


@shared_task(name=queueing.TRAIN_MODEL_RUN, time_limit=3 * 3600, soft_time_limit=3 * 3600 - 120)
def train_model_run(run_id: int) -> None:
    """Run a queued training run; marks it failed on any error."""
    training_run_execute(run_id=run_id)


@shared_task(name=queueing.REAP_TRAINING_RUNS, time_limit=120, soft_time_limit=110)
def reap_training_runs() -> int:
    """Beat: mark failed the runs whose worker died (no heartbeat for TRAINING_STALE_SECONDS)."""
    return training_runs_reap()


@shared_task(name=queueing.TRAIN_SCHEDULED)
def train_scheduled() -> int | None:
    """Beat (weekly by default, editable in the admin): retrain when there are new labels."""
    if not labels_since_last_run():
        return None
    try:
        return training_run_request(trigger="scheduled").pk
    except TrainingBusy:
        return None

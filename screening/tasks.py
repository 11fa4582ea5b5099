"""Celery tasks: thin adapters that take ids and call a service; each is safe to run twice.

Services are imported inside the tasks: the services queue tasks too, and the web process must
not import what only workers need.
"""

from __future__ import annotations

import logging

from celery import shared_task


@shared_task(bind=True, time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def ingest_bundle_upload(self, upload_id: int) -> None:
    """Check and split an uploaded night bundle, queue its chunks, ingest the first (default)."""
    from screening.uploads import bundle_upload_run

    bundle_upload_run(upload_id=upload_id, worker=self.request.hostname or "")


@shared_task(bind=True, time_limit=3600, soft_time_limit=3540)
def ingest_bundle_chunk(self, chunk_id: int) -> None:
    """Ingest one chunk of an uploaded bundle (default queue; any worker, any machine)."""
    from screening.uploads import bundle_chunk_run

    bundle_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "")


logger = logging.getLogger(__name__)


def request_scoring() -> None:
    """Queue a scoring pass (call after commit). If the broker is down, the sweep catches up."""
    try:
        score_pending.delay()
    except Exception:  # the broker is not ours to fix here; nothing is lost
        logger.warning("could not queue scoring; the periodic sweep will", exc_info=True)


@shared_task(time_limit=3600, soft_time_limit=3540)
def score_pending() -> int:
    """Score what the active model has not scored yet, in batches (inference queue)."""
    from screening.inference import tracklets_score_pending

    return tracklets_score_pending()


@shared_task(time_limit=120, soft_time_limit=110)
def sweep_unscored() -> int:
    """Beat: queue scoring when tracklets wait unclaimed (lost messages, killed workers)."""
    from screening.inference import unscored_waiting

    waiting = unscored_waiting()
    if waiting:
        score_pending.delay()
    return waiting


@shared_task
def prune_bundle_uploads() -> int:
    """Housekeeping (beat): drop stored archives of finished uploads past their retention."""
    from screening.uploads import bundle_uploads_prune

    return bundle_uploads_prune()


@shared_task(time_limit=3 * 3600, soft_time_limit=3 * 3600 - 120)
def train_model_run(run_id: int) -> None:
    """Run a queued training run (training queue); marks it failed on any error."""
    from screening.training import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(time_limit=120, soft_time_limit=110)
def reap_training_runs() -> int:
    """Beat: mark failed the runs whose worker died (no heartbeat for TRAINING_STALE_SECONDS)."""
    from screening.training import training_runs_reap

    return training_runs_reap()


@shared_task
def train_scheduled() -> int | None:
    """Beat (weekly by default, editable in the admin): retrain when there are new labels."""
    from screening.training import TrainingBusy, labels_since_last_run, training_run_request

    if not labels_since_last_run():
        return None
    try:
        return training_run_request(trigger="scheduled").pk
    except TrainingBusy:
        return None


def request_displays(tracklet_ids: list[int]) -> None:
    """Queue the display images of those just-scored tracklets that reviewers will open (their
    to-review rows), so that a queue page finds them drawn. If the broker is down, the page
    draws what is missing itself."""
    try:
        make_displays.delay(list(tracklet_ids))
    except Exception:  # the broker is not ours to fix here; nothing is lost
        logger.warning("could not queue display images; pages will draw them", exc_info=True)


@shared_task(time_limit=600, soft_time_limit=590)
def make_displays(tracklet_ids: list[int]) -> int:
    """Draw the display PNGs of the tracklets among these that sit in reviewers' queues (passing
    the threshold, or placed there blind); default queue, after scoring."""
    from screening.blind import queued_q
    from screening.models import Tracklet
    from screening.stamp_display import displays_make

    queued = Tracklet.objects.filter(queued_q(), pk__in=tracklet_ids)
    return displays_make(list(queued.values_list("pk", flat=True)))

"""Ingest's Celery tasks (default queue): thin adapters that take ids and call a service; each is
safe to run twice. Names are pinned (`screening.queueing`)."""

from __future__ import annotations

from celery import shared_task

from screening import queueing
from screening.ingest.uploads import (
    bundle_chunk_run,
    bundle_upload_run,
    bundle_uploads_prune,
    bundle_uploads_sweep,
)


@shared_task(
    name=queueing.INGEST_BUNDLE_UPLOAD, bind=True, time_limit=2 * 3600, soft_time_limit=7140
)
def ingest_bundle_upload(self, upload_id: int) -> None:
    """Check and split an uploaded night bundle, queue its chunks, ingest the first."""
    bundle_upload_run(upload_id=upload_id, worker=self.request.hostname or "")


@shared_task(name=queueing.INGEST_BUNDLE_CHUNK, bind=True, time_limit=3600, soft_time_limit=3540)
def ingest_bundle_chunk(self, chunk_id: int) -> None:
    """Ingest one chunk of an uploaded bundle (any worker, any machine)."""
    bundle_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(name=queueing.PRUNE_BUNDLE_UPLOADS)
def prune_bundle_uploads() -> int:
    """Housekeeping (beat): drop stored archives of finished uploads past their retention."""
    return bundle_uploads_prune()


@shared_task(name=queueing.SWEEP_BUNDLE_CHUNKS, time_limit=120, soft_time_limit=110)
def sweep_bundle_chunks() -> dict[str, int]:
    """Beat: queue again what the broker lost, take over what a lost worker left, finish what
    is done (`bundle_uploads_sweep`)."""
    return bundle_uploads_sweep()

"""Celery tasks: thin adapters that take ids and call a service; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from screening.uploads import bundle_upload_run, bundle_uploads_prune


@shared_task(time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def ingest_bundle_upload(upload_id: int) -> None:
    """Ingest an uploaded night bundle (default queue)."""
    bundle_upload_run(upload_id=upload_id)


@shared_task
def prune_bundle_uploads() -> int:
    """Housekeeping (beat): drop stored archives of finished uploads past their retention."""
    return bundle_uploads_prune()

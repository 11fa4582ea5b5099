"""Bundle uploads over the API: stored at once, ingested by a worker, results kept on the row."""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from screening.bundles import BundleError, BundleReport, bundle_ingest
from screening.models import BundleUpload, JobStatus

logger = logging.getLogger(__name__)


def bundle_upload_create(*, file: UploadedFile, user) -> BundleUpload:
    """Store an uploaded bundle and queue its ingest once the row is committed."""
    from screening.tasks import ingest_bundle_upload

    with transaction.atomic():
        upload = BundleUpload.objects.create(
            file=file, original_name=file.name[:255], uploaded_by=user
        )
        transaction.on_commit(lambda: ingest_bundle_upload.delay(upload.pk))
    return upload


def bundle_upload_run(*, upload_id: int) -> None:
    """Ingest a stored bundle; safe to run twice (tracklet ingest is idempotent)."""
    claimed = BundleUpload.objects.filter(
        pk=upload_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).update(status=JobStatus.RUNNING, started_at=timezone.now())
    if not claimed:
        return
    upload = BundleUpload.objects.get(pk=upload_id)
    step = {"last": -1.0}
    report = BundleReport()

    def progress(done: int, total: int) -> None:
        fraction = done / total
        if fraction - step["last"] >= 0.01 or done == total:
            step["last"] = fraction
            # The results so far are kept with the progress: a crash midway still lists them.
            BundleUpload.objects.filter(pk=upload_id).update(
                progress=fraction, summary=report.summary, results=report.results
            )

    try:
        with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
            local = Path(tmp) / Path(upload.file.name).name
            with upload.file.open("rb") as source, open(local, "wb") as sink:
                shutil.copyfileobj(source, sink)
            bundle_ingest(path=local, progress=progress, report=report)
    except BundleError as exc:
        _finish(
            upload_id,
            status=JobStatus.FAILED,
            error=f"bundle rejected, nothing written: {exc}" if not report.results else str(exc),
            summary=report.summary,
            results=report.results,
        )
        return
    except Exception as exc:
        logger.exception("bundle upload %s failed", upload_id)
        done = len(report.results)
        _finish(
            upload_id,
            status=JobStatus.FAILED,
            error=f"internal error after {done} tracklet(s), which the results list: "
            f"{type(exc).__name__}: {exc}",
            summary=report.summary,
            results=report.results,
        )
        raise
    _finish(upload_id, status=JobStatus.SUCCEEDED, summary=report.summary, results=report.results)


def _finish(upload_id: int, **fields) -> None:
    BundleUpload.objects.filter(pk=upload_id).update(
        finished_at=timezone.now(), progress=1.0, **fields
    )


def bundle_uploads_prune(*, older_than_days: int | None = None) -> int:
    """Delete the stored archives of finished uploads older than the retention; keep the rows."""
    days = older_than_days if older_than_days is not None else settings.BUNDLE_UPLOAD_KEEP_DAYS
    stale = BundleUpload.objects.filter(
        status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED],
        finished_at__lt=timezone.now() - timedelta(days=days),
    ).exclude(file="")
    pruned = 0
    for upload in stale:
        upload.file.delete(save=False)
        BundleUpload.objects.filter(pk=upload.pk).update(file="")
        pruned += 1
    return pruned

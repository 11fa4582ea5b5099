"""Bundle upload rows: housekeeping drops old archives but keeps the results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from screening.models import BundleUpload, JobStatus
from screening.uploads import bundle_uploads_prune

pytestmark = pytest.mark.django_db


def _upload(status: str, age_days: float) -> BundleUpload:
    upload = BundleUpload(original_name="night.zip", status=status, results=[{"status": "created"}])
    upload.file.save("night.zip", ContentFile(b"PK archive bytes"), save=False)
    upload.finished_at = timezone.now() - timedelta(days=age_days)
    upload.save()
    return upload


def test_it_deletes_old_finished_archives_and_keeps_recent_or_running_ones(media_root):
    old = _upload(JobStatus.SUCCEEDED, 10)
    recent = _upload(JobStatus.SUCCEEDED, 1)
    running = _upload(JobStatus.RUNNING, 10)
    old_path = media_root / old.file.name
    assert bundle_uploads_prune(older_than_days=7) == 1
    old.refresh_from_db()
    assert not old_path.exists() and old.file.name == "" and old.results
    recent.refresh_from_db()
    running.refresh_from_db()
    assert (media_root / recent.file.name).exists() and (media_root / running.file.name).exists()

"""Bundle upload rows: housekeeping drops old archives but keeps the results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from screening.ingest.uploads import bundle_uploads_prune
from screening.models import BundleUpload, JobStatus

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


def test_running_an_upload_job_twice_ingests_it_once(tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from screening.ingest.uploads import bundle_upload_run
    from screening.models import Tracklet
    from tests.screening.test_bundles import zip_folder
    from tests.stamps import write_bundle

    archive = zip_folder(write_bundle(tmp_path / "night", ["A", "B"]), tmp_path / "night.zip")
    upload = BundleUpload.objects.create(
        file=SimpleUploadedFile("night.zip", archive.read_bytes()), original_name="night.zip"
    )
    bundle_upload_run(upload_id=upload.pk)
    BundleUpload.objects.filter(pk=upload.pk).update(status=JobStatus.RUNNING)  # a redelivery
    bundle_upload_run(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED
    # the report is still the first run's: what was created is not called unchanged
    assert upload.summary["tracklets"] == 2 and upload.summary["created"] == 2
    assert Tracklet.objects.count() == 2
    bundle_upload_run(upload_id=upload.pk)  # finished: nothing to do
    upload.refresh_from_db()
    assert upload.summary["created"] == 2


def test_the_upload_list_leaves_out_per_tracklet_results_and_never_reads_them(pipeline_client):
    """A night's upload lists tens of thousands of results: the list answers counts and
    progress in a few kilobytes (and does not load the results from the database); reading the
    one upload gives them all."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = [
        {"tracklet": f"T{i:05d}", "status": "created", "id": i, "origin": f"line {i}"}
        for i in range(20000)
    ]
    big = _upload(JobStatus.SUCCEEDED, 0)
    BundleUpload.objects.filter(pk=big.pk).update(results=results, summary={"created": 20000})
    with CaptureQueriesContext(connection) as queries:
        listed = pipeline_client.get("/api/v1/bundles/")
    assert listed.status_code == 200
    assert len(listed.content) < 5000, len(listed.content)
    row = listed.json()["results"][0]
    assert row["id"] == big.pk and row["summary"] == {"created": 20000} and "results" not in row
    assert not any('"results"' in q["sql"] for q in queries.captured_queries), queries
    one = pipeline_client.get(f"/api/v1/bundles/{big.pk}/").json()
    assert len(one["results"]) == 20000 and one["results"][7]["tracklet"] == "T00007"

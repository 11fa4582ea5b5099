"""Faults during ingest lose nothing: a database that goes away is retried (no tracklet rejected
for it), messages a broker lost are queued again, a lost worker's chunk is taken over, and an
upload whose chunks all finished gets its report; each valid tracklet ends up stored once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from screening import queueing
from screening.ingest import bundles
from screening.ingest.bundles import DatabaseUnavailable, bundle_ingest
from screening.ingest.uploads import bundle_chunk_run, bundle_upload_run, bundle_uploads_sweep
from screening.models import BundleChunk, BundleUpload, JobStatus, Tracklet
from tests.screening.test_bundles import zip_folder
from tests.screening.test_parallel_ingest import IDS, _bad_bundle, _upload
from tests.stamps import write_bundle

GOOD = sorted(set(IDS) - {"P09", "P11"})  # _bad_bundle's two bad tracklets


def _flaky(monkeypatch, failures: int) -> list[str]:
    """The next `failures` batch ingests meet a database that has just gone away."""
    real, met = bundles._ingest_batch, []

    def ingest(batch, *args):
        if len(met) < failures:
            met.append(batch[0].survey_id)
            raise OperationalError("server closed the connection unexpectedly")
        return real(batch, *args)

    monkeypatch.setattr(bundles, "_ingest_batch", ingest)
    return met


@pytest.mark.django_db
def test_a_database_that_goes_away_briefly_is_retried_and_no_tracklet_is_rejected(
    tmp_path, monkeypatch, settings
):
    settings.INGEST_DB_RETRY_SECONDS = 10
    met = _flaky(monkeypatch, failures=3)
    report = bundle_ingest(path=write_bundle(tmp_path / "night", IDS[:5]))
    assert met == ["P00", "P00", "P00"]  # retried, with a growing pause, until it came back
    assert report.summary["created"] == 5 and report.summary["rejected"] == 0
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == IDS[:5]


@pytest.mark.django_db
def test_a_database_gone_for_longer_stops_the_work_without_rejecting_a_tracklet(
    tmp_path, monkeypatch, settings
):
    settings.INGEST_DB_RETRY_SECONDS = 0
    _flaky(monkeypatch, failures=1000)
    report = bundles.BundleReport()
    with pytest.raises(DatabaseUnavailable, match="did not come back within 0 s"):
        bundle_ingest(path=write_bundle(tmp_path / "night", IDS[:3]), report=report)
    assert report.results == [] and not Tracklet.objects.exists()


def _queued(monkeypatch) -> list[tuple[str, int]]:
    """Ingest tasks queued (name, id), kept here instead of sent to a broker."""
    sent: list[tuple[str, int]] = []

    def enqueue(name: str, *args) -> None:
        if name != queueing.SCORE_PENDING:  # scoring is not this test's business
            sent.append((name, *args))

    monkeypatch.setattr(queueing, "enqueue", enqueue)
    return sent


@pytest.mark.django_db(transaction=True)
def test_the_sweep_queues_again_what_the_broker_lost_and_takes_over_a_silent_chunk(
    tmp_path, monkeypatch, settings
):
    settings.INGEST_CHUNK_TRACKLETS = 3  # 5 chunks: the job ingests the first, queues 4
    sent = _queued(monkeypatch)
    upload = _upload(zip_folder(_bad_bundle(tmp_path), tmp_path / "night.zip"))
    bundle_upload_run(upload_id=upload.pk)
    chunk_ids = [pk for _, pk in sent]
    assert len(chunk_ids) == 4 and Tracklet.objects.count() == 3
    sent.clear()
    monkeypatch.setattr(queueing, "queue_depth", lambda queue: 4)  # all four still waiting
    assert bundle_uploads_sweep() == {"requeued_lost": 0, "taken_over": 0, "finished": 0}
    monkeypatch.setattr(queueing, "queue_depth", lambda queue: 1)  # the broker lost three
    assert bundle_uploads_sweep()["requeued_lost"] == 4
    assert sorted(pk for _, pk in sent) == sorted(chunk_ids)  # a duplicate of one is a no-op
    sent.clear()
    # A worker took chunk 2 and was lost: the sweep hands it on once it has been silent.
    lost = BundleChunk.objects.get(pk=chunk_ids[0])
    BundleChunk.objects.filter(pk=lost.pk).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), alive_at=timezone.now()
    )
    monkeypatch.setattr(queueing, "queue_depth", lambda queue: 3)
    assert bundle_uploads_sweep()["taken_over"] == 0  # alive a moment ago
    silent = timezone.now() - timedelta(seconds=settings.INGEST_CHUNK_STALE_SECONDS + 1)
    BundleChunk.objects.filter(pk=lost.pk).update(alive_at=silent)
    assert bundle_uploads_sweep()["taken_over"] == 1 and sent == [
        (queueing.INGEST_BUNDLE_CHUNK, lost.pk)
    ]
    for pk in chunk_ids:
        bundle_chunk_run(chunk_id=pk, worker="other@host")
        bundle_chunk_run(chunk_id=pk, worker="duplicate@host")  # a requeued duplicate
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED
    assert [r["tracklet"] for r in upload.results] == IDS
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == GOOD
    # The last chunk's report could not be written (its database went away): the sweep writes it.
    BundleUpload.objects.filter(pk=upload.pk).update(status=JobStatus.RUNNING, results=[])
    assert bundle_uploads_sweep()["finished"] == 1
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED and len(upload.results) == 14


@pytest.mark.django_db(transaction=True)
def test_the_sweep_takes_over_an_upload_whose_job_was_lost_before_it_split(
    tmp_path, monkeypatch, settings
):
    sent = _queued(monkeypatch)
    upload = _upload(zip_folder(write_bundle(tmp_path / "n", IDS[:2]), tmp_path / "n.zip"))
    long_ago = timezone.now() - timedelta(seconds=settings.INGEST_CHUNK_STALE_SECONDS + 1)
    BundleUpload.objects.filter(pk=upload.pk).update(status=JobStatus.RUNNING, started_at=long_ago)
    monkeypatch.setattr(queueing, "queue_depth", lambda queue: 0)
    assert bundle_uploads_sweep()["taken_over"] == 1
    assert sent == [(queueing.INGEST_BUNDLE_UPLOAD, upload.pk)]
    bundle_upload_run(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED and upload.summary["created"] == 2


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_flushed_broker_loses_no_chunk_with_a_real_worker(start_worker, tmp_path, settings):
    """Chunks queued in the real Redis, the broker flushed, then a real worker and the sweep:
    every valid tracklet is ingested once and the upload reports the whole bundle."""
    from screening.celery import app

    settings.INGEST_CHUNK_TRACKLETS = 2  # 7 chunks: the job ingests one and queues six
    upload = _upload(zip_folder(_bad_bundle(tmp_path), tmp_path / "night.zip"))
    bundle_upload_run(upload_id=upload.pk)
    assert BundleChunk.objects.filter(status=JobStatus.QUEUED).count() == 6
    app.control.purge()  # the broker loses every queued message
    start_worker("cpu")
    time.sleep(3)
    assert Tracklet.objects.count() == 2  # nothing came: the messages are gone
    assert bundle_uploads_sweep()["requeued_lost"] == 6
    deadline = time.monotonic() + 90
    while BundleUpload.objects.get(pk=upload.pk).status == JobStatus.RUNNING:
        assert time.monotonic() < deadline, list(BundleChunk.objects.values("index", "status"))
        time.sleep(0.3)
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    assert [r["tracklet"] for r in upload.results] == IDS
    assert upload.summary["created"] == 12 and upload.summary["rejected"] == 2
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == GOOD


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_restart_during_ingest_rejects_nothing(
    start_worker, pipeline_client, tmp_path, media_root
):
    """The real PostgreSQL restarted (`pg_ctl restart -m fast`: every connection cut) while a
    real worker ingests an uploaded bundle: every tracklet is stored once, none rejected."""
    import os
    import shlex
    import subprocess

    from django.db import connections

    if not os.environ.get("PG_RESTART"):
        pytest.skip("needs the PostgreSQL that ./run test starts")
    ids = [f"R{i:03d}" for i in range(300)]
    archive = zip_folder(write_bundle(tmp_path / "night", ids), tmp_path / "night.zip")
    start_worker("cpu", INGEST_CHUNK_TRACKLETS="1000")
    with open(archive, "rb") as handle:
        response = pipeline_client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    upload_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while not BundleChunk.objects.filter(upload_id=upload_id, done__gte=30).exists():
        assert time.monotonic() < deadline, "the ingest did not start"
        time.sleep(0.05)
    subprocess.run(shlex.split(os.environ["PG_RESTART"]), check=True, stdout=subprocess.DEVNULL)
    connections.close_all()  # this process's connections were cut too
    deadline = time.monotonic() + 120
    while BundleUpload.objects.get(pk=upload_id).status == JobStatus.RUNNING:
        assert time.monotonic() < deadline, list(BundleChunk.objects.values("done", "status"))
        time.sleep(0.3)
    upload = BundleUpload.objects.get(pk=upload_id)
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    assert upload.summary["created"] == 300 and upload.summary["rejected"] == 0
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == ids
    log = (media_root.parent / "worker-0-cpu.log").read_text()
    assert "database error on" in log  # the restart did land mid-ingest


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_ingest_is_taken_over_and_each_tracklet_stored_once(
    start_worker, pipeline_client, tmp_path, settings
):
    """kill -9 of the worker (and its pool) ingesting an upload; another worker and the sweep
    (as the beat runs it) finish it: the report lists each tracklet once, in order."""
    from tests.processes import kill_worker

    settings.INGEST_CHUNK_STALE_SECONDS = 2  # the sweep runs in this process
    ids = [f"K{i:03d}" for i in range(300)]
    archive = zip_folder(write_bundle(tmp_path / "night", ids), tmp_path / "night.zip")
    first = start_worker("cpu", INGEST_CHUNK_TRACKLETS="1000")
    with open(archive, "rb") as handle:
        response = pipeline_client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    upload_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while not BundleChunk.objects.filter(upload_id=upload_id, done__gte=30).exists():
        assert time.monotonic() < deadline, "the ingest did not start"
        time.sleep(0.05)
    kill_worker(first)
    stopped_at = Tracklet.objects.count()
    assert stopped_at < 300
    start_worker("cpu", INGEST_CHUNK_TRACKLETS="1000")
    deadline = time.monotonic() + 120
    while BundleUpload.objects.get(pk=upload_id).status == JobStatus.RUNNING:
        assert time.monotonic() < deadline, list(BundleChunk.objects.values("done", "status"))
        bundle_uploads_sweep()
        time.sleep(1)
    upload = BundleUpload.objects.get(pk=upload_id)
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    assert [r["tracklet"] for r in upload.results] == ids
    assert upload.summary["rejected"] == 0
    assert upload.summary["created"] + upload.summary["unchanged"] == 300
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == ids

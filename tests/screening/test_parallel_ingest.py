"""One uploaded bundle, split into chunks that several workers ingest at once: one job, one
progress bar, one report listing every tracklet once, in the bundle's order."""

from __future__ import annotations

import random
import time

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from screening.ingest.bundles import bundle_ingest
from screening.ingest.uploads import bundle_chunk_run, bundle_upload_run
from screening.models import BundleChunk, BundleUpload, Detection, JobStatus, Tracklet
from tests.conftest import stored_files
from tests.screening.test_bundles import zip_folder
from tests.stamps import write_bundle

IDS = [f"P{i:02d}" for i in range(14)]


def _bad_bundle(tmp_path):
    """14 tracklets; P09 has an empty stamp and P11 names a folder as a stamp."""
    folder = write_bundle(tmp_path / "night", IDS)
    (folder / "stamps" / "P09_1.fits").write_bytes(b"")
    (folder / "stamps" / "P11_2.fits").unlink()
    (folder / "stamps" / "P11_2.fits").mkdir()
    (folder / "stamps" / "P11_2.fits" / "inside").write_bytes(b"a file, so the zip keeps it")
    return folder


def _upload(archive) -> BundleUpload:
    return BundleUpload.objects.create(
        file=SimpleUploadedFile("night.zip", archive.read_bytes()), original_name="night.zip"
    )


def _capture_chunk_tasks(monkeypatch) -> list[int]:
    """Chunk ids queued for workers, kept here instead of sent to a broker."""
    from screening import queueing

    queued: list[int] = []

    def enqueue(name: str, *args) -> None:
        assert name == queueing.INGEST_BUNDLE_CHUNK, name
        queued.extend(args)

    monkeypatch.setattr(queueing, "enqueue", enqueue)
    return queued


@pytest.mark.django_db
def test_chunks_run_in_any_order_give_the_report_of_the_whole_bundle(
    tmp_path, settings, monkeypatch, media_root, django_capture_on_commit_callbacks
):
    settings.INGEST_CHUNK_TRACKLETS = 3  # 5 chunks
    folder = _bad_bundle(tmp_path)
    whole = bundle_ingest(path=folder).results  # what one process reports for this bundle
    Tracklet.objects.all().delete()
    queued = _capture_chunk_tasks(monkeypatch)
    upload = _upload(zip_folder(folder, tmp_path / "night.zip"))
    with django_capture_on_commit_callbacks(execute=True):
        bundle_upload_run(upload_id=upload.pk, worker="first@host")
    upload.refresh_from_db()
    assert (upload.n_tracklets, upload.n_chunks, upload.status) == (14, 5, JobStatus.RUNNING)
    assert len(queued) == 4 and Tracklet.objects.count() == 3  # the job ingested chunk 1 itself
    assert 0 < upload.progress < 1
    random.Random(3).shuffle(queued)
    with django_capture_on_commit_callbacks(execute=True):
        for chunk_id in queued:
            bundle_chunk_run(chunk_id=chunk_id, worker="other@host")
            bundle_chunk_run(chunk_id=chunk_id, worker="late@host")  # a second delivery: no-op
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED and upload.progress == 1.0
    assert [r["tracklet"] for r in upload.results] == IDS
    strip = [{k: v for k, v in r.items() if k != "id"} for r in upload.results]
    assert strip == [{k: v for k, v in r.items() if k != "id"} for r in whole]
    assert upload.summary == {
        "tracklets": 14,
        "created": 12,
        "unchanged": 0,
        "rejected": 2,
        "conflict": 0,
    }
    rejected = {r["tracklet"]: r["errors"][0]["reason"] for r in upload.results if "errors" in r}
    assert "file is empty" in rejected["P09"] and "is a folder" in rejected["P11"]
    assert Tracklet.objects.count() == 12 and Detection.objects.count() == 48
    workers = dict(BundleChunk.objects.values_list("index", "worker"))
    assert workers == {
        0: "first@host",
        1: "other@host",
        2: "other@host",
        3: "other@host",
        4: "other@host",
    }
    # the chunk archives are gone once the report is written; the upload's own is kept
    assert not [p for p in stored_files(media_root) if "chunks" in p.relative_to(media_root).parts]
    assert default_storage.exists(upload.file.name)


@pytest.mark.django_db
def test_a_chunk_whose_worker_died_midway_resumes_after_what_it_listed(
    tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    settings.INGEST_CHUNK_TRACKLETS = 7
    queued = _capture_chunk_tasks(monkeypatch)
    upload = _upload(zip_folder(write_bundle(tmp_path / "n", IDS), tmp_path / "n.zip"))
    with django_capture_on_commit_callbacks(execute=True):
        bundle_upload_run(upload_id=upload.pk)
    chunk = BundleChunk.objects.get(pk=queued[0])

    class WorkerLost(BaseException):
        """What a SIGKILL looks like from inside: nothing after it runs."""

    from screening.ingest import bundles, uploads

    monkeypatch.setattr(bundles, "INGEST_BATCH", 1)  # a tracklet a transaction: dies between
    real, calls = bundles._ingest_batch_safely, []

    def dies_at_the_fourth(*args):
        calls.append(1)
        if len(calls) == 4:
            raise WorkerLost
        return real(*args)

    monkeypatch.setattr(uploads, "PROGRESS_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(bundles, "_ingest_batch_safely", dies_at_the_fourth)
    with pytest.raises(WorkerLost):
        bundle_chunk_run(chunk_id=chunk.pk)
    monkeypatch.setattr(bundles, "_ingest_batch_safely", real)
    chunk.refresh_from_db()
    assert (chunk.status, chunk.done, len(chunk.results)) == (JobStatus.RUNNING, 3, 3)
    assert Tracklet.objects.count() == 10
    bundle_chunk_run(chunk_id=chunk.pk)  # too soon: its worker may still be at it
    assert Tracklet.objects.count() == 10
    silent = timezone.now() - timedelta(hours=1)  # no sign of life since (claim, progress)
    BundleChunk.objects.filter(pk=chunk.pk).update(started_at=silent, alive_at=silent)
    bundle_chunk_run(chunk_id=chunk.pk)  # the redelivery (or the sweep's)
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED
    assert [r["tracklet"] for r in upload.results] == IDS
    assert upload.summary["created"] == 14  # the three it had done are not called unchanged
    assert Tracklet.objects.count() == 14


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_workers_ingest_one_bundle_at_once_every_tracklet_exactly_once(
    start_worker, pipeline_client, tmp_path
):
    env = {"INGEST_CHUNK_TRACKLETS": "2"}  # 7 chunks of the 14 tracklets
    start_worker("cpu", **env)
    start_worker("cpu", **env)
    archive = zip_folder(_bad_bundle(tmp_path), tmp_path / "night.zip")
    with open(archive, "rb") as handle:
        response = pipeline_client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    url = f"/api/v1/bundles/{response.json()['id']}/"
    deadline, seen = time.monotonic() + 120, []
    while True:
        body = pipeline_client.get(url).json()
        seen.append(body["progress"])
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert body["status"] == "succeeded", body
    assert seen == sorted(seen) and body["progress"] == 1.0  # one bar, only forwards
    assert [r["tracklet"] for r in body["results"]] == IDS  # each once, in the bundle's order
    assert body["summary"]["created"] == 12 and body["summary"]["rejected"] == 2
    assert body["tracklets"] == 14 and len(body["chunks"]) == 7
    assert all(c["status"] == "succeeded" and c["done"] == 2 for c in body["chunks"])
    assert len({c["worker"] for c in body["chunks"]}) == 2, body["chunks"]  # both took part
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == sorted(
        set(IDS) - {"P09", "P11"}
    )
    assert Detection.objects.count() == 48
    ids = [r["id"] for r in body["results"] if r["status"] == "created"]
    assert sorted(ids) == sorted(Tracklet.objects.values_list("id", flat=True))

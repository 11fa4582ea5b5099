"""MEDIA_STORAGE=s3: stamps, display images, model inputs and bundles in an S3-protocol store
(moto's server, started by ./run test on loopback), nothing on a disk, and a worker that reads
what the web process wrote with no disk shared between them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time

import pytest
from PIL import Image

from screening.models import BundleUpload, Detection, Tracklet
from screening.registry.versions import model_activate_and_rescore, model_register
from tests.conftest import stored_files
from tests.screening.test_api import multipart
from tests.screening.test_bundles import zip_folder
from tests.screening.test_inference import checkpoints  # noqa: F401 - the fixture
from tests.stamps import write_bundle


@pytest.mark.django_db
def test_a_tracklet_and_its_display_live_in_the_bucket_and_nowhere_on_disk(
    s3_media, media_root, pipeline_client
):
    response = pipeline_client.post("/api/v1/tracklets/", multipart("T1"), format="multipart")
    assert response.status_code == 201, response.content
    tracklet = Tracklet.objects.get()
    keys = s3_media.keys()
    assert [k.split("/")[0] for k in keys] == ["tracklets"]  # one object a tracklet
    assert tracklet.model_input().shape == (4, 100, 100)
    url = response.json()["detections"][0]["display_url"]
    first = pipeline_client.get(url, HTTP_ACCEPT="image/png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    png = b"".join(first.streaming_content)
    assert Image.open(io.BytesIO(png)).size == (100, 100)
    detection = Detection.objects.get(index=0)
    assert detection.display.name in s3_media.keys()  # made on first view, kept in the bucket
    again = pipeline_client.get(url, HTTP_ACCEPT="image/png")
    assert b"".join(again.streaming_content) == png
    assert len(s3_media.keys()) == 2
    assert stored_files(media_root) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_no_shared_disk_ingests_and_scores_what_the_web_stored(
    s3_media,
    start_worker,
    pipeline_client,
    media_root,
    tmp_path,
    checkpoints,  # noqa: F811
):
    model_activate_and_rescore(version=model_register(path=checkpoints[0]).version)
    worker_disk = tmp_path / "worker-disk"  # the worker's MEDIA_ROOT: another machine's disk
    worker_disk.mkdir()
    start_worker("cpu", MEDIA_ROOT=str(worker_disk), INGEST_CHUNK_TRACKLETS="2", **s3_media.env)
    ids = ["S1", "S2", "S3", "S4", "S5"]
    archive = zip_folder(write_bundle(tmp_path / "night", ids), tmp_path / "night.zip")
    with open(archive, "rb") as handle:
        response = pipeline_client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    upload = BundleUpload.objects.get()
    assert upload.file.name in s3_media.keys()  # the web process stored it in the bucket
    deadline = time.monotonic() + 120
    while Tracklet.objects.filter(status="scored").count() < len(ids):
        assert time.monotonic() < deadline, pipeline_client.get(
            f"/api/v1/bundles/{upload.pk}/"
        ).json()
        time.sleep(0.3)
    upload.refresh_from_db()
    assert upload.status == "succeeded" and upload.summary["created"] == len(ids)
    assert [r["tracklet"] for r in upload.results] == ids
    keys = s3_media.keys()
    assert len([k for k in keys if k.startswith("tracklets/")]) == len(ids)
    assert not [k for k in keys if k.startswith("bundles/chunks/")]  # removed once reported
    # the worker read the bundle and the model inputs from the bucket: neither disk holds a file
    assert stored_files(worker_disk) == [] and stored_files(media_root) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_an_empty_disk_scores_with_a_model_registered_by_another_process(
    s3_media, start_worker, pipeline_client, media_root, tmp_path
):
    """The training machine registers and activates a checkpoint only its disk holds
    (`manage.py model_register --activate`, another process); a worker on a machine whose disk
    is empty (no MODELS_DIR, no cache) scores with it: the checkpoint travels through the bucket
    and lands in the worker's cache, byte for byte."""
    from classifier.checkpoint import file_hash
    from screening.models import ModelVersion
    from tests.conftest import ROOT, _test_database_url
    from tests.untrained_model import make_checkpoint

    training_machine = tmp_path / "training-machine"
    checkpoint = make_checkpoint(training_machine / "models", seed=5)
    registered = subprocess.run(
        [sys.executable, "manage.py", "model_register", str(checkpoint), "--activate"],
        cwd=ROOT,
        env={
            **os.environ,
            **s3_media.env,
            "DATABASE_URL": _test_database_url(),
            "MEDIA_ROOT": str(training_machine / "media"),
            "VAR_DIR": str(training_machine / "var"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert registered.returncode == 0, registered.stderr
    model = ModelVersion.objects.get()
    assert model.is_active and model.checkpoint == str(checkpoint.resolve())
    assert f"models/{checkpoint.name}" in s3_media.keys()
    version = file_hash(checkpoint)
    shutil.rmtree(training_machine)  # that machine's disk is not this worker's

    worker_disk = tmp_path / "worker-disk"
    worker_disk.mkdir()
    start_worker(
        "cpu",
        MEDIA_ROOT=str(worker_disk / "media"),
        VAR_DIR=str(worker_disk / "var"),
        MODELS_DIR=str(worker_disk / "models"),
        CELERY_DATA_DIR=str(worker_disk / "celery"),
        **s3_media.env,
    )
    for name in ("E1", "E2"):
        response = pipeline_client.post("/api/v1/tracklets/", multipart(name), format="multipart")
        assert response.status_code == 201, response.content
    deadline = time.monotonic() + 120
    while Tracklet.objects.filter(status="scored", model_version=model).count() < 2:
        assert time.monotonic() < deadline, list(Tracklet.objects.values("name", "status"))
        time.sleep(0.3)
    cached = worker_disk / "var" / "cache" / "models" / checkpoint.name
    assert cached.is_file() and file_hash(cached) == version == model.version
    assert not (worker_disk / "models").exists()  # nothing expected it on the worker's disk


@pytest.mark.django_db
def test_a_checkpoint_on_no_disk_and_in_no_bucket_is_an_error_naming_both(tmp_path, settings):
    from screening.models import ModelVersion
    from screening.registry.checkpoints import CheckpointMissing, checkpoint_local

    settings.CHECKPOINT_CACHE_DIR = tmp_path / "cache"
    model = ModelVersion.objects.create(
        version="ab" * 8, checkpoint=str(tmp_path / "gone" / "screening-abababababababab.pt"),
        classes=["BURN"], threshold=0.5,
    )  # fmt: skip
    with pytest.raises(CheckpointMissing) as caught:
        checkpoint_local(model)
    message = str(caught.value)
    assert "screening-abababababababab.pt" in message and "shared storage" in message

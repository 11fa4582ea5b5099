"""MEDIA_STORAGE=s3: stamps, display images, model inputs and bundles in an S3-protocol store
(moto's server, started by ./run test on loopback), nothing on a disk, and a worker that reads
what the web process wrote with no disk shared between them."""

from __future__ import annotations

import io
import time

import numpy as np
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
    assert sorted(k.split("/")[0] for k in keys) == ["pixels"] + ["stamps"] * 4
    assert np.load(io.BytesIO(tracklet.pixels.read())).shape == (4, 100, 100)
    url = response.json()["detections"][0]["display_url"]
    first = pipeline_client.get(url, HTTP_ACCEPT="image/png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    png = b"".join(first.streaming_content)
    assert Image.open(io.BytesIO(png)).size == (100, 100)
    detection = Detection.objects.get(index=0)
    assert detection.display.name in s3_media.keys()  # made on first view, kept in the bucket
    again = pipeline_client.get(url, HTTP_ACCEPT="image/png")
    assert b"".join(again.streaming_content) == png
    assert len(s3_media.keys()) == 6
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
    assert len([k for k in keys if k.startswith("pixels/")]) == len(ids)
    assert len([k for k in keys if k.startswith("stamps/")]) == 4 * len(ids)
    assert not [k for k in keys if k.startswith("bundles/chunks/")]  # removed once reported
    # the worker read the bundle and the model inputs from the bucket: neither disk holds a file
    assert stored_files(worker_disk) == [] and stored_files(media_root) == []

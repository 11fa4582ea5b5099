"""Bundle upload over the API, ingested by a real Celery worker through the real Redis."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from screening.models import BundleUpload, Tracklet
from tests.conftest import make_user
from tests.screening.test_bundles import zip_folder
from tests.stamps import write_bundle

pytestmark = pytest.mark.django_db(transaction=True)


def _client() -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=make_user("pipeline", "pipeline"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _wait_finished(client: APIClient, url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"the upload did not finish in {timeout} s: {body}")


def test_an_uploaded_bundle_is_ingested_by_the_worker(celery_worker, tmp_path):
    client = _client()
    folder = write_bundle(tmp_path / "night", ["A", "B", "C"])
    (folder / "stamps" / "C_1.fits").write_bytes(b"")
    archive = zip_folder(folder, tmp_path / "night.zip")
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    body = _wait_finished(client, f"/api/v1/bundles/{response.json()['id']}/")
    assert body["status"] == "succeeded", body
    assert body["progress"] == 1.0
    assert body["summary"] == {
        "tracklets": 3,
        "created": 2,
        "unchanged": 0,
        "rejected": 1,
        "conflict": 0,
    }
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert rejected[0]["tracklet"] == "C" and "file is empty" in rejected[0]["errors"][0]["reason"]
    assert set(Tracklet.objects.values_list("survey_id", flat=True)) == {"A", "B"}
    # NumPy's BLAS runs on one thread in the worker (its spinning threads took another core)
    environ = Path(f"/proc/{celery_worker.pid}/environ").read_bytes().split(b"\0")
    expected = os.environ.get("OPENBLAS_NUM_THREADS", "1")
    assert f"OPENBLAS_NUM_THREADS={expected}".encode() in environ


def test_an_unsafe_bundle_upload_fails_with_its_reason_and_writes_nothing(celery_worker, tmp_path):
    import zipfile

    client = _client()
    archive = zip_folder(write_bundle(tmp_path / "night", ["A"]), tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("../x", b"escape")
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/bundles/", {"file": handle}, format="multipart")
    body = _wait_finished(client, f"/api/v1/bundles/{response.json()['id']}/")
    assert body["status"] == "failed"
    assert "outside the bundle's folder" in body["error"]
    assert not Tracklet.objects.exists()
    assert BundleUpload.objects.get().status == "failed"

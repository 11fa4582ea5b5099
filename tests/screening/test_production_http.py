"""The web process as docker compose runs it: health checks and Prometheus reach it by an
internal name, a chunked body is refused with 411 instead of being read as empty, and the pages
and the API work without PyTorch (the web image has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.test.client import FakePayload, encode_multipart

from tests.conftest import ROOT, _test_database_url, make_user
from tests.stamps import (
    NIGHT,
    detection_rows,
    ingest_tracklet,
    model_version,
    score_tracklet,
    stamp_files,
)

pytestmark = pytest.mark.django_db

PUBLIC = "screening.example.org"


@override_settings(ALLOWED_HOSTS=[PUBLIC], METRICS_TOKEN="")
def test_healthz_and_metrics_answer_an_internal_host_the_other_paths_do_not():
    """Prometheus in compose scrapes web:8000, the container's health check asks 127.0.0.1:8000:
    neither is in ALLOWED_HOSTS, which names the public host only."""
    client = Client()
    for host in ("web:8000", "127.0.0.1:8000", "10.0.3.7:8000", "web-2"):
        health = client.get("/healthz", HTTP_HOST=host)
        assert health.status_code == 200 and health.content == b"ok", host
        metrics = client.get("/metrics", HTTP_HOST=host)
        assert metrics.status_code == 200, host
        assert b"screening_tracklets{" in metrics.content
    # every other path, and anything but a GET or HEAD of the probes, keeps the host check
    for path in ("/accounts/login/", "/api/v1/nights/", "/"):
        assert client.get(path, HTTP_HOST="web:8000").status_code == 400, path
    assert client.post("/healthz", HTTP_HOST="web:8000").status_code == 400
    assert client.get("/accounts/login/", HTTP_HOST=PUBLIC, secure=True).status_code == 200


@override_settings(ALLOWED_HOSTS=[PUBLIC], METRICS_TOKEN="scrape-token")
def test_the_metrics_token_still_guards_metrics_on_an_internal_host():
    client = Client()
    assert client.get("/metrics", HTTP_HOST="web:8000").status_code == 401
    allowed = client.get("/metrics", HTTP_HOST="web:8000", HTTP_AUTHORIZATION="Bearer scrape-token")
    assert allowed.status_code == 200


def _chunked_post(client, path: str, body: bytes, content_type: str, **extra):
    """A POST as gunicorn hands a chunked request to Django: the body is there (de-chunked), but
    there is no CONTENT_LENGTH, only Transfer-Encoding: chunked."""
    return client.generic(
        "POST",
        path,
        b"",  # no CONTENT_LENGTH
        content_type=content_type,
        CONTENT_TYPE=content_type,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": FakePayload(body)},
        **extra,
    )


def _tracklet_form() -> bytes:
    rows = detection_rows("T1")
    form = {"metadata": json.dumps({"night": NIGHT, "tracklet": "T1", "detections": rows})}
    form |= {name: SimpleUploadedFile(name, data) for name, data in stamp_files("T1").items()}
    return encode_multipart("BoUnDaRy", form)


def test_a_chunked_upload_is_answered_411_naming_the_content_length(pipeline_client):
    body = _tracklet_form()
    content_type = "multipart/form-data; boundary=BoUnDaRy"
    for path in ("/api/v1/tracklets/", "/api/v1/bundles/", "/api/v1/tracklets/1/verdict/"):
        response = _chunked_post(pipeline_client, path, body, content_type)
        assert response.status_code == 411, (path, response.content)
        answer = response.json()
        assert answer["code"] == "length_required"
        assert "Content-Length" in answer["detail"] and "chunked" in answer["detail"]
    # the same body with its length is ingested
    sent = pipeline_client.generic("POST", "/api/v1/tracklets/", body, content_type=content_type)
    assert sent.status_code == 201, sent.content


def test_without_the_411_a_chunked_upload_would_read_as_an_empty_form(pipeline_client):
    """Why the middleware: Django reads a body no further than CONTENT_LENGTH, so the upload
    limits' handler never sees it and the endpoint complains of a missing field."""
    without = [m for m in django_settings.MIDDLEWARE if not m.endswith("LengthRequiredMiddleware")]
    with override_settings(MIDDLEWARE=without):
        response = _chunked_post(
            pipeline_client,
            "/api/v1/tracklets/",
            _tracklet_form(),
            "multipart/form-data; boundary=BoUnDaRy",
        )
    assert response.status_code == 400 and "metadata" in response.json()


# Runs in a process of its own (other tests import torch): makes any import of torch fail, as
# in the web image, and records it; loads what gunicorn loads; asks for pages and the API.
WEB_WITHOUT_TORCH = r"""
import json, sys

attempts = []


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (the web image has no torch)")
        return None


sys.meta_path.insert(0, NoTorch())

import django

django.setup()
from django.test.utils import setup_test_environment

setup_test_environment()
import screening.wsgi  # noqa: F401  (what gunicorn loads)
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

plan = json.loads(sys.argv[1])
pages = Client()
pages.force_login(User.objects.get(username="admin"))
statuses = {}
for path in plan["pages"]:
    statuses[path] = pages.get(path).status_code
for path in plan["api"]:
    token = Token.objects.get(user__username="admin").key
    statuses[path] = Client().get(path, HTTP_AUTHORIZATION=f"Token {token}").status_code
form = {"metadata": plan["metadata"]}
for name, path in plan["stamps"].items():
    form[name] = SimpleUploadedFile(name, open(path, "rb").read())
token = Token.objects.get(user__username="pipe").key
sent = Client().post("/api/v1/tracklets/", form, HTTP_AUTHORIZATION=f"Token {token}")
statuses["POST /api/v1/tracklets/"] = sent.status_code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
print(json.dumps({"statuses": statuses, "attempts": attempts, "loaded": loaded}))
"""


def test_the_pages_and_the_api_work_without_torch(transactional_db, media_root, tmp_path):
    """The web image is built without PyTorch: the pages (the model pages with their
    comparison figures, plots and cues included), the API and ingest must never import it."""
    if "postgresql" not in django_settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs the PostgreSQL that ./run test starts (a second process reads it)")
    from rest_framework.authtoken.models import Token

    from screening.models import ModelVersion

    Token.objects.create(user=make_user("admin", "admin"))
    Token.objects.create(user=make_user("pipe", "pipeline"))
    active = model_version()
    tracklet = score_tracklet(ingest_tracklet("T0"), active, score=0.9)
    detection = tracklet.detections.first()
    holdout = {"tracklets": {"real": 5, "bogus": 20}, "real_recall": 1.0, "bogus_rejection": 0.9}
    stamps = {"stamps": 44, "per_class_stamps": {"GLARE": 44}}
    candidate = ModelVersion.objects.create(
        version="g" * 16,
        checkpoint="/models/g.pt",
        classes=[*active.classes, "GLARE"],
        metrics={"comparison": {
            "base_version": active.version,
            "new_classes": ["GLARE"],
            "holdout": {"candidate": holdout, "base": holdout},
            "holdout_stamps": {
                "candidate": {**stamps, "accuracy": 0.93, "per_class": {"GLARE": 0.93}},
                "base": {**stamps, "accuracy": 0.0, "per_class": {"GLARE": 0.0}},
            },
        }},
    )  # fmt: skip
    files = {}
    for name, data in stamp_files("T1").items():
        files[name] = str(tmp_path / name)
        (tmp_path / name).write_bytes(data)
    metadata = {"night": NIGHT, "tracklet": "T1", "detections": detection_rows("T1")}
    plan = {
        "pages": [
            "/",
            f"/nights/{NIGHT}/",
            f"/nights/{NIGHT}/summary/",
            f"/tracklets/{tracklet.pk}/",
            f"/tracklets/{tracklet.pk}/cues.png",
            f"/stamps/{detection.pk}.png",
            "/models/",
            f"/models/{active.version}/",
            f"/models/{candidate.version}/",
            *[f"/models/{candidate.version}/{kind}.png" for kind in ("roc", "reliability")],
            "/reviewers/",
            "/healthz",
            "/metrics",
        ],
        "api": [
            "/api/v1/nights/",
            "/api/v1/tracklets/",
            f"/api/v1/tracklets/{tracklet.pk}/",
            "/api/v1/models/",
            f"/api/v1/models/{candidate.version}/",
            "/api/v1/training-runs/",
            f"/api/v1/nights/{NIGHT}/queue/",
            "/api/v1/export/verdicts/",
        ],
        "metadata": json.dumps(metadata),
        "stamps": files,
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "screening.settings",
        "DATABASE_URL": _test_database_url(),
        "MEDIA_ROOT": str(media_root),
        "SECURE_SSL_REDIRECT": "0",
        "METRICS_TOKEN": "",
    }
    result = _python(WEB_WITHOUT_TORCH, env, json.dumps(plan))
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [] and report["loaded"] == [], report
    failed = {p: s for p, s in report["statuses"].items() if s not in (200, 201)}
    assert not failed, (failed, result.stderr[-4000:])


def test_the_served_app_leaves_what_loading_made_out_of_garbage_collection():
    """gunicorn and runserver load screening.wsgi: every view module is imported there, and the
    objects loading made (NumPy, matplotlib, astropy: about 200,000) are frozen, so that no
    request pays for a full collection walking them (bench/queue_page.py's p95)."""
    probe = (
        "import gc, sys\n"
        "import screening.wsgi\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()), 'matplotlib' in sys.modules)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "screening.settings", "SECRET_KEY": "k" * 60}
    frozen, tracked, views_loaded = _python(probe, env).stdout.split()
    assert views_loaded == "True"  # the views (and their plotting) loaded before the freeze
    assert int(frozen) > 100_000 and int(tracked) < int(frozen) // 100


def _python(code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run `code` in a new Python process from the repository root; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result

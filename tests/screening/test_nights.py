"""One night parser: ingest, the pages, the API's paths, filters and bodies, and the commands all
read a night as YYYY-MM-DD and refuse any other spelling with the same reason."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from screening.models import MpcReport, Tracklet
from screening.reports.ades import sender_path
from tests.conftest import make_user
from tests.screening.test_api import multipart
from tests.stamps import NIGHT, ingest_tracklet

pytestmark = pytest.mark.django_db

COMPACT = NIGHT.replace("-", "")  # 20261124: a date Python's fromisoformat would take


def test_ingest_refuses_a_compact_night_and_writes_nothing(pipeline_client):
    body = multipart()
    body["metadata"] = json.dumps({**json.loads(body["metadata"]), "night": COMPACT})
    response = pipeline_client.post("/api/v1/tracklets/", body, format="multipart")
    assert response.status_code == 400
    reasons = [e["reason"] for e in response.json()["errors"]]
    assert reasons == [f"night '{COMPACT}' is not YYYY-MM-DD"]
    assert not Tracklet.objects.exists()


def test_pages_and_api_paths_answer_404_naming_the_format(reviewer, pipeline_client):
    ingest_tracklet("A")
    client = Client()
    client.force_login(make_user("admin1", "admin"))
    assert client.get(f"/nights/{NIGHT}/").status_code == 200
    for path in (f"/nights/{COMPACT}/", f"/nights/{COMPACT}/summary/"):
        assert client.get(path).status_code == 404, path
    for path in (f"/api/v1/nights/{COMPACT}/queue/", f"/api/v1/nights/{COMPACT}/audit/"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "YYYY-MM-DD" in answer.json()["detail"], answer.json()
    assert client.get(f"/api/v1/nights/{NIGHT}/queue/").status_code == 200


def test_api_filters_and_bodies_refuse_a_compact_night_with_a_400(pipeline_client):
    ingest_tracklet("A")
    assert pipeline_client.get(f"/api/v1/tracklets/?night={NIGHT}").json()["count"] == 1
    refused = pipeline_client.get(f"/api/v1/tracklets/?night={COMPACT}")
    assert refused.status_code == 400
    assert refused.json()["night"] == [f"night '{COMPACT}' is not YYYY-MM-DD"]
    # A night that cannot be stored is no error in a lookup: it finds nothing.
    assert pipeline_client.get("/api/v1/tracklets/?night=1900-01-01").json()["count"] == 0
    admin = Client()
    admin.force_login(make_user("admin2", "admin"))
    for url in ("/api/v1/export/verdicts/", "/api/v1/export/labels/"):
        answer = admin.get(f"{url}?night={COMPACT}")
        assert answer.status_code == 400 and "YYYY-MM-DD" in answer.json()["night"][0], url
    report = admin.post("/api/v1/reports/", {"night": COMPACT}, content_type="application/json")
    assert report.status_code == 400
    assert report.json()["night"] == [f"night '{COMPACT}' is not YYYY-MM-DD"]
    assert not MpcReport.objects.exists()


def test_commands_refuse_a_compact_night_naming_the_format():
    ingest_tracklet("A")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("gold_mark", "--night", COMPACT, "--real", "A")


def test_a_sender_named_before_the_reports_package_still_loads():
    assert sender_path("screening.ades.DryRunSender") == "screening.reports.ades.DryRunSender"
    assert sender_path("mysite.mpc.Sender") == "mysite.mpc.Sender"

"""The REST API: send one tracklet as multipart, list and read tracklets, roles and errors."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from screening.models import Tracklet
from tests.stamps import NIGHT, detection_rows, ingest_tracklet, stamp_files

pytestmark = pytest.mark.django_db


def multipart(survey_id: str = "T1", *, rows=None, files=None) -> dict:
    rows = detection_rows(survey_id) if rows is None else rows
    files = stamp_files(survey_id) if files is None else files
    body = {"metadata": json.dumps({"night": NIGHT, "tracklet": survey_id, "detections": rows})}
    body.update({name: SimpleUploadedFile(name, data) for name, data in files.items()})
    return body


def test_it_creates_a_tracklet_from_a_multipart_post(pipeline_client):
    response = pipeline_client.post("/api/v1/tracklets/", multipart(), format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["tracklet"] == "T1" and body["night"] == NIGHT and body["status"] == "pending"
    assert [d["index"] for d in body["detections"]] == [0, 1, 2, 3]
    assert body["detections"][0]["display_url"].endswith(".png")


def test_a_resend_answers_200_and_a_changed_resend_answers_409(pipeline_client):
    assert pipeline_client.post("/api/v1/tracklets/", multipart()).status_code == 201
    assert pipeline_client.post("/api/v1/tracklets/", multipart()).status_code == 200
    rows = detection_rows("T1")
    rows[0]["ra"] += 0.001
    conflict = pipeline_client.post("/api/v1/tracklets/", multipart(rows=rows))
    assert conflict.status_code == 409
    assert conflict.json()["tracklet"] == "T1"
    assert Tracklet.objects.count() == 1


def test_a_bad_stamp_answers_400_naming_tracklet_file_and_reason(pipeline_client):
    files = stamp_files("T1")
    files["T1_2.fits"] = b"\x1f\x8b\x08\x00garbage"
    response = pipeline_client.post("/api/v1/tracklets/", multipart(files=files))
    assert response.status_code == 400
    assert response.json() == {
        "night": NIGHT,
        "tracklet": "T1",
        "errors": [
            {
                "field": "detections[2].stamp",
                "file": "T1_2.fits",
                "reason": response.json()["errors"][0]["reason"],
            }
        ],
    }
    assert "gzip" in response.json()["errors"][0]["reason"]
    assert not Tracklet.objects.exists()


def test_metadata_that_is_not_json_answers_400(pipeline_client):
    response = pipeline_client.post("/api/v1/tracklets/", {"metadata": "{not json"})
    assert response.status_code == 400
    assert "metadata" in response.json()


def test_it_needs_a_token_and_the_ingest_permission(client, reviewer):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.post("/api/v1/tracklets/", multipart()).status_code == 401
    assert anonymous.get("/api/v1/tracklets/").status_code == 401
    as_reviewer = APIClient()
    as_reviewer.force_authenticate(reviewer)
    assert as_reviewer.post("/api/v1/tracklets/", multipart()).status_code == 403
    assert as_reviewer.get("/api/v1/tracklets/").status_code == 200
    assert not Tracklet.objects.exists()


def test_it_lists_tracklets_with_filters(pipeline_client):
    ingest_tracklet("A")
    ingest_tracklet("B")
    ingest_tracklet("C", night="2026-11-25")
    Tracklet.objects.filter(survey_id="B").update(score=0.93, status="scored")
    listed = pipeline_client.get("/api/v1/tracklets/", {"night": NIGHT}).json()
    assert listed["count"] == 2
    assert [t["tracklet"] for t in listed["results"]] == ["A", "B"]
    scored = pipeline_client.get("/api/v1/tracklets/", {"score_min": 0.9}).json()["results"]
    assert [t["tracklet"] for t in scored] == ["B"]
    pending = pipeline_client.get("/api/v1/tracklets/", {"status": "pending"}).json()["results"]
    assert {t["tracklet"] for t in pending} == {"A", "C"}
    nights = pipeline_client.get("/api/v1/nights/").json()["results"]
    assert [(n["date"], n["tracklets"]) for n in nights] == [("2026-11-25", 1), (NIGHT, 2)]


def test_it_returns_one_tracklet_with_its_detections(pipeline_client):
    tracklet = ingest_tracklet("A")
    body = pipeline_client.get(f"/api/v1/tracklets/{tracklet.pk}/").json()
    assert body["tracklet"] == "A" and len(body["detections"]) == 4
    assert pipeline_client.get("/api/v1/tracklets/999999/").status_code == 404


def test_a_client_labels_a_stamp_by_the_detection_id_the_tracklet_answer_gives(reviewer):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from screening.models import StampLabel

    tracklet = ingest_tracklet("L1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reviewer).key}")
    detections = client.get(f"/api/v1/tracklets/{tracklet.pk}/").json()["detections"]
    second = next(d for d in detections if d["index"] == 1)
    answer = client.post(f"/api/v1/detections/{second['id']}/label/", {"stamp_class": "STREAK"})
    assert answer.status_code == 201, answer.content
    label = StampLabel.objects.get()
    assert label.detection.index == 1 and label.detection.tracklet == tracklet
    assert client.get(second["display_url"]).status_code == 200  # the token reads the image

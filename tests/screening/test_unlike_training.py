"""Never auto-reject what the model has not seen: the shipped baseline and its novelty reference
through the product's own scoring path (ingest, the inference worker's code, PostgreSQL), then
the queue, the tracklet page, the summary, the API, the metrics and the audit population."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from screening.models import ModelVersion, Tracklet, TrackletScore
from screening.registry.versions import model_activate_and_rescore, model_register
from screening.review.audit import night_model_estimate
from screening.review.queue import QueueFilters, queue_tracklets
from screening.scoring import worker as inference
from screening.scoring.worker import tracklets_score_pending
from tests.conftest import ZTF_DIR
from tests.screening.test_metrics import scrape, value
from tests.stamps import NIGHT, detection_rows, ingest_rows, stamp_files

pytestmark = pytest.mark.django_db

BASELINE = Path(__file__).resolve().parents[2] / "models" / "screening-bf73f2326bcaa1d9.pt"


def ztf_tracklet(survey_id: str, first: int):
    """Three real ZTF difference cutouts (63x63, gzip FITS) as one mover at 1 deg/day."""
    paths = sorted(ZTF_DIR.glob("*_difference.fits.gz"))[first : first + 3]
    rows = detection_rows(survey_id, n=3, seed=first)
    for row, path in zip(rows, paths, strict=True):
        row["stamp"] = path.name
    return ingest_rows(survey_id, rows, {p.name: p.read_bytes() for p in paths})


def fast_mover(survey_id: str):
    """A tracklet moving north at 300 deg/day: five times faster than any trained on."""
    rows = detection_rows(survey_id, n=4, seed=11)
    for row in rows:
        row["dec"] = rows[0]["dec"] + 300.0 * (row["mjd"] - rows[0]["mjd"])
        row["ra"] = rows[0]["ra"]
    return ingest_rows(survey_id, rows, stamp_files(survey_id, 4, seed=3))


@pytest.fixture
def scored_night(reviewer):
    inference._loaded.clear()
    model = model_register(path=BASELINE)
    model_activate_and_rescore(version=model.version)
    ztf = [ztf_tracklet(f"ZTF{i}", 3 * i) for i in range(4)]
    fast = fast_mover("FAST1")
    ordinary = ingest_rows("PLAIN", detection_rows("PLAIN", 4, seed=5), stamp_files("PLAIN", 4))
    assert tracklets_score_pending(digest2_after=False) == 6
    return {"model": model, "ztf": ztf, "fast": fast, "ordinary": ordinary}


def test_real_ztf_tracklets_scored_by_the_product_are_not_auto_rejected(scored_night, reviewer):
    model = ModelVersion.objects.get(pk=scored_night["model"].pk)
    for tracklet in scored_night["ztf"]:
        tracklet.refresh_from_db()
        assert tracklet.score >= model.threshold or tracklet.unlike_training, tracklet.score
        top = set(tracklet.detections.values_list("predictions__top_class", flat=True))
        assert "SPIKE" not in top, top
    rejected = queue_tracklets(
        night=scored_night["ztf"][0].night,
        reviewer=reviewer,
        filters=QueueFilters(status="auto_rejected"),
    )
    assert not rejected.filter(survey_id__startswith="ZTF").exists()


def test_a_tracklet_unlike_training_stays_to_review_whatever_its_score(
    scored_night, reviewer, no_blind_rows
):
    fast = Tracklet.objects.get(pk=scored_night["fast"].pk)
    assert fast.unlike_training.startswith("rate 30"), fast.unlike_training
    assert "deg/day outside the trained" in fast.unlike_training
    stored = TrackletScore.objects.get(tracklet=fast)
    assert stored.unlike_training == fast.unlike_training  # kept with the model's score
    assert Tracklet.objects.exclude(unlike_training="").count() == 1
    # a threshold above every score: all would be auto-rejected, but not the unlike one
    ModelVersion.objects.update(threshold=1.01)
    night = fast.night
    to_review = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters())
    assert list(to_review.values_list("survey_id", flat=True)) == ["FAST1"]
    rejected = queue_tracklets(
        night=night, reviewer=reviewer, filters=QueueFilters(status="auto_rejected")
    )
    assert rejected.count() == 5 and not rejected.filter(pk=fast.pk).exists()
    # the audit of auto-rejection samples only what was auto-rejected
    model = ModelVersion.objects.get(pk=scored_night["model"].pk)
    assert night_model_estimate(night, model).rejected == 5

    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/nights/{NIGHT}/").content.decode()
    assert "FAST1" in page and "unlike training: rate 30" in page
    assert "PLAIN" not in page
    only = client.get(f"/nights/{NIGHT}/", {"status": "all", "unlike": "1"}).content.decode()
    assert "FAST1" in only and "PLAIN" not in only and "ZTF0" not in only
    detail = client.get(f"/tracklets/{fast.pk}/").content.decode()
    assert 'id="unlike-training"' in detail and "stays in the to-review queue" in detail
    assert "auto-rejected" not in detail.split('id="unlike-training"')[0].split("<h1>")[1]
    summary = client.get(f"/nights/{NIGHT}/summary/").content.decode()
    card = summary.split('data-figure="kept_unlike_training"')[1].split("</div>")[0]
    assert ">1</a>" in card
    assert 'data-figure="auto_rejected">5<' in summary


def test_the_api_and_the_metrics_count_tracklets_unlike_training(
    scored_night, pipeline_client, client
):
    ModelVersion.objects.update(threshold=1.01)
    body = pipeline_client.get("/api/v1/tracklets/", {"unlike_training": "true"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [r["tracklet"] for r in rows] == ["FAST1"]
    assert rows[0]["unlike_training"].startswith("rate 30")
    body = pipeline_client.get("/api/v1/tracklets/", {"unlike_training": "false"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert len(rows) == 5 and all(r["unlike_training"] == "" for r in rows)
    samples = scrape(client)
    assert value(samples, "screening_tracklets_unlike_training", state="kept") == 1
    assert value(samples, "screening_tracklets_unlike_training", state="passing") == 0

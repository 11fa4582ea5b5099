"""A tracklet whose motion is within its errors is not a mover (classifier.motion), through the
product's own path: ingest, the inference worker's code and PostgreSQL, then the queue, the
tracklet page, the summary, the API and the metrics.

Its detections are real ZTF point sources (the networks read them as asteroids: the ZTF
tracklets moving at 1 deg/day are kept), linked at one place on the sky as a linker links a
variable star's subtraction residuals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from django.test import Client

from screening.models import ModelVersion, Tracklet, TrackletScore
from screening.registry.versions import model_activate_and_rescore, model_register
from screening.review.queue import QueueFilters, queue_tracklets
from screening.scoring import worker as inference
from screening.scoring.worker import tracklets_score_pending
from tests.conftest import ZTF_DIR
from tests.screening.test_metrics import scrape, value
from tests.stamps import NIGHT, detection_rows, ingest_rows

pytestmark = pytest.mark.django_db

BASELINE = Path(__file__).resolve().parents[2] / "models" / "screening-bf73f2326bcaa1d9.pt"


def ztf_tracklet(survey_id: str, first: int, *, still: bool):
    """Three real ZTF difference cutouts: a mover at 1 deg/day, or (still) at one place with
    0.02 arcsec of scatter, far inside a bright point source's astrometric error."""
    paths = sorted(ZTF_DIR.glob("*_difference.fits.gz"))[first : first + 3]
    rows = detection_rows(survey_id, n=3, seed=first + (100 if still else 0))
    rng = np.random.default_rng(first)
    for row, path in zip(rows, paths, strict=True):
        row["stamp"] = path.name
        if still:
            row["ra"] = rows[0]["ra"] + rng.normal(0, 0.02 / 3600)
            row["dec"] = rows[0]["dec"] + rng.normal(0, 0.02 / 3600)
            row["x"], row["y"] = rows[0]["x"], rows[0]["y"]
    return ingest_rows(survey_id, rows, {p.name: p.read_bytes() for p in paths})


@pytest.fixture
def scored_night(reviewer):
    inference._loaded.clear()
    model = model_register(path=BASELINE)
    model_activate_and_rescore(version=model.version)
    moving = [ztf_tracklet(f"MOVE{i}", 3 * i, still=False) for i in range(3)]
    still = [ztf_tracklet(f"STILL{i}", 9 + 3 * i, still=True) for i in range(3)]
    assert tracklets_score_pending(digest2_after=False) == 6
    return {"model": ModelVersion.objects.get(pk=model.pk), "moving": moving, "still": still}


def test_a_source_that_does_not_move_is_auto_rejected_with_its_reason(scored_night, reviewer):
    model = scored_night["model"]
    for tracklet in scored_night["moving"]:
        tracklet.refresh_from_db()
        assert tracklet.score >= model.threshold and tracklet.not_moving == ""
    for tracklet in scored_night["still"]:
        tracklet.refresh_from_db()
        # the same stamps the networks keep as a mover: only the motion tells them apart
        assert tracklet.score <= model.threshold / 2, tracklet.score
        assert tracklet.unlike_training == ""
        # its positions could have seen the slowest mover: the reason says by how much
        assert re.search(
            r"under 3σ, \d+\.\dσ below the slowest mover's \(0\.05°/day\): a source that does "
            r"not move \(the networks scored it 0\.9",
            tracklet.not_moving,
        ), tracklet.not_moving
        stored = TrackletScore.objects.get(tracklet=tracklet)
        assert (stored.score, stored.not_moving) == (tracklet.score, tracklet.not_moving)
    night = scored_night["still"][0].night
    rejected = queue_tracklets(
        night=night, reviewer=reviewer, filters=QueueFilters(status="auto_rejected")
    )
    assert sorted(rejected.values_list("survey_id", flat=True)) == ["STILL0", "STILL1", "STILL2"]
    to_review = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters())
    assert sorted(to_review.values_list("survey_id", flat=True)) == ["MOVE0", "MOVE1", "MOVE2"]

    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/nights/{NIGHT}/", {"status": "auto_rejected"}).content.decode()
    assert page.count("⊘ not moving: motion") == 3
    only = client.get(f"/nights/{NIGHT}/", {"status": "all", "still": "1"}).content.decode()
    assert "STILL1" in only and "MOVE1" not in only
    detail = client.get(f"/tracklets/{scored_night['still'][0].pk}/").content.decode()
    assert 'id="not-moving"' in detail and "does not move" in detail
    summary = client.get(f"/nights/{NIGHT}/summary/").content.decode()
    card = summary.split('data-figure="not_moving"')[1].split("</div>")[0]
    assert ">3</a>" in card
    assert 'data-figure="auto_rejected">3<' in summary


def test_a_still_source_unlike_training_stays_to_review(scored_night, reviewer):
    """The motion rule caps the score; a tracklet unlike training is never auto-rejected all
    the same (the rule's errors come from a model of the image that may not hold there)."""
    still = scored_night["still"][0]
    Tracklet.objects.filter(pk=still.pk).update(unlike_training="seeing 9 px outside the trained")
    to_review = queue_tracklets(night=still.night, reviewer=reviewer, filters=QueueFilters())
    assert still.pk in set(to_review.values_list("pk", flat=True))
    client = Client()
    client.force_login(reviewer)
    detail = client.get(f"/tracklets/{still.pk}/").content.decode()
    assert "it stays in the to-review queue all the same" in detail


def test_the_api_and_the_metrics_count_tracklets_not_moving(scored_night, pipeline_client, client):
    body = pipeline_client.get("/api/v1/tracklets/", {"not_moving": "true"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert sorted(r["tracklet"] for r in rows) == ["STILL0", "STILL1", "STILL2"]
    assert all("does not move" in r["not_moving"] for r in rows)
    body = pipeline_client.get("/api/v1/tracklets/", {"not_moving": "false"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert sorted(r["tracklet"] for r in rows) == ["MOVE0", "MOVE1", "MOVE2"]
    samples = scrape(client)
    assert value(samples, "screening_tracklets_not_moving", state="rejected") == 3
    assert value(samples, "screening_tracklets_not_moving", state="kept") == 0


def test_the_not_moving_filter_chooses_no_blind_row(scored_night, reviewer, blind_rows):
    """Under blind screening a row to review shows nothing of what the model made of it: the
    motion rule's verdict does not choose it either (as the class filter does not)."""
    still = scored_night["still"][0]
    Tracklet.objects.filter(pk=still.pk).update(unlike_training="seeing 9 px outside the trained")
    night = still.night
    to_review = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters())
    assert still.pk in set(to_review.values_list("pk", flat=True))  # blind, to review
    chosen = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters(still_only=True))
    assert not chosen.exists()
    everything = queue_tracklets(
        night=night, reviewer=reviewer, filters=QueueFilters(status="all", still_only=True)
    )
    assert sorted(everything.values_list("survey_id", flat=True)) == ["STILL1", "STILL2"]

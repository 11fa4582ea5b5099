"""Storing model output: predictions per stamp, one score per tracklet, idempotent."""

from __future__ import annotations

import pytest

from screening.models import StampPrediction, Tracklet, TrackletScore
from screening.review.verdicts import verdict_record
from screening.scoring.store import TrackletResult, scores_store
from tests.stamps import NIGHT, PAPER_CLASSES, ingest_tracklet, model_version

pytestmark = pytest.mark.django_db


def _result(tracklet: Tracklet, score: float) -> TrackletResult:
    probs = [[0.01] * 5 + [0.93, 0.01, 0.02]] * tracklet.n_detections
    return TrackletResult(tracklet_id=tracklet.pk, stamp_probabilities=probs, score=score)


def test_it_stores_predictions_and_scores_and_marks_tracklets_scored():
    model = model_version()
    tracklets = [ingest_tracklet(f"T{i}", seed=i) for i in range(3)]
    assert (
        scores_store(
            model_version=model, results=[_result(t, 0.1 * i) for i, t in enumerate(tracklets)]
        )
        == 3
    )
    stored = Tracklet.objects.get(pk=tracklets[2].pk)
    assert (stored.status, stored.score, stored.model_version) == ("scored", 0.2, model)
    prediction = StampPrediction.objects.filter(detection__tracklet=stored).first()
    assert prediction.top_class == "AST" and prediction.top_probability == 0.93
    assert set(prediction.probabilities) == set(PAPER_CLASSES)


def test_storing_twice_changes_nothing_and_reviewed_tracklets_stay_reviewed(reviewer):
    model = model_version()
    tracklet = ingest_tracklet("T1")
    scores_store(model_version=model, results=[_result(tracklet, 0.9)])
    verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    assert scores_store(model_version=model, results=[_result(tracklet, 0.2)]) == 0
    tracklet.refresh_from_db()
    assert (tracklet.score, tracklet.status) == (0.9, "reviewed")
    newer = model_version("b" * 64, active=False)
    scores_store(model_version=newer, results=[_result(tracklet, 0.95)])
    tracklet.refresh_from_db()
    assert tracklet.status == "reviewed" and tracklet.model_version == newer
    assert TrackletScore.objects.filter(tracklet=tracklet).count() == 2  # history kept


def test_a_result_with_the_wrong_number_of_stamps_is_refused_and_nothing_written():
    model = model_version()
    good, bad = ingest_tracklet("T1"), ingest_tracklet("T2", seed=2)
    wrong = TrackletResult(tracklet_id=bad.pk, stamp_probabilities=[[0.125] * 8] * 3, score=0.5)
    with pytest.raises(ValueError, match="has 4 detections but 3 stamp predictions"):
        scores_store(model_version=model, results=[_result(good, 0.5), wrong])
    assert not TrackletScore.objects.exists() and not StampPrediction.objects.exists()


def _shown_counts(client) -> dict[str, list[str]]:
    """The nights' list as a reviewer reads it: {night: [tracklets, pending, reviewed]}."""
    import re

    html = client.get("/").content.decode()
    rows = re.findall(r"<tr>\s*<td><a [^>]*>([0-9-]+)</a></td>\s*((?:<td>\d+</td>)+)", html)
    return {night: re.findall(r"<td>(\d+)</td>", cells) for night, cells in rows}


def test_the_nights_list_counts_follow_ingest_scoring_and_verdicts(reviewer, client):
    """The counts kept on each night's row are those of its tracklets after every kind of
    change: arrival, scoring, a verdict, a withdrawal, and a re-send that stores nothing."""
    from screening.nights import night_counts_refresh

    client.force_login(reviewer)
    model = model_version()
    tracklets = [ingest_tracklet(f"T{i}", seed=i) for i in range(3)]
    other = ingest_tracklet("O1", seed=9, night="2026-11-25")
    ingest_tracklet("T0", seed=0)  # the same again: unchanged, not counted twice
    assert _shown_counts(client) == {NIGHT: ["3", "3", "0"], "2026-11-25": ["1", "1", "0"]}
    scores_store(model_version=model, results=[_result(t, 0.5) for t in [*tracklets[:2], other]])
    assert _shown_counts(client) == {NIGHT: ["3", "1", "0"], "2026-11-25": ["1", "0", "0"]}
    verdict_record(tracklet_id=tracklets[0].pk, reviewer=reviewer, value="real")
    verdict_record(tracklet_id=tracklets[2].pk, reviewer=reviewer, value="bogus")  # unscored
    assert _shown_counts(client)[NIGHT] == ["3", "0", "2"]
    verdict_record(tracklet_id=tracklets[2].pk, reviewer=reviewer, value="withdrawn")
    scores_store(model_version=model, results=[_result(tracklets[2], 0.4)])
    assert _shown_counts(client)[NIGHT] == ["3", "0", "1"]
    assert night_counts_refresh() == 0  # what was kept is what a count finds

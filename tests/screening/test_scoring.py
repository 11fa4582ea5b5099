"""Storing model output: predictions per stamp, one score per tracklet, idempotent."""

from __future__ import annotations

import pytest

from screening.models import StampPrediction, Tracklet, TrackletScore
from screening.review.verdicts import verdict_record
from screening.scoring.store import TrackletResult, scores_store
from tests.stamps import PAPER_CLASSES, ingest_tracklet, model_version

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

"""Verdicts and stamp labels: append-only history, undo, disagreement, the status they imply."""

from __future__ import annotations

import pytest

from screening.models import StampLabel, Tracklet, Verdict
from screening.review.queue import queue_rows
from screening.review.verdicts import ReviewError, stamp_label_record, verdict_record
from tests.conftest import make_user
from tests.stamps import ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored():
    return score_tracklet(ingest_tracklet("T1"), model_version(), score=0.91)


def test_a_verdict_keeps_the_score_and_model_the_reviewer_saw(scored, reviewer):
    verdict = verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="real")
    assert (verdict.score_shown, verdict.model_version_shown) == (0.91, scored.model_version)
    scored.refresh_from_db()
    assert scored.status == Tracklet.Status.REVIEWED


def test_undo_appends_a_withdrawal_and_restores_the_status(scored, reviewer):
    verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="bogus")
    verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="withdrawn")
    scored.refresh_from_db()
    assert scored.status == Tracklet.Status.SCORED
    history = list(
        Verdict.objects.filter(tracklet=scored).order_by("id").values_list("value", flat=True)
    )
    assert history == ["bogus", "withdrawn"]  # nothing overwritten


def test_withdrawing_without_a_verdict_is_refused(scored, reviewer):
    with pytest.raises(ReviewError, match="no verdict of yours"):
        verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="withdrawn")
    with pytest.raises(ReviewError, match="must be one of"):
        verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="maybe")


def test_two_reviewers_disagreeing_are_both_kept_and_shown(scored, reviewer):
    other = make_user("second", "reviewer")
    verdict_record(tracklet_id=scored.pk, reviewer=reviewer, value="real")
    verdict_record(tracklet_id=scored.pk, reviewer=other, value="bogus")
    row = queue_rows([scored], reviewer=reviewer)[0]
    assert row.my_verdict == "real"
    assert row.verdicts == {"real": 1, "bogus": 1} and row.disagreement
    assert Verdict.objects.filter(tracklet=scored).count() == 2


def test_the_latest_label_wins_and_keeps_what_the_model_said(scored, reviewer):
    from screening.models import StampClass

    StampClass.objects.create(name="GLARE", is_real=False)
    detection = scored.detections.get(index=1)
    stamp_label_record(detection_id=detection.pk, reviewer=reviewer, class_name="NOISE")
    label = stamp_label_record(detection_id=detection.pk, reviewer=reviewer, class_name="GLARE")
    assert (label.class_shown, label.probability_shown) == ("AST", 0.9)
    row = queue_rows([scored], reviewer=reviewer)[0]
    assert row.stamps[1].label == "GLARE" and row.stamps[0].label == ""
    assert StampLabel.objects.count() == 2


def test_an_unknown_class_is_refused_with_the_known_ones(scored, reviewer):
    with pytest.raises(ReviewError, match="'PLANET' does not exist .*AST"):
        stamp_label_record(
            detection_id=scored.detections.first().pk, reviewer=reviewer, class_name="PLANET"
        )

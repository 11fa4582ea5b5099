"""Scoring with a real (untrained) ICN + TCN checkpoint: batches, idempotence, rescoring, leases."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from screening.models import StampPrediction, Tracklet, TrackletScore
from screening.registry.versions import model_activate_and_rescore, model_register
from screening.review.verdicts import verdict_record
from screening.scoring import worker as inference
from tests.stamps import ingest_tracklet
from tests.untrained_model import make_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return [make_checkpoint(directory, seed) for seed in (1, 2)]


@pytest.fixture
def active(checkpoints):
    inference._loaded.clear()
    model = model_register(path=checkpoints[0])
    model_activate_and_rescore(version=model.version)
    model.refresh_from_db()
    return model


def test_registering_reads_the_checkpoint_and_names_it_by_its_hash(checkpoints):
    model = model_register(path=checkpoints[0])
    assert checkpoints[0].name.endswith(f"{model.version}.pt")
    assert model.classes[:2] == ["BURN", "CR"] and model.threshold == 0.5
    assert model_register(path=checkpoints[0]).pk == model.pk  # idempotent


def test_figures_shipped_beside_a_checkpoint_are_shown_from_its_registration(tmp_path, settings):
    """`model_evaluate --save-beside` writes a model's figures beside its checkpoint; a new
    install that registers that checkpoint shows them at once, unless the simulator changed."""
    import json

    from django.core.management import call_command

    from screening.models import ModelVersion
    from screening.registry.versions import evaluation_file, synthetic_report

    settings.VAR_DIR = tmp_path / "var"
    path = make_checkpoint(tmp_path / "models", seed=5)
    model = model_register(path=path)
    assert synthetic_report(model) == {}
    call_command("model_evaluate", model.version, "--real", "6", "--bogus", "6", "--planet",
                 "2", "--save-beside", stdout=open(tmp_path / "out.txt", "w"))  # fmt: skip
    measured = synthetic_report(ModelVersion.objects.get(pk=model.pk))
    assert measured["candidate"]["at_model_threshold"]["real_recall"] is not None
    shipped = evaluation_file(path)
    assert json.loads(shipped.read_text())["version"] == model.version
    ModelVersion.objects.filter(pk=model.pk).delete()  # a new install: no row, the file kept
    assert synthetic_report(model_register(path=path)) == measured
    stale = json.loads(shipped.read_text())
    stale["simulator"] = "0" * 16  # measured on another simulator's set
    shipped.write_text(json.dumps(stale))
    ModelVersion.objects.filter(version=model.version).delete()
    assert synthetic_report(model_register(path=path)) == {}


def test_it_scores_every_pending_tracklet_in_batches_as_the_model_does(active, settings):
    from classifier.inference import load_model

    settings.INFERENCE_BATCH_STAMPS = 8  # two tracklets per batch
    tracklets = [ingest_tracklet(f"T{i}", seed=i, n=3 + i % 2) for i in range(5)]
    assert inference.tracklets_score_pending() == 5
    model = load_model(active.checkpoint)
    arrays = [t.model_input() for t in tracklets]
    meta = np.array(
        [
            [d.mjd, d.ra, d.dec, d.mag, d.x, d.y]
            for t in tracklets
            for d in t.detections.order_by("index")
        ]
    )
    assert model.needs_metadata  # the worker hands the model each detection's metadata
    probs, scores = model.score(np.concatenate(arrays), [len(a) for a in arrays], meta)
    for tracklet, expected in zip(tracklets, scores, strict=True):
        tracklet.refresh_from_db()
        assert tracklet.status == "scored" and tracklet.model_version == active
        assert tracklet.score == pytest.approx(float(expected), abs=1e-5)
        assert tracklet.claimed_at is None
    first = (
        StampPrediction.objects.filter(detection__tracklet=tracklets[0])
        .order_by("detection__index")
        .first()
    )
    assert first.probabilities[active.classes[0]] == pytest.approx(float(probs[0][0]), abs=1e-5)
    assert inference.tracklets_score_pending() == 0  # nothing left; scoring again is a no-op
    # digest2 runs after the model's scores (its task, queued by the scoring pass), on each,
    # once, and says with what
    from screening.scoring.tasks import digest2_pending

    assert digest2_pending() == 5 and digest2_pending() == 0
    for tracklet in Tracklet.objects.filter(pk__in=[t.pk for t in tracklets]):
        assert tracklet.digest2_version.startswith("digest2 2.")
        assert tracklet.digest2_neo is not None and not tracklet.digest2_problem
        assert set(tracklet.digest2_scores["noid"]) >= {"NEO", "N22", "MB1", "JFC"}


def test_a_new_active_model_rescores_unreviewed_tracklets_and_a_rollback_restores(
    active, checkpoints, reviewer
):
    reviewed, open_ = ingest_tracklet("R"), ingest_tracklet("O", seed=1)
    inference.tracklets_score_pending()
    verdict_record(tracklet_id=reviewed.pk, reviewer=reviewer, value="real")
    first_score = Tracklet.objects.get(pk=open_.pk).score
    newer = model_register(path=checkpoints[1])
    model_activate_and_rescore(version=newer.version)
    assert inference.tracklets_score_pending() == 1
    assert Tracklet.objects.get(pk=open_.pk).model_version == newer
    assert Tracklet.objects.get(pk=reviewed.pk).model_version == active  # reviewed: kept
    model_activate_and_rescore(version=active.version)  # rollback
    assert inference.tracklets_score_pending() == 1
    rolled_back = Tracklet.objects.get(pk=open_.pk)
    assert rolled_back.model_version == active and rolled_back.score == first_score
    assert TrackletScore.objects.filter(tracklet=open_).count() == 2


def test_a_claim_of_a_dead_worker_expires_and_the_sweep_sees_it(active, settings):
    ingest_tracklet("T1")
    claimed = inference.tracklets_claim(model=active, max_stamps=100)
    assert [t.survey_id for t in claimed] == ["T1"]
    assert inference.unscored_waiting() == 0  # claimed by a live worker
    assert inference.tracklets_claim(model=active, max_stamps=100) == []
    Tracklet.objects.update(
        claimed_at=timezone.now() - timedelta(seconds=settings.INFERENCE_CLAIM_SECONDS + 1)
    )
    assert inference.unscored_waiting() == 1
    assert inference.tracklets_score_pending() == 1


def test_without_an_active_model_tracklets_stay_pending():
    inference._loaded.clear()
    ingest_tracklet("T1")
    assert inference.tracklets_score_pending() == 0
    assert Tracklet.objects.get().status == "pending"


def test_a_tracklet_with_an_unmeasured_magnitude_is_scored(active):
    """A sentinel magnitude (99) and a missing one are left out of the magnitude cues: the
    tracklet is scored like any other, its cues page shows them as not measured."""
    from tests.stamps import detection_rows, ingest_rows, stamp_files

    rows = detection_rows("M1", 4, seed=3)
    rows[1]["mag"] = 99.0
    del rows[3]["mag"]
    tracklet = ingest_rows("M1", rows, stamp_files("M1", 4, seed=3))
    assert inference.tracklets_score_pending() == 1
    tracklet.refresh_from_db()
    assert tracklet.score is not None and 0.0 <= tracklet.score <= 1.0
    from screening.review.cues import tracklet_cues

    cues = tracklet_cues(tracklet)
    assert "problem" not in cues
    assert [c["mag"] is None for c in cues["detections"]] == [False, True, False, True]

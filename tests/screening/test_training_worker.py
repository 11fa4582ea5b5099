"""A training worker killed with SIGKILL mid-run: the run ends failed, the active model stays."""

from __future__ import annotations

import signal

import pytest

from screening.model_registry import model_activate, model_register
from screening.models import JobStatus, ModelVersion, StampClass, TrainingRun
from screening.review import stamp_label_record, verdict_record
from screening.tasks import reap_training_runs
from screening.training import training_run_request
from tests.conftest import make_user
from tests.screening.test_inference_worker import wait_for
from tests.stamps import ingest_tracklet
from tests.untrained_model import make_checkpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_a_training_worker_killed_mid_run_leaves_a_failed_run_and_the_active_model(
    start_worker, tmp_path, settings
):
    settings.TRAINING_STALE_SECONDS = 5
    models_dir = tmp_path / "models"
    active = model_register(path=make_checkpoint(models_dir, seed=0))
    model_activate(version=active.version)
    StampClass.objects.create(name="GLARE", is_real=False)
    reviewer = make_user("rev", "reviewer")
    for i in range(6):
        tracklet = ingest_tracklet(f"T{i}", seed=i)
        verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="bogus")
        detection = tracklet.detections.first()
        stamp_label_record(detection_id=detection.pk, reviewer=reviewer, class_name="GLARE")
    worker = start_worker(TRAINING_QUICK="1", TRAINING_DEVICE="cpu", MODELS_DIR=str(models_dir))
    run = training_run_request()
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).progress > 0.05, 120, "the run to be under way"
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING, "the run ended before the kill; nothing was tested"

    wait_for(lambda: reap_training_runs() == 1, 30, "the stale run to be reaped")
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "no heartbeat" in run.error
    assert run.is_live is None and run.candidate is None
    assert ModelVersion.objects.get(is_active=True) == active
    assert not list(models_dir.glob("candidates/*.pt"))  # nothing registered or half-written
    assert training_run_request().status == JobStatus.QUEUED  # a new run may start

"""A training worker killed with SIGKILL mid-run: the run ends failed, the active model stays."""

from __future__ import annotations

import pytest

from screening.models import JobStatus, ModelVersion, TrainingRun
from screening.registry.tasks import reap_training_runs
from screening.registry.training import training_run_request
from tests.processes import kill_worker
from tests.screening.test_inference_worker import wait_for
from tests.stamps import glare_labelled_setup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_a_training_worker_killed_mid_run_leaves_a_failed_run_and_the_active_model(
    start_worker, tmp_path, settings
):
    settings.TRAINING_STALE_SECONDS = 5
    models_dir = tmp_path / "models"
    active = glare_labelled_setup(models_dir, tracklets=6, real=0)
    worker = start_worker(
        "training", TRAINING_QUICK="1", TRAINING_DEVICE="cpu", MODELS_DIR=str(models_dir)
    )
    run = training_run_request()
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).progress > 0.05, 120, "the run to be under way"
    )
    kill_worker(worker)
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING, "the run ended before the kill; nothing was tested"

    wait_for(lambda: reap_training_runs() == 1, 30, "the stale run to be reaped")
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "no heartbeat" in run.error
    assert run.is_live is None and run.candidate is None
    assert ModelVersion.objects.get(is_active=True) == active
    assert not list(models_dir.glob("candidates/*.pt"))  # nothing registered or half-written
    assert training_run_request().status == JobStatus.QUEUED  # a new run may start

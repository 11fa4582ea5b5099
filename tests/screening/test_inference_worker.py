"""Scoring through real Celery workers on Redis: after ingest, SIGKILL, a Redis restart."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from screening.models import Detection, ModelVersion, Tracklet, TrackletScore
from screening.registry.versions import model_activate_and_rescore, model_register
from screening.scoring.tasks import sweep_unscored
from tests.processes import kill_worker
from tests.screening.test_api import multipart
from tests.screening.test_inference import checkpoints  # noqa: F401 - the fixture
from tests.stamps import ingest_tracklet

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def activate(path: Path) -> None:
    model_activate_and_rescore(version=model_register(path=path).version)


def scored() -> int:
    return Tracklet.objects.filter(status="scored").count()


def test_a_tracklet_sent_over_the_api_is_scored_within_seconds(
    start_worker,
    pipeline_client,
    checkpoints,  # noqa: F811
    settings,
):
    activate(checkpoints[0])
    ModelVersion.objects.update(threshold=0.0)  # it passes: it goes to reviewers' queues
    start_worker()
    response = pipeline_client.post("/api/v1/tracklets/", multipart("T1"))
    assert response.status_code == 201
    wait_for(lambda: scored() == 1, 60, "the worker to score the tracklet")
    tracklet = Tracklet.objects.get()
    assert tracklet.model_version.version in checkpoints[0].name
    assert tracklet.detections.first().predictions.count() == 1
    # its display images are drawn after scoring, before any reviewer opens a page
    wait_for(
        lambda: not Detection.objects.filter(tracklet=tracklet, display="").exists(),
        60,
        "the worker to draw the display images",
    )
    for detection in Detection.objects.filter(tracklet=tracklet):
        assert (Path(settings.MEDIA_ROOT) / detection.display.name).stat().st_size > 0
    # and digest2's scores after the model's, by the same workers
    wait_for(
        lambda: Tracklet.objects.filter(digest2_version__startswith="digest2 ").exists(),
        60,
        "the worker to run digest2",
    )
    assert Tracklet.objects.get().digest2_neo is not None


def test_a_worker_killed_mid_batch_loses_nothing(start_worker, checkpoints, settings):  # noqa: F811
    settings.INFERENCE_CLAIM_SECONDS = 3
    activate(checkpoints[0])
    for i in range(30):
        ingest_tracklet(f"K{i}", seed=i)  # each queues scoring; no worker runs yet
    env = {"INFERENCE_BATCH_STAMPS": "4", "INFERENCE_CLAIM_SECONDS": "3"}
    worker = start_worker(**env)
    wait_for(lambda: scored() >= 2, 90, "the first batches")
    kill_worker(worker)
    left = 30 - scored()
    assert left > 0, "the worker finished before it could be killed; nothing was tested"
    assert Tracklet.objects.filter(status="pending", claimed_at__isnull=False).count() <= 1
    start_worker(**env)
    time.sleep(3.5)  # the killed worker's claim expires
    sweep_unscored()
    wait_for(lambda: scored() == 30, 120, "every tracklet to be scored")
    assert TrackletScore.objects.count() == 30  # each exactly once


def test_tracklets_waiting_when_redis_restarts_are_scored_after_the_sweep(
    start_worker,
    checkpoints,  # noqa: F811
):
    pidfile = os.environ.get("REDIS_PIDFILE")
    if not pidfile:
        pytest.skip("needs the Redis that ./run test starts")
    activate(checkpoints[0])
    for i in range(3):
        ingest_tracklet(f"W{i}", seed=i)  # scoring is queued in Redis, no worker runs
    port = str(urlparse(os.environ["REDIS_URL"]).port)
    subprocess.run(
        ["redis-cli", "-p", port, "shutdown", "nosave"], check=False, capture_output=True
    )
    wait_for(lambda: not Path(pidfile).exists(), 10, "Redis to stop")
    subprocess.run(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            pidfile,
            "--dir",
            str(Path(pidfile).parent),
        ],
        check=True,
    )
    wait_for(
        lambda: (
            subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).stdout.strip()
            == b"PONG"
        ),
        10,
        "Redis to start",
    )
    start_worker()
    time.sleep(3)
    assert scored() == 0  # the queued requests were lost with Redis
    sweep_unscored()
    wait_for(lambda: scored() == 3, 60, "the sweep's request to be served")

"""The operators' metrics (`/metrics`, Prometheus text): scraped as Prometheus would, each
number checked against the database, the broker and real workers; and the services' checks."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from screening.models import (
    BundleUpload,
    JobStatus,
    Tracklet,
    TrackletScore,
    TrainingRun,
    WorkerHeartbeat,
)
from screening.registry.versions import model_activate_and_rescore, model_register
from screening.scoring.worker import tracklets_score_pending
from tests.screening.test_inference import checkpoints  # noqa: F401 - the fixture
from tests.stamps import ingest_tracklet


def promtool_check(text: bytes) -> None:
    """Prometheus's own linter passes the exposition (`promtool check metrics`: types, names,
    suffixes, reserved labels); `./run test` installs it with Debian's `prometheus`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian's prometheus; ./run test installs it)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    problems = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0 and not problems.strip(), problems


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")  # Prometheus text
    promtool_check(response.content)
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.django_db
def test_the_metrics_say_what_the_database_holds(client, checkpoints, settings):  # noqa: F811
    from screening.scoring import worker as inference

    inference._loaded.clear()
    model = model_register(path=checkpoints[0])
    model_activate_and_rescore(version=model.version)
    for i in range(6):
        ingest_tracklet(f"M{i}", seed=i, n=3 + i % 2)
    settings.INFERENCE_BATCH_STAMPS = 7  # one claim: two tracklets
    assert tracklets_score_pending(max_batches=1) == 2
    now = timezone.now()
    waiting = list(Tracklet.objects.filter(status="pending").order_by("id"))
    Tracklet.objects.filter(pk=waiting[0].pk).update(claimed_at=now)  # a worker at it now
    Tracklet.objects.filter(pk=waiting[1].pk).update(claimed_at=now - timedelta(hours=1))
    WorkerHeartbeat.objects.create(
        name="cpu@a",
        role="cpu",
        detail={"device": "cpu", "precision": "bf16", "cpu": "avx2"},
        started_at=now,
        seen_at=now,
    )
    WorkerHeartbeat.objects.create(
        name="cpu@lost", role="cpu", started_at=now, seen_at=now - timedelta(minutes=5)
    )
    WorkerHeartbeat.objects.create(
        name="training@b", role="training", started_at=now, seen_at=now, stopped_at=now
    )
    TrainingRun.objects.create(status=JobStatus.RUNNING, progress=0.4, started_at=now)
    BundleUpload.objects.create(original_name="a.zip", status=JobStatus.FAILED)

    samples = scrape(client)

    for status in ("pending", "scored", "reviewed"):
        expected = Tracklet.objects.filter(status=status).count()
        assert value(samples, "screening_tracklets", status=status) == expected
    assert value(samples, "screening_tracklets", status="scored") == 2
    assert value(samples, "screening_tracklets_unscored", claim="claimed") == 1
    assert value(samples, "screening_tracklets_unscored", claim="waiting") == 3  # 1 expired
    scored = TrackletScore.objects.filter(model_version=model)
    assert value(samples, "screening_tracklets_scored_total", model=model.version) == 2
    stamps = sum(s.tracklet.n_detections for s in scored)
    assert value(samples, "screening_stamps_scored_total", model=model.version) == stamps
    assert value(samples, "screening_scoring_stamps_per_second") == pytest.approx(stamps / 300)
    slowest = max(
        (t.scored_at - t.created_at).total_seconds()
        for t in Tracklet.objects.filter(status="scored")
    )
    assert value(samples, "screening_ingest_to_score_seconds", quantile="1.0") == pytest.approx(
        slowest, abs=1e-3
    )
    assert value(samples, "screening_ingest_to_score_seconds_count") == 2
    oldest = Tracklet.objects.filter(status="pending").order_by("created_at").first()
    age = (timezone.now() - oldest.created_at).total_seconds()
    assert value(samples, "screening_unscored_oldest_age_seconds") == pytest.approx(age, abs=5)
    assert value(samples, "screening_worker_up", worker="cpu@a", role="cpu") == 1
    assert value(samples, "screening_worker_up", worker="cpu@lost", role="cpu") == 0
    assert value(samples, "screening_worker_up", worker="training@b", role="training") == 0
    info = {"worker": "cpu@a", "role": "cpu", "device": "cpu", "precision": "bf16", "cpu": "avx2"}
    assert value(samples, "screening_worker_info", **info) == 1
    assert value(samples, "screening_active_model_info", version=model.version) == 1
    assert value(samples, "screening_active_model_threshold") == pytest.approx(model.threshold)
    assert value(samples, "screening_training_runs", status="running") == 1
    assert value(samples, "screening_training_run_progress") == pytest.approx(0.4)
    assert value(samples, "screening_bundle_uploads", status="failed") == 1


@pytest.mark.django_db
def test_a_metrics_token_is_asked_for_when_set(client, settings):
    settings.METRICS_TOKEN = "a-long-metrics-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "METRICS_TOKEN" in refused.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer a-long-metrics-token")
    assert value(samples, "screening_tracklets", status="pending") == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_queue_depths_and_a_real_workers_heartbeat_in_the_metrics(start_worker, client, settings):
    from classifier.hardware import inference_precision
    from screening.celery import app
    from screening.ingest.tasks import ingest_bundle_chunk
    from tests.processes import stop_process

    app.control.purge()
    for _ in range(3):
        ingest_bundle_chunk.delay(0)  # no such chunk: a no-op once a worker takes it
    samples = scrape(client)
    assert value(samples, "screening_broker_up") == 1
    assert value(samples, "screening_queue_messages", queue="default") == 3
    assert value(samples, "screening_queue_messages", queue="training") == 0
    worker = start_worker("cpu", WORKER_HEARTBEAT_SECONDS="1")
    deadline = time.monotonic() + 60
    while True:
        samples = scrape(client)
        beats = list(WorkerHeartbeat.objects.all())
        if (
            beats
            and value(samples, "screening_queue_messages", queue="default") == 0
            and value(samples, "screening_worker_up", worker=beats[0].name, role="cpu") == 1
        ):
            break
        assert time.monotonic() < deadline, samples
        time.sleep(0.5)
    (beat,) = beats
    first_seen = beat.seen_at
    precision = inference_precision("cpu")
    info = {"worker": beat.name, "role": "cpu", "device": "cpu", "precision": precision}
    assert value(samples, "screening_worker_info", **info, cpu=beat.detail["cpu"]) == 1
    time.sleep(2.5)
    beat.refresh_from_db()
    assert beat.seen_at > first_seen  # it keeps beating
    log = next(settings.MEDIA_ROOT.parent.glob("worker-0-cpu.log")).read_text()
    assert f"scores on cpu in {precision}" in log
    stop_process(worker)
    samples = scrape(client)
    assert value(samples, "screening_worker_up", worker=beat.name, role="cpu") == 0


@pytest.mark.django_db
def test_the_beat_health_check_fails_when_the_sweep_is_late(settings):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    with pytest.raises(CommandError, match="no entry"):
        call_command("beat_health")
    every = IntervalSchedule.objects.create(every=60, period="seconds")
    task = PeriodicTask.objects.create(
        name="sweep-unscored", task="screening.tasks.sweep_unscored", interval=every
    )
    with pytest.raises(CommandError, match="not sent"):
        call_command("beat_health")
    task.last_run_at = timezone.now() - timedelta(seconds=30)
    task.save()
    call_command("beat_health")
    task.last_run_at = timezone.now() - timedelta(hours=1)
    task.save()
    with pytest.raises(CommandError, match="not running"):
        call_command("beat_health")


@pytest.mark.django_db
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_storage_init_makes_the_bucket_and_checks_it(s3_media, settings, capsys, region):
    """In any region: outside us-east-1, AWS (and moto) refuse a bucket made without the
    region named."""
    import boto3

    bucket = f"made-by-storage-init-{region}"
    settings.MEDIA_STORAGE = "s3"
    settings.S3_BUCKET = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {
                **settings.STORAGES["default"]["OPTIONS"],
                "bucket_name": bucket,
                "region_name": region,
            },
        },
    }
    call_command("storage_init")
    call_command("storage_init")  # twice: the bucket is there
    out = capsys.readouterr().out
    assert out.count("created the s3 bucket") == 1 and "media storage ok" in out
    client = boto3.client(
        "s3",
        endpoint_url=s3_media.env["S3_ENDPOINT_URL"],
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    client.delete_bucket(Bucket=bucket)

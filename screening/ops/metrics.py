"""Operators' metrics in the Prometheus text format at `/metrics`, read from the database and
the broker at each scrape (so every web process answers the same, with no shared state).

- `screening_queue_messages{queue}`: messages waiting in each Celery queue
  (`screening_broker_up` 0 when the broker does not answer);
- `screening_tracklets{status}`: tracklets by status; `screening_tracklets_unscored{claim}`:
  what the active model has still to score, `claimed` by a worker now or `waiting`;
  `screening_unscored_oldest_age_seconds`: how long the oldest of them has waited;
- `screening_tracklets_scored_total`, `screening_stamps_scored_total`: scores stored (per
  model version: rate() of the sum is the scoring throughput);
  `screening_scoring_tracklets_per_second` / `..._stamps_per_second`: over the last 5 minutes;
- `screening_ingest_to_score_seconds`: a summary (quantiles 0.5, 0.95, 1 = the slowest, with
  `_count` and `_sum`) of the time from ingest to score, tracklets scored in the last 15 minutes;
- `screening_worker_up{worker,role}` and `screening_worker_last_seen_timestamp_seconds`: the
  workers' heartbeats (up = a beat within three intervals and no clean stop);
  `screening_worker_info{worker,role,device,precision}`;
- `screening_active_model_info{version}`, `screening_active_model_threshold`;
- `screening_training_runs{status}`, `screening_training_run_progress` (the live run, 0..1),
  `screening_training_run_heartbeat_age_seconds`;
- `screening_bundle_uploads{status}`, `screening_bundle_chunks_running`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from screening.models import (
    BundleChunk,
    BundleUpload,
    JobStatus,
    ModelVersion,
    Tracklet,
    TrainingRun,
    WorkerHeartbeat,
)
from screening.queueing import queue_size

QUEUES = ("default", "inference", "training")
THROUGHPUT_WINDOW = timedelta(minutes=5)
LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_SAMPLE = 20000  # the most recent scores the quantiles are taken over


class ScreeningCollector:
    """A prometheus_client collector of the product's state (see the module's doc)."""

    def collect(self) -> Iterator[Metric]:
        yield from queue_metrics()
        yield from tracklet_metrics()
        yield from worker_metrics()
        yield from model_metrics()
        yield from job_metrics()


def queue_metrics() -> Iterator[Metric]:
    from screening.celery import app

    depth = GaugeMetricFamily(
        "screening_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    up = GaugeMetricFamily("screening_broker_up", "1 if the broker answered this scrape.")
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            for queue in QUEUES:
                depth.add_metric([queue], queue_size(connection, queue))
        up.add_metric([], 1)
        yield depth
    except Exception:  # the broker's own trouble, shown as such
        up.add_metric([], 0)
    yield up


def status_counts(model) -> dict[str, int]:
    return dict(model.objects.values_list("status").annotate(n=Count("id")).order_by())


def by_status(
    name: str, text: str, model, statuses=JobStatus.values, counts: dict | None = None
) -> GaugeMetricFamily:
    """A gauge of a model's rows by their `status`, every status listed (0 where none)."""
    family = GaugeMetricFamily(name, text, labels=["status"])
    counts = status_counts(model) if counts is None else counts
    for status in statuses:
        family.add_metric([status], counts.get(status, 0))
    return family


def flagged_metric(
    name: str, text: str, field: str, kept: Q, states: tuple[str, str]
) -> GaugeMetricFamily:
    """Tracklets whose reason `field` is set, split in two states: those matching `kept`
    (states[0]) and the rest (states[1]). Counted over the flagged rows alone (each field has
    a partial index)."""
    family = GaugeMetricFamily(name, text, labels=["state"])
    counts = Tracklet.objects.exclude(**{field: ""}).aggregate(
        kept=Count("id", filter=kept), total=Count("id")
    )
    family.add_metric([states[0]], counts["kept"])
    family.add_metric([states[1]], counts["total"] - counts["kept"])
    return family


def unlike_training_metric() -> GaugeMetricFamily:
    """Tracklets unlike their model's training data (classifier.novelty), by whether their
    score would have auto-rejected them (kept: in the to-review queue only for that reason)."""
    return flagged_metric(
        "screening_tracklets_unlike_training",
        "Tracklets unlike their model's training data: 'kept' scored below the threshold and "
        "stay in the to-review queue for it, 'passing' scored above.",
        "unlike_training",
        Q(score__lt=F("model_version__threshold")),
        ("kept", "passing"),
    )


def not_moving_metric() -> GaugeMetricFamily:
    """Tracklets whose score the motion rule capped below the threshold (classifier.motion),
    by whether they are kept as unlike training or auto-rejected for it."""
    return flagged_metric(
        "screening_tracklets_not_moving",
        "Tracklets whose motion is within their astrometric errors, their score capped below "
        "the threshold: 'rejected' auto-rejected for it, 'kept' unlike training and kept.",
        "not_moving",
        ~Q(unlike_training=""),
        ("kept", "rejected"),
    )


def tracklet_metrics() -> Iterator[Metric]:
    now = timezone.now()
    counts = status_counts(Tracklet)
    yield by_status(
        "screening_tracklets",
        "Tracklets stored, by status.",
        Tracklet,
        Tracklet.Status.values,
        counts=counts,
    )

    active = ModelVersion.objects.active()
    unscored = GaugeMetricFamily(
        "screening_tracklets_unscored",
        "Tracklets the active model has still to score: claimed by a worker now, or waiting.",
        labels=["claim"],
    )
    oldest = GaugeMetricFamily(
        "screening_unscored_oldest_age_seconds",
        "Age of the oldest tracklet the active model has still to score (0: none).",
    )
    if active is not None:
        from screening.scoring.worker import unscored as unscored_of
        from screening.scoring.worker import unscored_waiting

        pending = unscored_of(active)
        waiting = unscored_waiting()  # unclaimed or with an expired claim, as the sweep counts
        unscored.add_metric(["claimed"], pending.count() - waiting)
        unscored.add_metric(["waiting"], waiting)
    else:
        pending = Tracklet.objects.filter(status=Tracklet.Status.PENDING)
        unscored.add_metric(["claimed"], 0)
        unscored.add_metric(["waiting"], counts.get(Tracklet.Status.PENDING, 0))
    first = pending.order_by("created_at").values_list("created_at").first()
    oldest.add_metric([], (now - first[0]).total_seconds() if first else 0.0)
    yield unscored
    yield oldest
    yield unlike_training_metric()
    yield not_moving_metric()

    scored = CounterMetricFamily(
        "screening_tracklets_scored",
        "Tracklet scores stored, by model version (history included).",
        labels=["model"],
    )
    stamps = CounterMetricFamily(
        "screening_stamps_scored",
        "Stamps scored (the detections of the tracklets scored), by model version.",
        labels=["model"],
    )
    # Counted as scores are stored (`scores_store`): a scrape reads one row per model version,
    # not the score history.
    rows = ModelVersion.objects.values_list("version", "tracklets_scored", "stamps_scored")
    for version, n_tracklets, n_stamps in rows:
        scored.add_metric([version], n_tracklets)
        stamps.add_metric([version], n_stamps)
    yield scored
    yield stamps

    recent = Tracklet.objects.filter(scored_at__gte=now - THROUGHPUT_WINDOW).aggregate(
        n=Count("id"), stamps=Sum("n_detections")
    )
    seconds = THROUGHPUT_WINDOW.total_seconds()
    rate = GaugeMetricFamily(
        "screening_scoring_tracklets_per_second", "Tracklets scored a second, last 5 minutes."
    )
    rate.add_metric([], recent["n"] / seconds)
    stamp_rate = GaugeMetricFamily(
        "screening_scoring_stamps_per_second", "Stamps scored a second, last 5 minutes."
    )
    stamp_rate.add_metric([], (recent["stamps"] or 0) / seconds)
    yield rate
    yield stamp_rate

    latencies = np.array(
        [
            d.total_seconds()
            for d in Tracklet.objects.filter(scored_at__gte=now - LATENCY_WINDOW)
            .order_by("-scored_at")
            .annotate(latency=F("scored_at") - F("created_at"))
            .values_list("latency", flat=True)[:LATENCY_SAMPLE]
        ]
    )
    # A summary over the tracklets scored in the last 15 minutes (its _count and _sum too).
    name = "screening_ingest_to_score_seconds"
    latency = Metric(
        name,
        "From ingest to score, tracklets scored in the last 15 minutes (quantile 1: slowest).",
        "summary",
    )
    for q in (0.5, 0.95, 1.0):
        found = float(np.quantile(latencies, q)) if len(latencies) else 0.0
        latency.add_sample(name, {"quantile": str(q)}, found)
    latency.add_sample(f"{name}_count", {}, float(len(latencies)))
    latency.add_sample(f"{name}_sum", {}, float(latencies.sum()) if len(latencies) else 0.0)
    yield latency


def worker_metrics() -> Iterator[Metric]:
    now = timezone.now()
    stale = timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    up = GaugeMetricFamily(
        "screening_worker_up",
        "1 if the worker's heartbeat is recent and it has not stopped.",
        labels=["worker", "role"],
    )
    seen = GaugeMetricFamily(
        "screening_worker_last_seen_timestamp_seconds",
        "Unix time of the worker's last heartbeat.",
        labels=["worker", "role"],
    )
    info = GaugeMetricFamily(
        "screening_worker_info",
        "What a worker runs on (1 for each live worker).",
        labels=["worker", "role", "device", "precision", "cpu"],
    )
    for beat in WorkerHeartbeat.objects.all():
        alive = beat.stopped_at is None and now - beat.seen_at <= stale
        up.add_metric([beat.name, beat.role], 1 if alive else 0)
        seen.add_metric([beat.name, beat.role], beat.seen_at.timestamp())
        if alive:
            detail = beat.detail or {}
            info.add_metric(
                [
                    beat.name,
                    beat.role,
                    str(detail.get("device", "")),
                    str(detail.get("precision", "")),
                    str(detail.get("cpu", "")),
                ],
                1,
            )
    yield up
    yield seen
    yield info


def model_metrics() -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "screening_active_model_info", "The active model version (1).", labels=["version"]
    )
    threshold = GaugeMetricFamily(
        "screening_active_model_threshold", "The active model's accept threshold."
    )
    active = ModelVersion.objects.active()
    if active is not None:
        info.add_metric([active.version], 1)
        threshold.add_metric([], active.threshold)
    yield info
    yield threshold


def job_metrics() -> Iterator[Metric]:
    now = timezone.now()
    yield by_status("screening_training_runs", "Training runs, by status.", TrainingRun)
    live = TrainingRun.objects.filter(status=JobStatus.RUNNING).order_by("-started_at").first()
    progress = GaugeMetricFamily(
        "screening_training_run_progress", "Progress of the running training run (0..1)."
    )
    age = GaugeMetricFamily(
        "screening_training_run_heartbeat_age_seconds",
        "Seconds since the running training run's last heartbeat.",
    )
    if live is not None:
        progress.add_metric([], live.progress)
        beat = live.heartbeat_at or live.started_at or now
        age.add_metric([], (now - beat).total_seconds())
    yield progress
    yield age
    yield by_status("screening_bundle_uploads", "Bundle uploads, by status.", BundleUpload)
    chunks = GaugeMetricFamily(
        "screening_bundle_chunks_running", "Chunks of bundles being ingested now."
    )
    chunks.add_metric([], BundleChunk.objects.filter(status=JobStatus.RUNNING).count())
    yield chunks
    scrape = GaugeMetricFamily(
        "screening_metrics_timestamp_seconds", "Unix time this scrape was answered."
    )
    scrape.add_metric([], time.time())
    yield scrape

"""The Celery application: queues `inference`, `training` and `default`."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")

app = Celery("screening")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("inference"), Queue("training")),
    task_routes={
        "screening.tasks.score_*": {"queue": "inference"},
        "screening.tasks.train_*": {"queue": "training"},
    },
    # A task is acknowledged only once it has finished, and redelivered if its worker dies.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=3600,
    task_soft_time_limit=3300,
    task_track_started=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=7 * 24 * 3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Imported by every worker as it starts: the heartbeat's signal handlers.
    imports=("screening.ops.heartbeat",),
)
# Each stage of the data path has its own tasks module; names are pinned in screening.queueing.
app.autodiscover_tasks(
    ["screening.ingest", "screening.scoring", "screening.review", "screening.registry"]
)

"""Queueing work for the Celery workers, by task name.

Services queue their follow-up work here (ingest queues scoring, an upload its chunks, a
promotion its rescoring) without importing the tasks modules, which import the services: the
names below are the tasks' pinned names (beat schedules and stored periodic tasks keep them), and
`screening.celery` routes them to their queues by name.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# ingest/tasks.py
INGEST_BUNDLE_UPLOAD = "screening.tasks.ingest_bundle_upload"
INGEST_BUNDLE_CHUNK = "screening.tasks.ingest_bundle_chunk"
SWEEP_BUNDLE_CHUNKS = "screening.tasks.sweep_bundle_chunks"
PRUNE_BUNDLE_UPLOADS = "screening.tasks.prune_bundle_uploads"
# scoring/tasks.py (inference queue: `score_*`)
SCORE_PENDING = "screening.tasks.score_pending"
SWEEP_UNSCORED = "screening.tasks.sweep_unscored"
# digest2 after the model's scores (default queue: CPU workers; not on the inference path)
DIGEST2_PENDING = "screening.tasks.digest2_pending"
# review/tasks.py
MAKE_DISPLAYS = "screening.tasks.make_displays"
# registry/tasks.py (training queue: `train_*`)
TRAIN_MODEL_RUN = "screening.tasks.train_model_run"
REAP_TRAINING_RUNS = "screening.tasks.reap_training_runs"
TRAIN_SCHEDULED = "screening.tasks.train_scheduled"


def enqueue(name: str, *args) -> None:
    """Send one task by name (routed to its queue by `screening.celery`); raises if the broker
    cannot take it."""
    from screening.celery import app

    app.send_task(name, args=list(args))


def enqueue_or_log(name: str, *args, fallback: str) -> None:
    """Send one task; if the broker is down, log a warning saying what will catch up instead
    (`fallback`) and go on: nothing is lost, the work waits in the database."""
    try:
        enqueue(name, *args)
    except Exception:  # the broker is not ours to fix here
        log.warning("could not queue %s; %s", name.rsplit(".", 1)[-1], fallback, exc_info=True)


def request_scoring() -> None:
    """Queue a scoring pass (call after commit). If the broker is down, the sweep catches up."""
    enqueue_or_log(SCORE_PENDING, fallback="the periodic sweep will score them")


def request_digest2() -> None:
    """Queue digest2 for tracklets the model has scored (after its scores: the model's score
    comes first). If the broker is down, the periodic sweep catches up."""
    enqueue_or_log(DIGEST2_PENDING, fallback="the periodic sweep will queue digest2")


def request_displays(tracklet_ids: list[int]) -> None:
    """Queue the display images of those just-scored tracklets that reviewers will open (their
    to-review rows), so that a queue page finds them drawn. If the broker is down, the page
    draws what is missing itself."""
    enqueue_or_log(MAKE_DISPLAYS, list(tracklet_ids), fallback="pages will draw them")


def queue_size(connection, queue: str) -> int:
    """Messages waiting in a queue (not those a worker holds unacknowledged); 0 for a queue the
    broker has never seen (nothing sent to it yet)."""
    from amqp.exceptions import ChannelError

    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True)[1]
    except ChannelError:  # kombu's "no queue" on a broker where nothing declared it yet
        return 0
    finally:
        channel.close()


def queue_depth(queue: str) -> int:
    """Messages waiting in one queue of the broker; raises if the broker does not answer."""
    from screening.celery import app

    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        return queue_size(connection, queue)

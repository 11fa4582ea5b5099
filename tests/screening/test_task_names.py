"""The Celery tasks keep the names they had before the code was grouped by stage: stored periodic
tasks, beat schedules and messages already in a broker name them; each name is routed to the
queue whose workers can run it."""

from __future__ import annotations

import pytest
from django.conf import settings

from screening import queueing
from screening.celery import app

PINNED = {
    value
    for name, value in vars(queueing).items()
    if name.isupper() and isinstance(value, str) and value.startswith("screening.tasks.")
}


def _registered() -> set[str]:
    app.loader.import_default_modules()
    app.autodiscover_tasks(
        ["screening.ingest", "screening.scoring", "screening.review", "screening.registry"],
        force=True,
    )
    return {name for name in app.tasks if name.startswith("screening.")}


def test_every_task_is_registered_under_its_pinned_name_and_no_other() -> None:
    assert len(PINNED) == 11
    assert _registered() == PINNED


@pytest.mark.django_db
def test_the_beat_schedules_name_registered_tasks() -> None:
    from django_celery_beat.models import PeriodicTask

    registered = _registered()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    stored = set(PeriodicTask.objects.values_list("task", flat=True))  # made after migrate
    assert "screening.tasks.train_scheduled" in stored
    assert scheduled | stored <= registered


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (queueing.SCORE_PENDING, "inference"),
        (queueing.SWEEP_UNSCORED, "default"),
        (queueing.DIGEST2_PENDING, "default"),
        (queueing.TRAIN_MODEL_RUN, "training"),
        (queueing.TRAIN_SCHEDULED, "training"),
        (queueing.INGEST_BUNDLE_CHUNK, "default"),
        (queueing.MAKE_DISPLAYS, "default"),
    ],
)
def test_each_task_goes_to_the_queue_of_the_workers_that_run_it(task: str, queue: str) -> None:
    assert app.amqp.router.route({}, task)["queue"].name == queue

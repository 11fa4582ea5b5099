"""Review's Celery task (default queue): draw the display images of rows reviewers will open.
The name is pinned (`screening.queueing`)."""

from __future__ import annotations

from celery import shared_task

from screening import queueing
from screening.models import Tracklet
from screening.review.blind import queued_q
from screening.review.displays import displays_make


@shared_task(name=queueing.MAKE_DISPLAYS, time_limit=600, soft_time_limit=590)
def make_displays(tracklet_ids: list[int]) -> int:
    """Draw the display PNGs of the tracklets among these that sit in reviewers' queues (passing
    the threshold, or placed there blind), after scoring."""
    queued = Tracklet.objects.filter(queued_q(), pk__in=tracklet_ids)
    return displays_make(list(queued.values_list("pk", flat=True)))

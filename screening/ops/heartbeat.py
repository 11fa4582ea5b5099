"""Workers' heartbeats: every Celery worker writes a row (`WorkerHeartbeat`) when it is ready
and every WORKER_HEARTBEAT_SECONDS after, and marks it stopped on a warm shutdown; the metrics
endpoint reads them. A worker also says in its log at start how it will score (device,
precision, the CPU features that chose it)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import signals

logger = logging.getLogger(__name__)

_stop = threading.Event()


def worker_detail(role: str) -> dict[str, Any]:
    """What this worker runs on: for a role that scores, the device and precision it uses."""
    from classifier.hardware import cpu_summary
    from screening.ops.workers import ROLES

    detail: dict[str, Any] = {"cpu": cpu_summary(), "cores": os.cpu_count()}
    if role in ROLES and "inference" in ROLES[role].queues:
        from classifier.inference import Runtime
        from screening.scoring.worker import runtime_options

        runtime = Runtime.for_device(**runtime_options())  # what its model will run with
        detail.update(device=runtime.device, precision=runtime.precision)
    return detail


def heartbeat_write(*, name: str, role: str, detail: dict[str, Any], started: bool = False):
    """Record that worker `name` is alive now (`started`: it has just started)."""
    from django.db import close_old_connections
    from django.utils import timezone

    from screening.models import WorkerHeartbeat
    from screening.ops.workers import ROLES

    now = timezone.now()
    try:
        if started:
            WorkerHeartbeat.objects.update_or_create(
                name=name,
                defaults={
                    "role": role,
                    "queues": ",".join(ROLES[role].queues) if role in ROLES else "",
                    "pid": os.getpid(),
                    "detail": detail,
                    "started_at": now,
                    "seen_at": now,
                    "stopped_at": None,
                },
            )
        elif not WorkerHeartbeat.objects.filter(name=name).update(seen_at=now, stopped_at=None):
            heartbeat_write(name=name, role=role, detail=detail, started=True)
    finally:
        close_old_connections()


def heartbeat_stop(name: str) -> None:
    from django.db import close_old_connections
    from django.utils import timezone

    from screening.models import WorkerHeartbeat

    try:
        WorkerHeartbeat.objects.filter(name=name).update(stopped_at=timezone.now())
    finally:
        close_old_connections()


def _beat(name: str, role: str, detail: dict[str, Any], every: float) -> None:
    while not _stop.wait(every):
        try:
            heartbeat_write(name=name, role=role, detail=detail)
        except Exception:  # the database is away: try again next time, the worker goes on
            logger.warning("worker heartbeat not written", exc_info=True)


@signals.worker_ready.connect
def _on_ready(sender=None, **_: Any) -> None:
    from django.conf import settings

    name = getattr(sender, "hostname", None) or "unknown"
    role = os.environ.get("WORKER_ROLE", "")
    detail = worker_detail(role)
    if "precision" in detail:
        logger.info(
            "worker %s scores on %s in %s (CPU: %s)",
            name,
            detail["device"],
            detail["precision"],
            detail["cpu"],
        )
    try:
        heartbeat_write(name=name, role=role, detail=detail, started=True)
    except Exception:
        logger.warning("worker heartbeat not written", exc_info=True)
    _stop.clear()
    threading.Thread(
        target=_beat,
        args=(name, role, detail, settings.WORKER_HEARTBEAT_SECONDS),
        name="screening-heartbeat",
        daemon=True,
    ).start()


@signals.worker_shutdown.connect
def _on_shutdown(sender=None, **_: Any) -> None:
    _stop.set()
    name = getattr(sender, "hostname", None)
    if name:
        try:
            heartbeat_stop(name)
        except Exception:
            logger.warning("worker stop not recorded", exc_info=True)

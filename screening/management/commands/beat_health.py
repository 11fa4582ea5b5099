"""Health of the beat (docker-compose's health check): exits 0 when the scheduler has sent its
most frequent entry (the unscored sweep) within three of its intervals plus the 3 minutes the
database scheduler may take to record it; 1, naming how late it is, otherwise.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

ENTRY = "sweep-unscored"


class Command(BaseCommand):
    help = "Exit 0 if celery beat has sent the unscored sweep recently (a health check)."

    def handle(self, *args, **options) -> None:
        from django_celery_beat.models import PeriodicTask

        task = PeriodicTask.objects.filter(name=ENTRY).first()
        if task is None:
            raise CommandError(f"beat has not installed its schedule (no entry {ENTRY!r})")
        # the database scheduler writes last_run_at every 3 minutes (its sync_every)
        allowed = timedelta(seconds=3 * settings.INFERENCE_SWEEP_SECONDS + 180)
        if task.last_run_at is None:
            raise CommandError(f"beat has not sent {ENTRY!r} yet")
        late = timezone.now() - task.last_run_at
        if late > allowed:
            raise CommandError(
                f"beat last sent {ENTRY!r} {late.total_seconds():.0f} s ago "
                f"(allowed {allowed.total_seconds():.0f} s): it is not running"
            )
        self.stdout.write(f"beat ok: {ENTRY!r} sent {late.total_seconds():.0f} s ago")

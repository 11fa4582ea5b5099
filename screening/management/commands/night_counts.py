"""Count each night's tracklets again and store the counts the nights' list shows."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from screening.nights import night_counts_refresh


class Command(BaseCommand):
    help = (
        "Count each night's tracklets (all, pending, reviewed) again and store the counts the "
        "nights' list shows; they are kept as tracklets arrive and change, so this only repairs "
        "counts changed by hand in the database."
    )

    def handle(self, *args, **options) -> None:
        wrong = night_counts_refresh()
        self.stdout.write(f"{wrong} night(s) had wrong counts; all are right now")

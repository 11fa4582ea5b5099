"""`manage.py score`: score every tracklet the active model has not scored, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from screening.scoring.worker import tracklets_score_pending, unscored_stamps


class Command(BaseCommand):
    help = "Score, in the foreground, every tracklet the active model has still to score."

    def handle(self, *args, **options) -> None:
        total = unscored_stamps()
        scored = 0
        with tqdm(total=total, unit="stamp") as bar:
            while True:
                done = tracklets_score_pending(max_batches=1)
                if not done:
                    break
                scored += done
                bar.update(total - unscored_stamps() - bar.n)
        self.stdout.write(f"{scored} tracklets scored")

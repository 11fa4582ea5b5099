"""`manage.py score`: score every tracklet the active model has not scored, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from screening.scoring.digest2 import digest2_pending_ids, digest2_store
from screening.scoring.worker import tracklets_score_pending, unscored_stamps


class Command(BaseCommand):
    help = (
        "Score, in the foreground, every tracklet the active model has still to score, then "
        "digest2 for those it has not scored."
    )

    def handle(self, *args, **options) -> None:
        total = unscored_stamps()
        scored = 0
        with tqdm(total=total, unit="stamp") as bar:
            while True:
                done = tracklets_score_pending(max_batches=1, digest2_after=False)
                if not done:
                    break
                scored += done
                bar.update(total - unscored_stamps() - bar.n)
        self.stdout.write(f"{scored} tracklets scored")
        # digest2 here too (a worker would queue it): the model's scores first, then D2
        pending = len(digest2_pending_ids(limit=10**9))
        with tqdm(total=pending, unit="tracklet", desc="digest2") as bar:
            while ids := digest2_pending_ids(limit=200):
                bar.update(digest2_store(ids))

"""`manage.py digest2`: digest2 scores for tracklets that have none (stored before digest2 ran
at scoring, or whose digest2 could not run), or for all of them with --again."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import Q
from tqdm import tqdm

from screening.models import Tracklet
from screening.nights import night_argument
from screening.scoring.digest2 import digest2_store, digest2_version

BATCH = 200


class Command(BaseCommand):
    help = "Score tracklets with digest2 (the MPC's NEO classifier) where no score is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--night", type=night_argument, help="only this night (YYYY-MM-DD)")
        parser.add_argument(
            "--again", action="store_true", help="score every tracklet again, stored or not"
        )

    def handle(self, *args, night=None, again=False, **options) -> None:
        todo = Tracklet.objects.all()
        if night is not None:
            todo = todo.filter(night__date=night)
        if not again:
            # none stored, or digest2 could not run where it was tried
            todo = todo.filter(
                Q(digest2_version="", digest2_problem="")
                | Q(digest2_problem__startswith="digest2 could not run")
            )
        ids = list(todo.order_by("id").values_list("id", flat=True))
        self.stdout.write(f"{digest2_version()}: {len(ids)} tracklets to score")
        with tqdm(total=len(ids), unit="tracklet") as bar:
            for start in range(0, len(ids), BATCH):
                bar.update(digest2_store(ids[start : start + BATCH]))
        neo = Tracklet.objects.filter(pk__in=ids, digest2_neo__isnull=False).count()
        self.stdout.write(f"{len(ids)} tracklets scored by digest2, {neo} with scores")

"""`manage.py gold_mark`: make tracklets of a night gold (known truth), mixed into queues blind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from screening.models import Night
from screening.nights import night_argument
from screening.reports.reviewer_quality import gold_mark


class Command(BaseCommand):
    help = (
        "Mark gold tracklets: from a simulated bundle's truth.jsonl (--truth-from, a seeded "
        "--count of them), or given survey ids with --truth (confirmed tracklets)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--night", required=True, type=night_argument, help="YYYY-MM-DD")
        parser.add_argument("--truth-from", type=Path, help="a simulated bundle folder")
        parser.add_argument("--count", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--survey-ids", nargs="*", default=[])
        parser.add_argument("--truth", choices=["real", "bogus"])

    def handle(self, *args, **options) -> None:
        try:
            night = Night.objects.get(date=options["night"])
        except Night.DoesNotExist:
            raise CommandError(f"no night {options['night']}") from None
        if options["truth_from"]:
            path = options["truth_from"] / "truth.jsonl"
            if not path.exists():
                raise CommandError(f"{path} does not exist: not a simulated bundle")
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rng = np.random.default_rng(options["seed"])
            picked = rng.choice(len(rows), size=min(options["count"], len(rows)), replace=False)
            truth = {
                rows[i]["tracklet"]: "real" if rows[i]["real"] else "bogus" for i in sorted(picked)
            }
            source = f"simulation {options['truth_from'].name}"
        elif options["survey_ids"] and options["truth"]:
            truth = dict.fromkeys(options["survey_ids"], options["truth"])
            source = "confirmed"
        else:
            raise CommandError("give --truth-from FOLDER, or --survey-ids ... with --truth")
        try:
            added = gold_mark(night=night, truth=truth, source=source)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{added} gold tracklets added to night {night.date} ({source})")

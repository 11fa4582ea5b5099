"""`manage.py demo_night`: a simulated night, ingested through the bundle path, ready to screen."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from screening.models import ModelVersion, Night
from screening.nights import night_argument


class Command(BaseCommand):
    help = (
        "Simulate a night of unknown tracklets (FITS stamps and a manifest, as a survey would "
        "send) unless it is already under var/, ingest it, and register and activate the newest "
        "model checkpoint under MODELS_DIR if no model is active. Workers then score the night. "
        "The night before it is a planet-glare night: fields near a bright planet, whose glare "
        "the first model has no class for (--glare-tracklets 0 leaves it out)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tracklets", type=int, default=1000, help="tracklets in the night")
        parser.add_argument("--seed", type=int, default=20261124, help="simulator seed")
        parser.add_argument(
            "--real-fraction",
            type=float,
            default=0.05,
            help="share of real tracklets (the paper's nights: about 0.02)",
        )
        parser.add_argument("--night", type=night_argument, default=date.today(), help="YYYY-MM-DD")
        parser.add_argument(
            "--glare-tracklets",
            type=int,
            default=600,
            help="tracklets of the planet-glare night (the night before); 0: none",
        )
        parser.add_argument(
            "--planet-fraction",
            type=float,
            default=0.35,
            help="share of the glare night's tracklets in fields near a planet",
        )

    def handle(
        self,
        *args,
        tracklets: int,
        seed: int,
        real_fraction: float,
        night: date,
        glare_tracklets: int,
        planet_fraction: float,
        **options,
    ) -> None:
        self._activate_model()
        nights = [(night.isoformat(), seed, tracklets, 0.0)]
        if glare_tracklets:
            before = (night - timedelta(days=1)).isoformat()
            nights.insert(0, (before, seed + 1, glare_tracklets, planet_fraction))
        for day, day_seed, count, planets in nights:
            self._night(day, day_seed, count, real_fraction, planets)

    def _night(
        self, night: str, seed: int, tracklets: int, real_fraction: float, planets: float
    ) -> None:
        what = "planet-glare night" if planets else "night"
        if Night.objects.filter(date=night).exists():
            self.stdout.write(f"{what} {night} is already ingested")
            return
        suffix = f"-planets{planets}" if planets else ""
        folder = settings.VAR_DIR / f"demo-night-{night}-{seed}-{tracklets}{suffix}"
        if not (folder / "manifest.jsonl").exists():
            from classifier.bundle import simulate_night

            self.stdout.write(f"simulating the {what}: {tracklets} tracklets into {folder}")
            simulate_night(
                folder,
                seed=seed,
                night=night,
                n_tracklets=tracklets,
                real_fraction=real_fraction,
                planet_fraction=planets,
            )
        self.stdout.write(f"ingesting the {what} {night} from {folder}")
        call_command("ingest", str(folder), stdout=self.stdout, stderr=self.stderr)
        if not planets:
            # Gold for the reviewer-quality page: simulated tracklets whose truth is known.
            call_command(
                "gold_mark",
                night=night,
                truth_from=folder,
                count=20,
                seed=seed,
                stdout=self.stdout,
                stderr=self.stderr,
            )

    def _activate_model(self) -> None:
        if ModelVersion.objects.active() is not None:
            return
        checkpoints = sorted(
            Path(settings.MODELS_DIR).glob("*.pt"), key=lambda p: p.stat().st_mtime
        )
        if not checkpoints:
            self.stdout.write(
                self.style.WARNING(
                    f"no model checkpoint under {settings.MODELS_DIR}: tracklets stay unscored"
                )
            )
            return
        call_command("model_register", str(checkpoints[-1]), "--activate", stdout=self.stdout)

"""`manage.py demo_night`: a simulated night, ingested through the bundle path, ready to screen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from screening.models import ModelVersion, Night


class Command(BaseCommand):
    help = (
        "Simulate a night of unknown tracklets (FITS stamps and a manifest, as a survey would "
        "send) unless it is already under var/, ingest it, and register and activate the newest "
        "model checkpoint under MODELS_DIR if no model is active. Workers then score the night."
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
        parser.add_argument("--night", default=date.today().isoformat(), help="YYYY-MM-DD")

    def handle(
        self, *args, tracklets: int, seed: int, real_fraction: float, night: str, **options
    ) -> None:
        self._activate_model()
        if Night.objects.filter(date=night).exists():
            self.stdout.write(f"night {night} is already ingested")
            return
        folder = settings.VAR_DIR / f"demo-night-{night}-{seed}-{tracklets}"
        if not (folder / "manifest.jsonl").exists():
            from classifier.bundle import simulate_night

            self.stdout.write(f"simulating {tracklets} tracklets into {folder}")
            simulate_night(
                folder, seed=seed, night=night, n_tracklets=tracklets, real_fraction=real_fraction
            )
        call_command("ingest", str(folder), stdout=self.stdout, stderr=self.stderr)

    def _activate_model(self) -> None:
        if ModelVersion.objects.filter(is_active=True).exists():
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

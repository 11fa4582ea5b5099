"""`manage.py model_register PATH [--activate]`: register a checkpoint as a model version."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from screening.registry.versions import model_activate_and_rescore, model_register


class Command(BaseCommand):
    help = (
        "Register a model checkpoint (made by `python -m classifier`) as a model version named "
        "by its content hash; with --activate make it the active model, which rescores every "
        "unreviewed tracklet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the checkpoint file (.pt)")
        parser.add_argument("--activate", action="store_true", help="make it the active model")

    def handle(self, *args, path: Path, activate: bool, **options) -> None:
        from classifier.checkpoint import CheckpointError

        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            model = model_register(path=path)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        if activate:
            model_activate_and_rescore(version=model.version)
        state = "active" if activate else "registered"
        self.stdout.write(
            f"model {model.version} ({len(model.classes)} classes, threshold "
            f"{model.threshold}) {state}"
        )

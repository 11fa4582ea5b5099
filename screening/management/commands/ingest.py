"""`manage.py ingest PATH`: ingest a night bundle (folder, .zip or .tar.gz) with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from screening.bundles import BundleError, bundle_ingest


class Command(BaseCommand):
    help = (
        "Ingest a night bundle: a directory, .zip or .tar.gz holding manifest.jsonl or "
        "manifest.csv (one row per detection) and the stamp files it names. Each tracklet is "
        "stored whole or not at all; the exit status is 1 if any tracklet was rejected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the bundle: a directory, .zip or .tar.gz")
        parser.add_argument(
            "--report", type=Path, help="write the per-tracklet results to this JSON file"
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="do not show the progress bar"
        )

    def handle(self, *args, path: Path, report: Path | None, no_progress: bool, **options):
        bar = tqdm(total=0, unit="tracklet", disable=no_progress, desc=path.name)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = bundle_ingest(path=path, progress=progress)
        except BundleError as exc:
            raise CommandError(f"bundle rejected, nothing written: {exc}") from exc
        finally:
            bar.close()
        if report is not None:
            report.write_text(
                json.dumps({"summary": result.summary, "results": result.results}, indent=1)
            )
        for item in result.results:
            if item["status"] in ("rejected", "conflict"):
                reasons = "; ".join(
                    f"{e.get('field') or e.get('file') or ''}: {e['reason']}"
                    for e in item["errors"]
                )
                self.stderr.write(
                    f"{item['status']}: {item['night']}/{item['tracklet']} "
                    f"({item['origin']}): {reasons}"
                )
        summary = result.summary
        self.stdout.write(
            "{tracklets} tracklets: {created} created, {unchanged} unchanged, "
            "{rejected} rejected, {conflict} in conflict".format(**summary)
        )
        if summary["rejected"] or summary["conflict"]:
            raise SystemExit(1)

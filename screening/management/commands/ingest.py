"""`manage.py ingest PATH`: ingest a night bundle (folder, .zip or .tar.gz) with a progress bar."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from screening.ingest.bundles import BundleError, BundleReport, bundle_ingest

logger = logging.getLogger(__name__)


@contextmanager
def _tracebacks_to_file(log: Path) -> Iterator[None]:
    """While ingesting, error tracebacks go to `log`; the terminal gets one line naming it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log)
    to_file.setLevel(logging.ERROR)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    screening = logging.getLogger("screening")  # handled here before the root's console

    class OneLine(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.exc_info:
                record.msg = f"{record.getMessage()} (traceback in {log})"
                record.args = None
                record.exc_info = None
                record.exc_text = None
            return True

    one_line = OneLine()
    consoles = logging.getLogger().handlers
    screening.addHandler(to_file)
    for handler in consoles:
        handler.addFilter(one_line)
    try:
        yield
    finally:
        screening.removeHandler(to_file)
        to_file.close()
        for handler in consoles:
            handler.removeFilter(one_line)


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

        result = BundleReport()
        try:
            with _tracebacks_to_file(settings.VAR_DIR / "ingest-errors.log"):
                bundle_ingest(path=path, progress=progress, report=result)
        except BundleError as exc:
            self._write_report(report, result, error=str(exc))
            written = "nothing written" if not result.results else "see the results"
            raise CommandError(f"bundle rejected, {written}: {exc}") from exc
        except Exception as exc:  # say what happened and what was stored, not a traceback
            with _tracebacks_to_file(settings.VAR_DIR / "ingest-errors.log"):
                logger.exception("ingest of %s failed", path)
            self._write_report(report, result, error=f"{type(exc).__name__}: {exc}")
            self._print_results(result)
            raise CommandError(
                f"internal error after {len(result.results)} tracklet(s) (listed above): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            bar.close()
        self._write_report(report, result)
        self._print_results(result)
        summary = result.summary
        if summary["rejected"] or summary["conflict"]:
            raise SystemExit(1)

    def _write_report(self, target: Path | None, result: BundleReport, error: str = "") -> None:
        if target is None:
            return
        body: dict = {"summary": result.summary, "results": result.results}
        if error:
            body["error"] = error
        try:
            target.write_text(json.dumps(body, indent=1))
        except OSError as exc:
            raise CommandError(f"cannot write the report {target}: {exc}") from exc

    def _print_results(self, result: BundleReport) -> None:
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
        self.stdout.write(
            "{tracklets} tracklets: {created} created, {unchanged} unchanged, "
            "{rejected} rejected, {conflict} in conflict".format(**result.summary)
        )

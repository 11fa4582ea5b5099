"""Ingest throughput: tracklets per second, 4 stamps each, in one process and through the upload
path with 1 and 2 real workers ingesting the chunks at once.

Run it on PostgreSQL and Redis with `./run bench bench/ingest_throughput.py [--tracklets N]
[--workers 1,2]`; it migrates the database it is given, writes a bundle of survey-like gzip FITS
stamps (100x100, float32), ingests the folder in this process (files and bytes written per
tracklet; what display PNGs at ingest would have cost), then uploads its .zip and lets the
workers ingest it (no model is active: nothing is scored), and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")


def write_survey_bundle(folder: Path, n_tracklets: int, night: str) -> None:
    import json

    import numpy as np

    from tests.stamps import detection_rows, fits_bytes, stamp_pixels

    (folder / "stamps").mkdir(parents=True)
    rows = []
    for t in range(n_tracklets):
        survey_id = f"B{t:06d}"
        for row in detection_rows(survey_id, seed=t, night=night):
            name = f"stamps/{survey_id}_{row['index']}.fits.gz"
            pixels = stamp_pixels(t * 4 + row["index"], source_flux=float(np.exp(5 + t % 4)))
            (folder / name).write_bytes(fits_bytes(pixels, gz=True))
            rows.append({"night": night, "tracklet": survey_id, **row, "stamp": name})
    (folder / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def files_written(media: Path) -> tuple[int, int]:
    """Files and bytes ingest wrote (the uploads' own archives under bundles/ not counted)."""
    files = [
        p
        for p in media.rglob("*")
        if p.is_file()
        and p.relative_to(media).parts[0] in ("tracklets", "stamps", "pixels", "display")
    ]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracklets", type=int, default=2000, help="tracklets per bundle")
    parser.add_argument("--workers", default="1,2", help="worker counts for the upload path")
    args = parser.parse_args()

    import django

    django.setup()
    import shutil

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bench.workers import cpu_workers, upload_and_wait, zip_bundle
    from classifier.hardware import cpu_summary
    from classifier.stamp_io import read_stamp
    from screening.ingest.bundles import bundle_ingest
    from screening.models import Tracklet
    from screening.review.displays import render_display_png

    call_command("migrate", verbosity=0)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores ({cpu_summary()}), "
        f"{platform.processor() or ''}"
    )
    print(f"database: {connection.vendor}; storage {os.environ.get('MEDIA_STORAGE', 'filesystem')}")
    media = Path(settings.MEDIA_ROOT)
    n = args.tracklets
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        folder = Path(tmp) / "bundle"
        write_survey_bundle(folder, n, "2030-01-01")
        archive = zip_bundle(folder, Path(tmp) / "night.zip")
        mib = archive.stat().st_size / 2**20
        print(f"bundle: {n} tracklets, {4 * n} gzip-FITS stamps, {mib:.0f} MiB zip")

        def fresh() -> None:
            Tracklet.objects.all().delete()
            for sub in ("stamps", "pixels", "display", "bundles"):
                shutil.rmtree(media / sub, ignore_errors=True)

        fresh()
        started = time.perf_counter()
        report = bundle_ingest(path=folder)
        elapsed = time.perf_counter() - started
        assert report.summary["created"] == n, report.summary
        count, size = files_written(media)
        print(
            f"one process, bundle_ingest of the folder : {n / elapsed:6.1f} tracklets/s "
            f"({elapsed:.1f} s); {count / n:.1f} files and {size / n / 1024:.0f} KiB a tracklet"
        )
        stamps = [p.read_bytes() for p in sorted((folder / "stamps").iterdir())[:400]]
        decoded = [read_stamp(d, max_side=settings.STAMP_MAX_SIDE) for d in stamps]
        started = time.perf_counter()
        for stamp in decoded:
            render_display_png(stamp.pixels, saturation=stamp.saturation)
        png_ms = (time.perf_counter() - started) / len(decoded) * 1e3
        per_tracklet = elapsed / n * 1e3
        print(
            f"display PNGs at ingest (as before) would add {4 * png_ms:.1f} ms and 4 files a "
            f"tracklet to its {per_tracklet:.1f} ms: {1e3 / (per_tracklet + 4 * png_ms):.1f} "
            "tracklets/s in one process"
        )
        for count_workers in [int(w) for w in args.workers.split(",")]:
            fresh()
            with cpu_workers(count_workers):
                upload, seconds = upload_and_wait(archive)
            assert upload.summary["created"] == n, (upload.summary, upload.error)
            print(
                f"upload path, {count_workers} cpu worker(s), {upload.n_chunks} chunks   : "
                f"{n / seconds:6.1f} tracklets/s ({seconds:.1f} s from the job's start to its "
                "report, splitting included)"
            )
            for chunk in upload.chunks.order_by("index"):
                print(
                    f"    chunk {chunk.index}: {chunk.tracklets} tracklets, "
                    f"{(chunk.started_at - upload.started_at).total_seconds():5.1f}-"
                    f"{(chunk.finished_at - upload.started_at).total_seconds():5.1f} s"
                )
        fresh()
    print(f"stamps stored under {media} (removed with the benchmark's services)")


if __name__ == "__main__":
    main()

"""Ingest throughput through the night-bundle path: tracklets per second, 4 stamps each.

Run it on PostgreSQL with `./run bench bench/ingest_throughput.py [--tracklets N]`; it migrates the
database it is given, writes a bundle of survey-like gzip FITS stamps (100x100, float32), ingests
it as a directory and as a .zip, and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import zipfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracklets", type=int, default=500, help="tracklets per bundle")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from screening.bundles import bundle_ingest
    from screening.models import Tracklet

    call_command("migrate", verbosity=0)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or ''}")
    print(f"database: {connection.vendor} {connection.settings_dict.get('NAME')}")
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        for label, night in (("directory", "2030-01-01"), ("zip", "2030-01-02")):
            Tracklet.objects.filter(night__date=night).delete()
            folder = Path(tmp) / label
            write_survey_bundle(folder, args.tracklets, night)
            path: Path = folder
            if label == "zip":
                path = Path(tmp) / "night.zip"
                with zipfile.ZipFile(path, "w") as archive:
                    for file in sorted(folder.rglob("*")):
                        archive.write(file, str(file.relative_to(folder)))
            started = time.perf_counter()
            report = bundle_ingest(path=path)
            elapsed = time.perf_counter() - started
            assert report.summary["created"] == args.tracklets, report.summary
            print(
                f"{label:9s}: {args.tracklets} tracklets ({4 * args.tracklets} stamps) in "
                f"{elapsed:.1f} s = {args.tracklets / elapsed:.1f} tracklets/s, "
                f"{4 * args.tracklets / elapsed:.0f} stamps/s"
            )
            Tracklet.objects.filter(night__date=night).delete()
    print(f"stamps stored under {settings.MEDIA_ROOT} (removed with the benchmark's services)")


if __name__ == "__main__":
    main()

"""A whole night end to end: a simulated night ingested as a bundle and scored by one CPU worker.

Run on PostgreSQL and Redis with `./run bench bench/night_end_to_end.py [--tracklets 10000]`.
It migrates the database it is given, registers and activates the newest model under models/,
starts one real Celery worker on the `inference` queue (CPU, solo pool), simulates the night once
(kept under var/bench/ for later runs), then ingests it through the bundle path in this process
while the worker scores what each ingest step commits. Prints the wall time from the start of
the ingest to the last score, its split between ingest and the scoring left after it, and the
worker's peak resident memory.
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracklets", type=int, default=10000, help="tracklets in the night")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Sum

    from bench.scoring_core import checkpoint_path
    from classifier.bundle import simulate_night
    from screening.bundles import bundle_ingest
    from screening.model_registry import model_activate, model_register
    from screening.models import Tracklet
    from tests.processes import peak_memory_bytes, start_celery_worker, stop_process

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        sys.exit("run it with ./run bench: it needs PostgreSQL and Redis")
    call_command("migrate", verbosity=0)
    night = "2026-11-20"
    folder = ROOT / "var" / "bench" / f"night-{args.seed}-{args.tracklets}"
    if not (folder / "manifest.jsonl").exists():
        print(f"simulating the night into {folder} (once)")
        simulate_night(folder, seed=args.seed, night=night, n_tracklets=args.tracklets)
    Tracklet.objects.filter(night__date=night).delete()
    model = model_register(path=checkpoint_path(None))
    model_activate(version=model.version)

    print(f"machine: {platform.node()}, {os.cpu_count()} cores; database {connection.vendor}")
    print(f"model {model.version}; night of {args.tracklets} tracklets from {folder}")
    log = Path(tempfile.mkdtemp(prefix="bench-worker-")) / "worker.log"
    worker = start_celery_worker({**os.environ, "INFERENCE_DEVICE": "cpu"}, log, "cpu")
    try:
        started = time.perf_counter()
        report = bundle_ingest(path=folder)
        ingested = time.perf_counter()
        summary = report.summary
        expected = summary["created"]
        print(f"ingest: {summary}")
        scored = 0
        while scored < expected:
            if time.perf_counter() - started > args.timeout:
                sys.exit(f"timed out with {scored} of {expected} tracklets scored; see {log}")
            if worker.poll() is not None:
                sys.exit(f"the worker stopped; see {log}")
            time.sleep(0.5)
            scored = Tracklet.objects.filter(night__date=night, model_version=model).count()
        done = time.perf_counter()
        peak = peak_memory_bytes(worker.pid)
    finally:
        stop_process(worker)
    rows = Tracklet.objects.filter(night__date=night)
    stamps = rows.aggregate(n=Sum("n_detections"))["n"]
    last = rows.aggregate(t=Max("scored_at"))["t"]
    first_ingest = rows.order_by("id").values_list("created_at", flat=True).first()
    print(f"tracklets {expected}, stamps {stamps}")
    print(
        f"ingest                          : {ingested - started:7.1f} s "
        f"({expected / (ingested - started):.1f} tracklets/s, scoring running alongside)"
    )
    print(f"scoring left after the ingest   : {done - ingested:7.1f} s")
    print(
        f"wall, start of ingest to last score: {done - started:7.1f} s "
        f"(database: first tracklet {first_ingest:%H:%M:%S}, last score {last:%H:%M:%S})"
    )
    print(f"worker throughput over the night: {stamps / (done - started):.0f} stamps/s")
    print(f"worker peak resident memory     : {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()

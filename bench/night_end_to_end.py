"""A whole night end to end: a simulated night uploaded as a bundle, ingested in chunks and
scored by real CPU workers.

Run on PostgreSQL and Redis with `./run bench bench/night_end_to_end.py [--tracklets 10000]
[--workers 2]`. It migrates the database it is given, registers and activates the newest model
under models/, simulates the night once (kept under var/bench/, with its .zip), starts WORKERS
real `cpu` workers (default and inference queues, the cores shared between them), stores the
.zip as an upload (as `POST /api/v1/bundles/` does; the copy is not timed) and waits until every
tracklet is scored. Prints the time from the start of the ingest job to the last score, its
split between ingest and the scoring left after it, the ingest rate, which worker took which
chunks, the precision the workers scored in, their peak resident memory, and the workers' time
by task (from their logs), which says whether ingest or scoring to cut next.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
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
    parser.add_argument("--workers", type=int, default=2, help="cpu workers")
    parser.add_argument("--precision", help="INFERENCE_PRECISION for the workers (default auto)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Sum

    from bench.scoring_core import checkpoint_path
    from bench.workers import cpu_workers, peak_memory, task_seconds, upload_and_wait, zip_bundle
    from classifier.bundle import simulate_night
    from classifier.hardware import cpu_summary
    from screening.models import BundleChunk, Tracklet, WorkerHeartbeat
    from screening.registry.versions import model_activate_and_rescore, model_register

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        sys.exit("run it with ./run bench: it needs PostgreSQL and Redis")
    call_command("migrate", verbosity=0)
    night = "2026-11-20"
    folder = ROOT / "var" / "bench" / f"night-{args.seed}-{args.tracklets}"
    if not (folder / "manifest.jsonl").exists():
        print(f"simulating the night into {folder} (once)")
        simulate_night(folder, seed=args.seed, night=night, n_tracklets=args.tracklets)
    archive = zip_bundle(folder, folder.with_suffix(".zip"))
    Tracklet.objects.filter(night__date=night).delete()
    model = model_register(path=checkpoint_path(None))
    model_activate_and_rescore(version=model.version)

    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores ({cpu_summary()}); "
        f"database {connection.vendor}; storage {os.environ.get('MEDIA_STORAGE', 'filesystem')}"
    )
    print(
        f"model {model.version}; night of {args.tracklets} tracklets, "
        f"{archive.stat().st_size / 2**30:.2f} GiB zip; {args.workers} cpu workers"
    )
    env = {"INFERENCE_PRECISION": args.precision} if args.precision else {}
    with cpu_workers(args.workers, **env) as workers:
        upload, ingest_seconds = upload_and_wait(archive, timeout=args.timeout)
        expected = upload.summary.get("created", 0)
        print(f"ingest report: {upload.summary} ({upload.n_chunks} chunks)")
        if upload.error:
            print(f"ingest error: {upload.error}")
        deadline = time.monotonic() + args.timeout
        while (
            scored := Tracklet.objects.filter(night__date=night, model_version=model).count()
        ) < expected:
            if time.monotonic() > deadline:
                sys.exit(f"timed out with {scored} of {expected} tracklets scored")
            if any(w.poll() is not None for w in workers):
                sys.exit("a worker stopped")
            time.sleep(0.5)
        memory = peak_memory(workers)
        spent = task_seconds(workers)
        precisions = sorted({b.detail.get("precision", "?") for b in WorkerHeartbeat.objects.all()})
    rows = Tracklet.objects.filter(night__date=night)
    stamps = rows.aggregate(n=Sum("n_detections"))["n"]
    last = rows.aggregate(t=Max("scored_at"))["t"]
    wall = (last - upload.started_at).total_seconds()
    chunks = Counter(BundleChunk.objects.filter(upload=upload).values_list("worker", flat=True))
    print(f"tracklets {expected}, stamps {stamps}; workers scored in {', '.join(precisions)}")
    print(f"chunks per worker: {dict(chunks)}")
    print(
        f"ingest (job start to report)         : {ingest_seconds:7.1f} s "
        f"({expected / ingest_seconds:.0f} tracklets/s, scoring running alongside)"
    )
    print(f"scoring left after the ingest        : {wall - ingest_seconds:7.1f} s")
    print(f"wall, start of ingest to last score  : {wall:7.1f} s (target: under 120 s)")
    print(f"scoring throughput over the night    : {stamps / wall:.0f} stamps/s")
    print(f"largest worker peak resident memory  : {memory:.2f} GiB")
    print("workers' time by task (tasks finished by the last score):")
    for name, (count, seconds) in spent.items():
        print(f"  {name:<28} {count:5d} tasks {seconds:8.1f} s")


if __name__ == "__main__":
    main()

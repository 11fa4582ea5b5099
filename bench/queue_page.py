"""Server time of the queue page with 100,000 tracklets (400,000 detections) in PostgreSQL.

Run: `./run bench bench/queue_page.py [--tracklets N]`. It fills a fresh database with one night
of N scored tracklets (4 detections, 4 stamp predictions each, a few thousand verdicts) by COPY,
then requests the queue page of 50 tracklets sorted by score with filters, 30 times each, through
Django's test client, and prints the median and 95th percentile server time and the number of SQL
queries per page, for page sizes 25, 50 and 100 too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")
# as docker-compose.yml and .env.example run the site: database connections kept between requests
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
CLASSES = ["BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET"]


def fill(n_tracklets: int, seed: int = 0) -> str:
    """One night of n scored tracklets, written with COPY; returns the night's date."""
    import numpy as np
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from screening.models import ModelVersion, Night, stamp_classes_text

    rng = np.random.default_rng(seed)
    night = Night.objects.create(date="2030-06-01")
    model = ModelVersion.objects.create(
        version="f" * 64, checkpoint="-", classes=CLASSES, threshold=0.8, is_active=True
    )
    reviewer = User.objects.create_user("bench-reviewer", password="bench-password-123")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    scores = np.where(
        rng.random(n_tracklets) < 0.9, rng.beta(0.6, 6, n_tracklets), rng.beta(6, 0.6, n_tracklets)
    )
    top = rng.integers(0, len(CLASSES), n_tracklets * 4)  # each stamp's top class
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY screening_tracklet (id, night_id, survey_id, status, score, model_version_id,"
            " content_sha256, n_detections, rate_deg_per_day, position_angle_deg, mean_mag,"
            " pixels, created_at, scored_at, n_reviews, reviews_wanted, digest2_scores,"
            " digest2_version, digest2_problem, unlike_training, stamp_classes) FROM STDIN"
        ) as copy:
            for i in range(n_tracklets):
                copy.write_row(
                    (
                        i + 1,
                        night.pk,
                        f"T{i:07d}",
                        "scored",
                        float(scores[i]),
                        model.pk,
                        "0" * 64,
                        4,
                        float(rng.uniform(0.05, 20)),
                        float(rng.uniform(0, 360)),
                        float(rng.uniform(14, 20)),
                        f"pixels/{i}.npy",
                        "2030-06-01T00:00:00Z",
                        "2030-06-01T00:00:00Z",
                        0,
                        1,
                        "{}",
                        "",
                        "",
                        "",
                        stamp_classes_text(CLASSES[k] for k in top[4 * i : 4 * i + 4]),
                    )
                )
        with cursor.copy(
            "COPY screening_detection (id, tracklet_id, index, mjd, ra, dec, mag, x, y, stamp,"
            " stamp_format, stamp_sha256, stamp_width, stamp_height, display, mag_flag, station,"
            " band, time_ref) FROM STDIN"
        ) as copy:
            for i in range(n_tracklets * 4):
                copy.write_row(
                    (
                        i + 1,
                        i // 4 + 1,
                        i % 4,
                        63000 + (i % 4) * 0.01,
                        10.0,
                        5.0,
                        19.0,
                        100.0,
                        100.0,
                        f"stamps/{i}.fits",
                        "fits",
                        "0" * 64,
                        100,
                        100,
                        f"display/{i}.png",
                        "",
                        "",
                        "",
                        "mid",
                    )
                )
        with cursor.copy(
            "COPY screening_stampprediction (detection_id, model_version_id, probabilities,"
            " top_class, top_probability, created_at) FROM STDIN"
        ) as copy:
            for i in range(n_tracklets * 4):
                probs = {c: (0.79 if k == top[i] else 0.03) for k, c in enumerate(CLASSES)}
                copy.write_row(
                    (
                        i + 1,
                        model.pk,
                        json.dumps(probs),
                        CLASSES[top[i]],
                        0.79,
                        "2030-06-01T00:00:00Z",
                    )
                )
        judged = rng.choice(n_tracklets, size=n_tracklets // 20, replace=False)
        with cursor.copy(
            "COPY screening_verdict (id, tracklet_id, reviewer_id, value, score_shown, created_at,"
            " blind) FROM STDIN"
        ) as copy:
            for n, i in enumerate(judged, start=1):
                copy.write_row(
                    (
                        n,
                        int(i) + 1,
                        reviewer.pk,
                        "bogus",
                        float(scores[i]),
                        "2030-06-01T01:00:00Z",
                        False,
                    )
                )
        cursor.execute(
            "INSERT INTO screening_currentverdict (tracklet_id, reviewer_id,"
            " verdict_id, value) SELECT tracklet_id, reviewer_id, id, value"
            " FROM screening_verdict"
        )
        cursor.execute(
            "UPDATE screening_tracklet SET status = 'reviewed', n_reviews = 1 WHERE id IN "
            "(SELECT tracklet_id FROM screening_verdict)"
        )
        for table in ("tracklet", "detection", "stampprediction", "verdict"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('screening_{table}', 'id'),"
                f" (SELECT MAX(id) FROM screening_{table}))"
            )
    from screening.nights import night_counts_refresh

    night_counts_refresh()  # the counts ingest, scoring and verdicts keep, for the COPY's rows
    # The steady state a night's tables reach under autovacuum, before timing: vacuumed (the
    # visibility map that index-only scans read), analysed, and the bulk load's dirty pages
    # written out, so that no autovacuum or checkpoint of the load runs during the requests.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return night.date if isinstance(night.date, str) else night.date.isoformat()


def measure(client, url: str, repeats: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return times, len(captured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracklets", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--profile", action="store_true", help="also print where one page's time goes"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    date = fill(args.tracklets)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores; database: {connection.vendor}, "
        f"connections kept {os.environ['DATABASE_CONN_MAX_AGE']} s (DATABASE_CONN_MAX_AGE)"
    )
    print(
        f"filled {args.tracklets} tracklets, {4 * args.tracklets} detections and predictions "
        f"in {time.perf_counter() - started:.0f} s"
    )
    # the app as gunicorn and runserver load it (screening/wsgi.py: every view imported, then
    # what loading made frozen out of garbage collection), after the fill's own objects are gone
    import screening.wsgi  # noqa: F401

    client = Client(SERVER_NAME="localhost")
    client.login(username="bench-reviewer", password="bench-password-123")
    cases = {
        "to review, score >= 0.5": "status=to_review&score_min=0.5",
        "all, lowest first, class AST": "status=all&order=asc&stamp_class=AST",
        "to review, hide judged": "status=to_review&hide_judged=1",
        "auto-rejected": "status=auto_rejected",
    }
    for name, query in cases.items():
        counts = {}
        for size in (25, 50, 100):
            times, queries = measure(
                client,
                f"/nights/{date}/?{query}&per_page={size}",
                args.repeats if size == 50 else 3,
            )
            counts[size] = queries
            if size == 50:
                p95 = statistics.quantiles(times, n=20)[-1]
                line = (
                    f"{name:32s} 50/page: median {statistics.median(times):6.1f} ms, "
                    f"p95 {p95:6.1f} ms"
                )
        print(f"{line}, SQL queries per page (25/50/100): {counts[25]}/{counts[50]}/{counts[100]}")
    times, queries = measure(client, "/", args.repeats)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(
        f"{'home page (the nights list)':32s}          median {statistics.median(times):6.1f} ms, "
        f"p95 {p95:6.1f} ms, SQL queries {queries} (each night's counts kept on its row)"
    )
    if args.profile:
        profile(client, f"/nights/{date}/?status=to_review&score_min=0.5&per_page=50")


def profile(client, url: str) -> None:
    """One page under cProfile, and its SQL queries with their times."""
    import cProfile
    import pstats

    from django.db import connection

    timed: list[tuple[float, str]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append(((time.perf_counter() - started) * 1000, sql))

    client.get(url)
    for _ in range(10):
        timed.clear()
        started = time.perf_counter()
        with connection.execute_wrapper(timer):
            client.get(url)
        total = (time.perf_counter() - started) * 1000
    in_sql = sum(ms for ms, _ in timed)
    print(f"one page: {total:.1f} ms, of which {in_sql:.1f} ms in {len(timed)} SQL queries:")
    for ms, sql in timed:
        print(f"{ms:7.2f} ms  {sql[:150]}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()

"""Label export: 100,000 stamp labels streamed as CSV from PostgreSQL, time and memory.

Run: `./run bench bench/export_labels.py [--labels N]`. It fills a fresh database with a night
of N/4 tracklets (N detections) by COPY, gives every detection a stamp label and a quarter of
the tracklets a verdict, then streams `GET /api/v1/export/labels/?format=csv` (and the verdicts)
through Django's test client with a consumer's token, reading the body chunk by chunk as a
client would. Prints rows, bytes, seconds, and the peak Python memory while streaming, for a
tenth of the rows and for all of them: flat memory means the two peaks are alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")


def add_labels(n_detections: int) -> None:
    """One stamp label per detection; written with COPY."""
    from django.contrib.auth.models import User
    from django.db import connection

    from screening.models import ModelVersion, StampClass

    reviewer = User.objects.get(username="bench-reviewer")
    model = ModelVersion.objects.get()
    classes = list(StampClass.objects.values_list("id", "name"))
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY screening_stamplabel (detection_id, reviewer_id, stamp_class_id, class_shown,"
            " probability_shown, model_version_shown_id, created_at) FROM STDIN"
        ) as copy:
            for i in range(n_detections):
                class_id, name = classes[i % len(classes)]
                copy.write_row(
                    (i + 1, reviewer.pk, class_id, name, 0.79, model.pk, "2030-06-01T02:00:00Z")
                )
        cursor.execute("ANALYZE")


def download(client, url: str) -> tuple[int, int]:
    """Read a streamed CSV chunk by chunk as a client would: (rows, bytes)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return lines - 1, size


def stream(client, url: str) -> tuple[int, int, float, int]:
    """Rows, bytes, seconds (untraced) and peak traced Python memory (a second, traced run)."""
    started = time.perf_counter()
    rows, size = download(client, url)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    download(client, url)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rows, size, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, default=100_000, help="stamp labels to export")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from bench.queue_page import fill
    from tests.conftest import make_user

    if connection.vendor != "postgresql":
        sys.exit("run it with ./run bench: it needs PostgreSQL")
    call_command("migrate", verbosity=0)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; database {connection.vendor}")
    started = time.perf_counter()
    night = fill(args.labels // 4)
    add_labels(args.labels // 4 * 4)
    print(
        f"filled {args.labels // 4} tracklets and {args.labels // 4 * 4} labels "
        f"in {time.perf_counter() - started:.0f} s"
    )
    client = APIClient(SERVER_NAME="localhost")
    token = Token.objects.create(user=make_user("bench-scientist", "consumer"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    # an eighth of the rows (one class of eight), then all of them
    for label, url in (
        ("labels, one class", "/api/v1/export/labels/?format=csv&stamp_class=AST"),
        ("labels, all", "/api/v1/export/labels/?format=csv"),
        ("verdicts, all", f"/api/v1/export/verdicts/?format=csv&night={night}"),
    ):
        rows, size, elapsed, peak = stream(client, url)
        print(
            f"{label:18s}: {rows:7d} rows, {size / 2**20:6.1f} MiB in {elapsed:5.2f} s "
            f"({rows / elapsed:8.0f} rows/s); peak Python memory while streaming "
            f"{peak / 2**20:5.1f} MiB"
        )


if __name__ == "__main__":
    main()

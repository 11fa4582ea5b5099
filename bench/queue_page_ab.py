"""The queue page of two versions of the code side by side, request by request.

Run: `./run bench bench/queue_page_ab.py --before <git revision> [--tracklets N]`.

This VM's speed moves by up to 2x from one minute to the next, so two runs of
bench/queue_page.py one after the other compare the machine as much as the code. Here each
version runs in its own process (its own source tree: the revision checked out in a temporary
worktree, and this one), on its own database of the same night (bench/queue_page.py's fill),
and the two answer the same requests in turn, idle while the other works: whatever the
machine does at a moment, both see it. Printed: each view's median and p95 for each version and
their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "to review, score >= 0.5": "status=to_review&score_min=0.5",
    "all, lowest first, class AST": "status=all&order=asc&stamp_class=AST",
    "to review, hide judged": "status=to_review&hide_judged=1",
    "auto-rejected": "status=auto_rejected",
}


def worker(tree: str, tracklets: int) -> None:
    """One version: fill its database, then answer `path` lines with the request's ms."""
    sys.path.insert(0, tree)
    os.chdir(tree)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(Path(tree) / "bench"))
    import queue_page  # this version's own fill

    date = queue_page.fill(tracklets)
    import screening.wsgi  # noqa: F401  (the app as this version's server loads it)

    client = Client(SERVER_NAME="localhost")
    client.login(username="bench-reviewer", password="bench-password-123")
    print(json.dumps({"date": date}), flush=True)
    for line in sys.stdin:
        started = time.perf_counter()
        response = client.get(line.strip())
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        print(f"{elapsed:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", help="git revision to compare against (required)")
    parser.add_argument("--tracklets", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tracklets)
        return
    if not args.before:
        parser.error("--before REVISION is required")

    import psycopg

    url = os.environ["DATABASE_URL"]
    server = url.rsplit("/", 1)[0]
    revision = subprocess.run(
        ["git", "rev-parse", "--short", args.before], cwd=ROOT, check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    here = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True).stdout
    with tempfile.TemporaryDirectory(prefix="queue-page-ab-") as folder:
        before_tree = Path(folder) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(before_tree), revision],
            cwd=ROOT, check=True,
        )  # fmt: skip
        versions = {
            f"before ({revision})": before_tree,
            f"this tree ({here}{'+' if dirty else ''})": ROOT,
        }
        workers = {}
        try:
            for n, (name, tree) in enumerate(versions.items()):
                database = f"queue_page_ab_{n}"
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"DROP DATABASE IF EXISTS {database}")
                    connection.execute(f"CREATE DATABASE {database}")
                env = dict(os.environ, DATABASE_URL=f"{server}/{database}")
                process = subprocess.Popen(
                    [sys.executable, str(ROOT / "bench" / "queue_page_ab.py"),
                     "--worker", str(tree), "--tracklets", str(args.tracklets)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
                )  # fmt: skip
                date = json.loads(process.stdout.readline())["date"]  # filled, one at a time
                workers[name] = (process, date)
                print(f"{name}: filled {args.tracklets} tracklets", flush=True)

            def ask(name: str, path: str) -> float:
                process, _ = workers[name]
                process.stdin.write(path + "\n")
                process.stdin.flush()
                return float(process.stdout.readline())

            names = list(workers)
            print(
                f"{os.cpu_count()} cores; {args.repeats} requests a view and version, the "
                "versions in turn (which goes first alternates)\n"
                f"{'view':32s} " + " ".join(f"{n:>26s}" for n in names) + "   ratio (p50)"
            )
            for view, query in CASES.items():
                times: dict[str, list[float]] = {n: [] for n in names}
                for name in names:  # warm
                    ask(name, f"/nights/{workers[name][1]}/?{query}&per_page=50")
                for i in range(args.repeats):
                    for name in names if i % 2 == 0 else names[::-1]:
                        times[name].append(
                            ask(name, f"/nights/{workers[name][1]}/?{query}&per_page=50")
                        )
                cells = []
                for name in names:
                    p95 = statistics.quantiles(times[name], n=20)[-1]
                    cells.append(f"p50 {statistics.median(times[name]):5.1f}, p95 {p95:5.1f} ms")
                ratio = statistics.median(times[names[1]]) / statistics.median(times[names[0]])
                print(f"{view:32s} " + " ".join(f"{c:>26s}" for c in cells) + f"   {ratio:.2f}")
        finally:
            for process, _ in workers.values():
                process.stdin.close()
                process.wait(timeout=60)
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, check=False
            )


if __name__ == "__main__":
    main()

"""Benchmarks' helpers: real `cpu` workers (the demo's and docker-compose's command) and a bundle
uploaded as the API stores it, ingested by those workers in chunks."""

from __future__ import annotations

import os
import re
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

from tests.processes import peak_memory_bytes, start_celery_worker, stop_process


def zip_bundle(folder: Path, target: Path) -> Path:
    """A bundle folder as one .zip (stored: FITS stamps do not shrink much), made once."""
    if target.exists():
        return target
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != "truth.jsonl":
                archive.write(path, str(path.relative_to(folder)))
    partial.rename(target)
    return target


@contextmanager
def cpu_workers(count: int, **env: str):
    """`count` real cpu workers (default and inference queues), each with its share of the
    cores for scoring; yields them, stops them after. Their logs go to a temporary folder."""
    cores = os.cpu_count() or 1
    threads = str(max(1, cores // count))
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    workers = []
    try:
        for i in range(count):
            worker_env = {**os.environ, "INFERENCE_THREADS": threads, **env}
            log = folder / f"worker-{i}.log"
            workers.append(start_celery_worker(worker_env, log, "cpu"))
            workers[-1].log_path = log
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                stop_process(worker)


_SUCCEEDED = re.compile(r"Task (\S+?)\[[^\]]+\] succeeded in ([0-9.]+)s")


def task_seconds(workers) -> dict[str, tuple[int, float]]:
    """(tasks, seconds) each task name took in these workers, from their logs (Celery's
    "succeeded in" lines), the longest first: where the workers' time went."""
    totals: dict[str, list] = {}
    for worker in workers:
        for name, seconds in _SUCCEEDED.findall(worker.log_path.read_text(errors="replace")):
            entry = totals.setdefault(name.rsplit(".", 1)[-1], [0, 0.0])
            entry[0] += 1
            entry[1] += float(seconds)
    ranked = sorted(totals.items(), key=lambda item: -item[1][1])
    return {name: (count, seconds) for name, (count, seconds) in ranked}


def peak_memory(workers) -> float:
    """The largest peak resident memory (GiB) of the workers and their pool children."""
    return max(peak_memory_bytes(w.pid) for w in workers) / 2**30


def upload_and_wait(archive: Path, *, timeout: float = 1800, user=None):
    """Store `archive` as an upload (as POST /api/v1/bundles/ does) and wait for its report.

    Returns (upload row, seconds from the job's start to its report). The copy into storage
    (the HTTP upload) is not counted."""
    from django.core.files import File

    from screening.ingest.uploads import bundle_upload_create
    from screening.models import JobStatus

    with open(archive, "rb") as handle:
        upload = bundle_upload_create(file=File(handle, name=archive.name), user=user)
    deadline = time.monotonic() + timeout
    while True:
        upload.refresh_from_db()
        if upload.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the upload did not finish in {timeout} s: {upload.status}")
        time.sleep(0.2)
    return upload, (upload.finished_at - upload.started_at).total_seconds()

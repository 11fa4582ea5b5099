"""The Celery workers, defined once: `./run demo`, `docker-compose.yml` and the tests start them
with the command built here, so the pool, queues and concurrency cannot drift apart.

    python -m screening.ops.workers ROLE [--beat] [more celery worker options]

Roles:

- ``cpu``: the ``default`` queue (bundle ingest, housekeeping) and ``inference`` (scoring on the
  CPU), in a prefork pool of one child, so a task's hard time limit holds and a crashed child is
  replaced.
- ``training``: the ``training`` queue, in the solo pool. A retraining run simulates its data in
  parallel processes; a prefork child is a daemon and may not have children, the solo worker's
  own process may. One run at a time, and it never holds up scoring.
- ``gpu``: ``inference`` only, one child, one task prefetched, for a machine with a GPU.

The demo runs ``cpu`` (with the beat embedded) and ``training``; docker-compose runs ``cpu``,
``training`` and ``gpu`` as the services ``worker``, ``training-worker`` and ``gpu-worker``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# NumPy's OpenBLAS starts a thread per core and keeps them spinning after each call: in a
# scoring worker, whose NumPy calls are small (a tracklet's motion fit), they took about 30%
# of another core, the core the next worker scores on (measured on the 2-core VM). The workers
# that score and ingest run them on one thread; the network's own threads are set apart
# (INFERENCE_THREADS). An operator's own value in the environment is kept.
ONE_BLAS_THREAD = (("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"))


@dataclass(frozen=True)
class WorkerRole:
    queues: tuple[str, ...]
    pool: str
    concurrency: int
    options: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()  # defaults set before the worker starts


ROLES: dict[str, WorkerRole] = {
    "cpu": WorkerRole(
        queues=("default", "inference"), pool="prefork", concurrency=1, environment=ONE_BLAS_THREAD
    ),
    "training": WorkerRole(queues=("training",), pool="solo", concurrency=1),
    "gpu": WorkerRole(
        queues=("inference",),
        pool="prefork",
        concurrency=1,
        options=("--prefetch-multiplier", "1"),
        environment=ONE_BLAS_THREAD,
    ),
}


def worker_argv(role: str, *extra: str, node: str | None = None) -> list[str]:
    """`celery worker` arguments (after the program name) for a role, then `extra`."""
    try:
        spec = ROLES[role]
    except KeyError:
        raise ValueError(f"unknown worker role {role!r}; one of {', '.join(ROLES)}") from None
    return [
        "-A",
        "screening",
        "worker",
        "-Q",
        ",".join(spec.queues),
        "--pool",
        spec.pool,
        "--concurrency",
        str(spec.concurrency),
        *spec.options,
        "-n",
        node or f"{role}@%h",
        "--loglevel",
        "INFO",
        *extra,
    ]


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ROLES:
        sys.exit(f"usage: python -m screening.ops.workers {{{','.join(ROLES)}}} [celery options]")
    command = [sys.executable, "-m", "celery", *worker_argv(argv[0], *argv[1:])]
    os.environ["WORKER_ROLE"] = argv[0]  # for its heartbeat (screening/ops/heartbeat.py)
    for name, value in ROLES[argv[0]].environment:
        os.environ.setdefault(name, value)
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main(sys.argv[1:])

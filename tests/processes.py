"""Real worker processes for tests and benchmarks (no pytest here: benchmarks import it too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_celery_worker(env: dict[str, str], log: Path, role: str = "cpu") -> subprocess.Popen:
    """Start one worker of a role exactly as the demo and docker-compose do; return once ready.

    The command is `python -m screening.ops.workers ROLE` (screening/ops/workers.py), with only a
    node name of the test's own. It runs in a session of its own, so `kill_worker` can take down its
    pool's children with it, as a lost machine or container would.
    """
    node = f"test-{role}-{os.getpid()}-{time.monotonic_ns()}@%h"
    with open(log, "wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "screening.ops.workers", role, "-n", node],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            kill_worker(worker)
            raise RuntimeError(f"the {role} worker did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return worker


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL a worker and its pool's children at once (a machine or container lost)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def stop_process(process: subprocess.Popen) -> None:
    """Stop a process (a worker: warm shutdown of it and its children); kill it if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait(timeout=10)


def peak_memory_bytes(pid: int) -> int:
    """Peak resident memory of a live process or, for a worker, of the largest of it and its
    pool's children (VmHWM in /proc; Linux)."""
    peaks = []
    for candidate in [pid, *_children(pid)]:
        for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) * 1024)
    if not peaks:
        raise RuntimeError(f"no VmHWM for process {pid}")
    return max(peaks)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []

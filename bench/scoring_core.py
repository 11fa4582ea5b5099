"""Scoring core: the naive path against the worker's batched path, on the same stamps, one run.

Naive: what a user would write first, eager float32, one tracklet's stamps per forward pass.
Batched: the worker's path, all stamps of many tracklets through the ICN at once, then the TCN.
Prints stamps per second for both and the ratio. Run: `.venv/bin/python bench/scoring_core.py`
(`--device cuda` on a GPU machine; `--checkpoint PATH`, default the newest under models/, else
an untrained model of the same architecture, which costs the same to run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def checkpoint_path(given: str | None) -> Path:
    if given:
        return Path(given)
    found = sorted((ROOT / "models").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    if found:
        return found[-1]
    from tests.untrained_model import make_checkpoint

    return make_checkpoint(Path(tempfile.mkdtemp(prefix="bench-model-")), seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracklets", type=int, default=300, help="tracklets of 4 stamps")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--checkpoint", help="model checkpoint (.pt)")
    args = parser.parse_args()

    import torch

    from classifier.inference import load_model

    path = checkpoint_path(args.checkpoint)
    model = load_model(path, device=args.device)
    rng = np.random.default_rng(0)
    stamps = rng.normal(0, 10, (args.tracklets * 4, 100, 100)).astype(np.float32)
    stamps[:, :, :5] = np.nan  # a chip edge, as real stamps have
    lengths = [4] * args.tracklets
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {model.device}"
        + (f" ({torch.cuda.get_device_name()})" if model.device.startswith("cuda") else "")
    )
    print(f"model {path.name}; {len(stamps)} stamps in {args.tracklets} tracklets")

    def sync() -> None:
        if model.device.startswith("cuda"):
            torch.cuda.synchronize()

    model.score(stamps[:64], [4] * 16)  # warm-up
    sync()
    started = time.perf_counter()
    naive = [model.score(stamps[i * 4 : i * 4 + 4], [4])[1] for i in range(args.tracklets)]
    sync()
    naive_s = time.perf_counter() - started
    started = time.perf_counter()
    _, batched = model.score(stamps, lengths)
    sync()
    batched_s = time.perf_counter() - started
    diff = float(np.max(np.abs(np.concatenate(naive) - batched)))
    print(f"naive   (eager fp32, one tracklet per pass): {len(stamps) / naive_s:8.0f} stamps/s")
    print(f"batched (worker path)                      : {len(stamps) / batched_s:8.0f} stamps/s")
    print(f"ratio batched/naive: {naive_s / batched_s:.2f}; largest score difference {diff:.2e}")


if __name__ == "__main__":
    main()

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


def synthetic_meta(lengths: list[int]) -> np.ndarray:
    """(N, 6) mjd, ra, dec, mag, x, y of movers at 1 degree/day, 15 minutes apart."""
    rows = []
    for t, n in enumerate(lengths):
        for i in range(n):
            dt = i * 15 / 1440
            rows.append(
                [
                    61000.3 + dt,
                    40.0 + t * 1e-3 + dt * 0.8,
                    -5.0 + dt * 0.6,
                    19.0,
                    5000.0 + i * 20,
                    3000.0 + i * 15,
                ]
            )
    return np.array(rows)


def naive_scores(model, stamps: np.ndarray, lengths: list[int], meta: np.ndarray) -> np.ndarray:
    """What a user would write first: per tracklet, prepare, eager float32 ICN, then the TCN."""
    import torch

    from classifier.preprocess import prepare

    out, start = [], 0
    with torch.no_grad():
        for n in lengths:
            part = stamps[start : start + n]
            images = torch.from_numpy(prepare(part, model.preprocessing))
            logits = model.icn(images.unsqueeze(1).to(model.device))
            probs = torch.softmax(logits, dim=1).cpu().numpy()
            cues = model.cues(meta[start : start + n], part, [n])
            out.append(model.tracklet_scores(probs, [n], cues))
            start += n
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracklets", type=int, default=300, help="tracklets of 4 stamps")
    parser.add_argument(
        "--naive-tracklets",
        type=int,
        help="tracklets for the naive path (default: all; the rates are per stamp either way)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--checkpoint", help="model checkpoint (.pt)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the batched path")
    parser.add_argument("--batch-stamps", type=int, help="stamps per ICN pass (batched path)")
    parser.add_argument("--repeat", type=int, default=2, help="batched runs; the best is shown")
    args = parser.parse_args()

    import torch

    from classifier.inference import Runtime, load_model

    path = checkpoint_path(args.checkpoint)
    runtime = Runtime.for_device(args.device, compile=args.compile, batch_stamps=args.batch_stamps)
    model = load_model(path, runtime=runtime)
    reference = load_model(path, runtime=Runtime.reference(runtime.device))
    rng = np.random.default_rng(0)
    stamps = rng.normal(0, 10, (args.tracklets * 4, 100, 100)).astype(np.float32)
    stamps[:, :, :5] = np.nan  # a chip edge, as real stamps have
    yy, xx = np.mgrid[:100, :100]
    stamps[::2] += 60 * np.exp(-((xx - 49.5) ** 2 + (yy - 49.5) ** 2) / 5.0)  # sources
    lengths = [4] * args.tracklets
    meta = synthetic_meta(lengths)
    naive_n = min(args.naive_tracklets or args.tracklets, args.tracklets)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {model.device}"
        + (f" ({torch.cuda.get_device_name()})" if runtime.is_cuda else "")
    )
    print(
        f"model {path.name}; {len(stamps)} stamps in {args.tracklets} tracklets; "
        f"batched path: {runtime}"
    )

    def sync() -> None:
        if runtime.is_cuda:
            torch.cuda.synchronize()

    naive_scores(reference, stamps[:16], [4] * 4, meta[:16])  # warm-up
    model.score(stamps, lengths, meta)  # warm-up (and compilation, where asked)
    sync()
    started = time.perf_counter()
    naive = naive_scores(reference, stamps[: naive_n * 4], lengths[:naive_n], meta)
    sync()
    naive_rate = naive_n * 4 / (time.perf_counter() - started)
    batched_rate = 0.0
    for _ in range(args.repeat):
        started = time.perf_counter()
        probs, batched = model.score(stamps, lengths, meta)
        sync()
        batched_rate = max(batched_rate, len(stamps) / (time.perf_counter() - started))
    diff = float(np.max(np.abs(naive - batched[:naive_n])))
    print(
        f"naive   (eager fp32, one tracklet per pass): {naive_rate:9.0f} stamps/s "
        f"({naive_n * 4} stamps)"
    )
    print(
        f"batched (the workers' path)                : {batched_rate:9.0f} stamps/s "
        f"(best of {args.repeat})"
    )
    print(
        f"ratio batched/naive: {batched_rate / naive_rate:.2f}; largest score difference {diff:.2e}"
    )


if __name__ == "__main__":
    main()

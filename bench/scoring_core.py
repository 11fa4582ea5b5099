"""Scoring core: the naive path against the worker's batched path, on the same stamps, one run.

Naive: what a user would write first, eager float32, one tracklet's stamps per forward pass.
Batched: the worker's path, all stamps of many tracklets through the ICN at once, then the TCN,
in every precision this machine runs fast (fp32; bf16 with AVX-512 bf16 / AMX or on a GPU; int8
with VNNI; `--compile` adds the compiled path). Prints stamps per second of each (whole scoring
and the ICN alone), the ratio to naive, the ICN's share of what the machine reaches on a large
matrix product in that precision, and each path's largest score difference from the eager
float32 reference against its tolerance. Run: `.venv/bin/python bench/scoring_core.py`
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
from dataclasses import replace
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


def icn_gflop_per_stamp(model) -> float:
    """Floating-point operations of one ICN forward pass per stamp, counted by PyTorch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    crop = model.preprocessing.crop
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.icn(torch.zeros(8, 1, crop, crop, device=model.device))
    return counter.get_total_flops() / 8 / 1e9


def gemm_peak_gflops(precision: str, device: str) -> float:
    """What this machine reaches on a large matrix product (4096 square) in a precision: the
    practical peak each path's share is measured against (int8: torch._int_mm, int32 sums)."""
    import torch

    n = 4096
    if precision == "int8":
        a = torch.randint(-100, 100, (n, n), dtype=torch.int8, device=device)
        b = torch.randint(-100, 100, (n, n), dtype=torch.int8, device=device)
        product = torch._int_mm
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        product = torch.mm
    product(a, b)  # warm-up
    best = 0.0
    for _ in range(3):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        product(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


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
    parser.add_argument("--compile", action="store_true", help="also time the compiled path")
    parser.add_argument("--batch-stamps", type=int, help="stamps per ICN pass (batched path)")
    parser.add_argument("--repeat", type=int, default=2, help="batched runs; the best is shown")
    args = parser.parse_args()

    import torch

    from classifier.hardware import cpu_has_bf16, cpu_has_int8, cpu_summary, inference_precision
    from classifier.inference import AGREEMENT, Runtime, load_model

    path = checkpoint_path(args.checkpoint)
    base = Runtime.for_device(args.device, batch_stamps=args.batch_stamps)
    reference = load_model(path, runtime=Runtime.reference(base.device))
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
        f"{torch.get_num_threads()} threads, device {base.device}"
        + (f" ({torch.cuda.get_device_name()})" if base.is_cuda else f"; CPU: {cpu_summary()}")
    )
    chosen = inference_precision(base.device)
    print(f"model {path.name}; {len(stamps)} stamps in {args.tracklets} tracklets")
    print(f"the workers' precision on this machine (classifier.hardware): {chosen}")

    def sync() -> None:
        if base.is_cuda:
            torch.cuda.synchronize()

    naive_scores(reference, stamps[:16], [4] * 4, meta[:16])  # warm-up
    started = time.perf_counter()
    naive = naive_scores(reference, stamps[: naive_n * 4], lengths[:naive_n], meta)
    naive_rate = naive_n * 4 / (time.perf_counter() - started)
    ref_probs, ref_scores = reference.score(stamps, lengths, meta)
    print(
        f"naive (eager fp32, one tracklet per pass): {naive_rate:8.0f} stamps/s "
        f"({naive_n * 4} stamps)"
    )
    precisions = ["fp32"]
    if base.is_cuda or cpu_has_bf16():
        precisions.append("bf16")
    if not base.is_cuda and cpu_has_int8():
        precisions.append("int8")
    paths = [(p, False) for p in precisions] + ([(chosen, True)] if args.compile else [])
    gflop = icn_gflop_per_stamp(reference)
    print(f"ICN: {gflop:.3f} GFLOP a stamp ({reference.preprocessing.crop} px square input)")
    print(
        "path                 stamps/s  x naive  ICN alone/s  ICN GFLOP/s  share of GEMM peak"
        "  max |score diff|  flips  tolerance"
    )
    for precision, compiled in paths:
        runtime = replace(base, precision=precision, compile=compiled)
        model = load_model(path, runtime=runtime)
        model.score(stamps[:256], [4] * 64, meta[:256])  # warm-up (and compilation)
        sync()
        rate = 0.0
        for _ in range(args.repeat):
            started = time.perf_counter()
            _probs, scores = model.score(stamps, lengths, meta)
            sync()
            rate = max(rate, len(stamps) / (time.perf_counter() - started))
        images = torch.rand(
            len(stamps),
            reference.preprocessing.crop,
            reference.preprocessing.crop,
            device=model.device,
        )
        with torch.inference_mode():
            icn_rate = 0.0
            for _ in range(args.repeat):
                started = time.perf_counter()
                for start in range(0, len(images), runtime.batch_stamps):
                    model._icn_probabilities(images[start : start + runtime.batch_stamps])
                sync()
                icn_rate = max(icn_rate, len(images) / (time.perf_counter() - started))
        peak = gemm_peak_gflops(precision, model.device)
        diff = float(np.max(np.abs(scores - ref_scores)))
        flips = int((model.accepts(scores) != reference.accepts(ref_scores)).sum())
        name = precision + (" compiled" if compiled else "") + (" *" if precision == chosen else "")
        print(
            f"{name:<20} {rate:9.0f} {rate / naive_rate:8.2f} {icn_rate:12.0f} "
            f"{icn_rate * gflop:12.1f} {icn_rate * gflop / peak:10.0%} of {peak:5.0f}"
            f"  {diff:16.4f} {flips:6d}  {AGREEMENT[precision]['score']}"
        )
    naive_diff = float(np.max(np.abs(naive - ref_scores[:naive_n])))
    print(f"largest naive/reference score difference {naive_diff:.2e}")
    print(
        "* the precision the workers pick here. GEMM peak: a 4096x4096 product in that precision "
        "(GFLOP/s; int8: GOP/s); ICN GFLOP/s counts its operations as torch.utils.flop_counter "
        "does, so a share can pass 100% where convolutions run faster than that product"
    )


if __name__ == "__main__":
    main()

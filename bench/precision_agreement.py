"""Reduced precision against float32 on simulated tracklets: how far it moves what a reviewer
sees, whether any verdict moves, and what it saves once the tracklets near a verdict are scored
again in float32.

    .venv/bin/python bench/precision_agreement.py [--model PATH] [--tracklets 600]
        [--precisions bf16,int8] [--cache var/cache/bench-novelty]

The tracklets are bench/novelty.py's nominal set (the same cache: the first `--tracklets` real
and as many bogus ones of its 2,000 + 2,000). For each precision asked for (int8 and bf16 run on
any CPU; bf16 is emulated, and slow, without AVX-512 bf16 or AMX), against the model in float32
on the same machine:

- the largest shift of a stamp's probability, of a tracklet's score and of its logit, and of a
  stamp's novelty distance (in units of the limit), against `classifier.inference.AGREEMENT`;
- how many tracklets lie in the band that is scored again in float32 (the logit near the
  threshold's; a stamp's distance near the limit below the threshold), and how many verdicts
  (kept or auto-rejected, and the unlike-training flags) differ from float32's with and without
  that second pass;
- seconds per 1,000 tracklets, warm, of float32, of the precision alone and with the pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from novelty import cached, simulate  # noqa: E402

from classifier.hardware import cpu_summary  # noqa: E402
from classifier.inference import AGREEMENT, load_model, logit  # noqa: E402
from classifier.simulate import SimConfig  # noqa: E402


def subset(data: dict, n: int) -> dict:
    """The first n real and n bogus tracklets of a set."""
    real = np.flatnonzero(data["real"])[:n]
    bogus = np.flatnonzero(~data["real"])[:n]
    which = np.concatenate([real, bogus])
    starts = np.concatenate([[0], np.cumsum(data["lengths"])])
    rows = np.concatenate([np.arange(starts[t], starts[t + 1]) for t in which])
    return {
        "stamps": data["stamps"][rows],
        "meta": data["meta"][rows],
        "lengths": data["lengths"][which],
        "real": data["real"][which],
    }


def timed(model, data: dict):
    started = time.perf_counter()
    out = model.assess(data["stamps"], data["lengths"], data["meta"])
    return out, time.perf_counter() - started


def kept(model, out) -> np.ndarray:
    """Kept for review: a score at the threshold or over it (the motion rule's cap included),
    or unlike training."""
    return model.accepts(out.scores) | np.array([bool(r) for r in out.unlike_training])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=ROOT / "models" / "screening-bf73f2326bcaa1d9.pt"
    )
    parser.add_argument("--tracklets", type=int, default=600, help="real, and as many bogus")
    parser.add_argument("--precisions", default="int8", help="comma-separated: bf16, int8")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "bench-novelty")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    data = subset(
        cached(
            args.cache,
            "nominal",
            2000,
            lambda: simulate(SimConfig(), 2000, args.workers, "nominal"),
        ),
        args.tracklets,
    )
    n = len(data["lengths"])
    exact = load_model(args.model, device="cpu")
    print(
        f"{platform.node()}, {os.cpu_count()} cores ({cpu_summary()}); model {exact.version}, "
        f"threshold {exact.threshold:.4f}; {n} tracklets, {len(data['stamps'])} stamps "
        "(bench/novelty.py's nominal set)"
    )
    timed(exact, subset(data, 5))  # warm-up
    reference, seconds = timed(exact, data)
    per = 1000 / n
    print(f"fp32: {seconds * per:.1f} s per 1,000 tracklets")
    ref_kept = kept(exact, reference)
    limit = exact.novelty.stamp_limit if exact.novelty is not None else None
    for precision in args.precisions.split(","):
        tolerance = AGREEMENT[precision]
        alone = replace(
            exact,
            runtime=replace(exact.runtime, precision=precision, exact_near_threshold=False),
            _runner=None,
            _exact_model=None,
            _pinned=[],
        )
        checked = replace(
            alone, runtime=replace(alone.runtime, exact_near_threshold=True), _runner=None
        )
        checked._exact_model = exact  # the float32 twin already loaded
        timed(alone, subset(data, 5))  # builds (int8: calibrates) the network once
        timed(checked, subset(data, 5))
        plain, plain_s = timed(alone, data)
        final, final_s = timed(checked, data)
        shift = {
            "probability": np.abs(
                np.asarray(plain.probabilities) - np.asarray(reference.probabilities)
            ).max(),
            "score": np.abs(np.asarray(plain.scores) - np.asarray(reference.scores)).max(),
            "score after the float32 pass": np.abs(
                np.asarray(final.scores) - np.asarray(reference.scores)
            ).max(),
        }
        moved = np.abs(logit(plain.scores) - logit(reference.scores))
        near = checked._near_threshold(
            np.asarray(plain.scores), np.asarray(plain.distances), data["lengths"]
        )
        by_logit = np.abs(logit(plain.scores) - logit(exact.threshold)) <= tolerance["logit"]
        print(f"\n{precision}:")
        for what, value in shift.items():
            bound = tolerance["score" if what.startswith("score") else what]
            print(f"  largest {what} shift {value:.4f} (tolerance {bound})")
        print(
            f"  logit shift: largest {moved.max():.3f}, 99th percentile "
            f"{np.percentile(moved, 99):.3f} (tolerance {tolerance['logit']})"
        )
        if limit is not None and plain.distances is not None:
            rel = np.abs(np.asarray(plain.distances) - np.asarray(reference.distances)) / limit
            print(
                f"  novelty distance shift, in units of the limit: largest {rel.max():.3f}, 99th "
                f"percentile {np.percentile(rel, 99):.3f} (tolerance {tolerance['distance']})"
            )
        print(
            f"  scored again in float32: {100 * near.mean():.1f}% of tracklets "
            f"({100 * by_logit.mean():.1f}% by the score's logit, the rest by a stamp's distance "
            "near the limit)"
        )
        print(
            f"  verdicts unlike float32's: {int((kept(alone, plain) != ref_kept).sum())} without "
            f"the float32 pass, {int((kept(checked, final) != ref_kept).sum())} with it"
        )
        print(
            f"  seconds per 1,000 tracklets: {plain_s * per:.1f} alone, {final_s * per:.1f} with "
            f"the pass (fp32 {seconds * per:.1f})"
        )


if __name__ == "__main__":
    main()

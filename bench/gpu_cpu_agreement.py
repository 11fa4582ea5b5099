"""Scores of the same simulated stamps on the CPU and on a GPU, against the documented tolerance.

Run on a machine with a GPU: `python bench/gpu_cpu_agreement.py [--checkpoint PATH]`. Compares
the CPU reference (eager float32) with the GPU worker path (bfloat16 autocast, channels-last;
`--compile` adds torch.compile) and with the GPU in float32; prints the largest differences
and the tolerance of `classifier.inference.AGREEMENT` they must stay within.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint")
    parser.add_argument("--tracklets", type=int, default=300)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    from bench.scoring_core import checkpoint_path
    from classifier.inference import AGREEMENT, Runtime, load_model
    from classifier.tracklets import make_tracklet

    path = checkpoint_path(args.checkpoint)
    tracklets = [make_tracklet(4242, i, real=i % 3 == 0) for i in range(args.tracklets)]
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections])
    lengths = [len(t.detections) for t in tracklets]
    meta = np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for t in tracklets for d in t.detections]
    )
    cpu_probs, cpu_scores = load_model(path, runtime=Runtime.reference("cpu")).score(
        stamps, lengths, meta
    )
    print(f"model {path.name}, {len(stamps)} simulated stamps in {len(lengths)} tracklets")
    for precision in ("bf16", "fp32"):
        runtime = Runtime.for_device("cuda", precision=precision, compile=args.compile)
        model = load_model(path, runtime=runtime)
        probs, scores = model.score(stamps, lengths, meta)
        flips = int((model.accepts(scores) != model.accepts(cpu_scores)).sum())
        print(
            f"GPU {precision}: largest difference stamp probability "
            f"{np.max(np.abs(cpu_probs - probs)):.2e}, tracklet score "
            f"{np.max(np.abs(cpu_scores - scores)):.2e} (tolerance "
            f"{AGREEMENT[precision]['probability']}, {AGREEMENT[precision]['score']}); "
            f"decisions at the threshold that differ: {flips}"
        )


if __name__ == "__main__":
    main()

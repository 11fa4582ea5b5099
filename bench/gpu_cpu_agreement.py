"""Scores of the same stamps on the CPU and on a GPU: the largest differences.

Run on a machine with a GPU: `python bench/gpu_cpu_agreement.py [--checkpoint PATH]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint")
    parser.add_argument("--tracklets", type=int, default=250)
    args = parser.parse_args()
    from bench.scoring_core import checkpoint_path
    from classifier.inference import load_model

    path = checkpoint_path(args.checkpoint)
    rng = np.random.default_rng(1)
    stamps = rng.normal(0, 10, (args.tracklets * 4, 100, 100)).astype(np.float32)
    yy, xx = np.mgrid[:100, :100]
    stamps[::2] += 60 * np.exp(-((xx - 49.5) ** 2 + (yy - 49.5) ** 2) / 5.0)  # sources
    lengths = [4] * args.tracklets
    cpu_probs, cpu_scores = load_model(path, device="cpu").score(stamps, lengths)
    gpu_probs, gpu_scores = load_model(path, device="cuda").score(stamps, lengths)
    print(f"model {path.name}, {len(stamps)} stamps")
    print(f"largest difference: stamp probability {np.max(np.abs(cpu_probs - gpu_probs)):.2e}, "
          f"tracklet score {np.max(np.abs(cpu_scores - gpu_scores)):.2e}")


if __name__ == "__main__":
    main()

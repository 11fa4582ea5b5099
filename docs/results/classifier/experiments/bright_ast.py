"""Experiment: how the robust ICN classifies simulated asteroid stamps by brightness, and the
real ZTF cutouts (tests/data) by what it calls them, with their measured SNR and width.

    python docs/results/classifier/experiments/bright_ast.py [--model M.pt]

The simulator draws AST stamps with SNR 4-300 from a power law of slope 2.5 (under 1% above
SNR 100) and COMET stamps up to SNR 500 (slope 2): the ZTF alerts' point sources are bright
(SNR about 100-400). Float32 path.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--model", default=str(ROOT / "models/robust/screening-315f987fb95f6c48.pt")
    )
    parser.add_argument("--per-bin", type=int, default=150)
    args = parser.parse_args()
    from novelty import ZTF

    from classifier.features import source_moments
    from classifier.inference import load_model
    from classifier.simulate import SimConfig, make_stamp, stamp_rng
    from classifier.stamp_io import fit_to_input, read_stamp

    model = load_model(args.model, "cpu").exact()
    names = np.array(model.classes)
    print(f"model {model.version}; simulated AST stamps (SimConfig().wider()) by SNR:")
    cfg = SimConfig().wider()
    for lo, hi in ((10, 30), (30, 100), (100, 200), (200, 400), (400, 1000)):
        stamps = []
        for j in range(args.per_bin):
            rng = stamp_rng(99, lo, j)
            snr = float(rng.uniform(lo, hi))
            stamps.append(make_stamp("AST", rng, cfg, fixed={"snr": snr}).difference)
        top = names[model.stamp_probabilities(model.preprocessing(np.stack(stamps))).argmax(1)]
        counts = collections.Counter(str(t) for t in top)
        print(
            f"  SNR {lo:4d}-{hi:<4d}: AST {counts['AST'] / len(top):4.0%}  "
            f"{dict(counts.most_common(4))}"
        )
    print("real ZTF difference cutouts by the class the ICN gives (measured at the centre):")
    raw = [read_stamp(f.read_bytes()).pixels for f in sorted(ZTF.glob("*_difference.fits.gz"))]
    stamps = np.stack([fit_to_input(s) for s in raw]).astype(np.float32)
    top = names[model.stamp_probabilities(model.preprocessing(stamps)).argmax(1)]
    by = collections.defaultdict(list)
    for cls, s in zip(top, stamps, strict=True):
        length, _, elongation, snr, sigma = source_moments(
            np.nan_to_num(s, nan=float(np.nanmedian(s)))
        )
        by[str(cls)].append((snr, 2.3548 * sigma, elongation))
    for cls, rows in sorted(by.items(), key=lambda kv: -len(kv[1])):
        v = np.array(rows)
        print(
            f"  {cls:6s} n={len(v):2d}: SNR median {np.median(v[:, 0]):6.1f}, width (FWHM of the "
            f"2-sigma region) median {np.median(v[:, 1]):5.2f} px, "
            f"elongation {np.median(v[:, 2]):.2f}"
        )


if __name__ == "__main__":
    main()

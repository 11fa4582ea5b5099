"""Experiment: how the robust ICN classifies simulated asteroid stamps by brightness, and the
real ZTF cutouts (tests/data) by what it calls them, with their measured SNR and width; with
--icn, the same for a fine-tuned ICN (the icn-final.pt of a `train --state-dir` run) in the
robust model's place.

    python docs/results/classifier/experiments/bright_ast.py [--icn RUN/icn-final.pt]

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
ROBUST = ROOT / "models/robust/screening-315f987fb95f6c48.pt"
BINS = ((10, 30), (30, 100), (100, 200), (200, 400), (400, 1000))


def models(icn: str | None) -> dict:
    import torch

    from classifier.checkpoint import load_checkpoint
    from classifier.inference import Runtime, model_from_checkpoint

    payload = load_checkpoint(ROBUST)
    out = {"robust": model_from_checkpoint(payload, Runtime(precision="fp32"))}
    if icn:
        done = torch.load(icn, map_location="cpu", weights_only=False)  # our own file
        swapped = {**payload, "icn": {**payload["icn"], "state_dict": done["state_dict"]}}
        out["fine-tuned"] = model_from_checkpoint(swapped, Runtime(precision="fp32"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--icn", help="icn-final.pt of a `train --state-dir` run")
    parser.add_argument("--per-bin", type=int, default=150)
    args = parser.parse_args()
    from novelty import ZTF

    from classifier.features import source_moments
    from classifier.simulate import SimConfig, make_stamp, stamp_rng
    from classifier.stamp_io import fit_to_input, read_stamp

    cfg = SimConfig().wider()
    sims = {}
    for lo, hi in BINS:
        stamps = []
        for j in range(args.per_bin):
            rng = stamp_rng(99, lo, j)
            snr = float(rng.uniform(lo, hi))
            stamps.append(make_stamp("AST", rng, cfg, fixed={"snr": snr}).difference)
        sims[(lo, hi)] = np.stack(stamps)
    raw = [read_stamp(f.read_bytes()).pixels for f in sorted(ZTF.glob("*_difference.fits.gz"))]
    ztf = np.stack([fit_to_input(s) for s in raw]).astype(np.float32)
    measured = [source_moments(np.nan_to_num(s, nan=float(np.nanmedian(s)))) for s in ztf]
    for name, model in models(args.icn).items():
        names = np.array(model.classes)
        print(f"{name}: simulated AST stamps (SimConfig().wider()) by SNR:")
        for (lo, hi), stamps in sims.items():
            top = names[model.stamp_probabilities(model.preprocessing(stamps)).argmax(1)]
            counts = collections.Counter(str(t) for t in top)
            print(
                f"  SNR {lo:4d}-{hi:<4d}: AST {counts['AST'] / len(top):4.0%}  "
                f"{dict(counts.most_common(4))}"
            )
        top = names[model.stamp_probabilities(model.preprocessing(ztf)).argmax(1)]
        print(f"  real ZTF difference cutouts: AST {np.mean(top == 'AST'):.1%}, by class:")
        by = collections.defaultdict(list)
        for cls, (_, _, elongation, snr, sigma) in zip(top, measured, strict=True):
            by[str(cls)].append((snr, 2.3548 * sigma, elongation))
        for cls, rows in sorted(by.items(), key=lambda kv: -len(kv[1])):
            v = np.array(rows)
            print(
                f"  {cls:6s} n={len(v):2d}: SNR median {np.median(v[:, 0]):6.1f}, width (FWHM of "
                f"the 2-sigma region) median {np.median(v[:, 1]):5.2f} px, "
                f"elongation {np.median(v[:, 2]):.2f}"
            )


if __name__ == "__main__":
    main()

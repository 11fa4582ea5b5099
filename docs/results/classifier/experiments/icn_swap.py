"""Experiment (bright_ast.log): a fine-tuned ICN (the icn-final.pt of a `train --state-dir`
run) in the robust model's place: AST recall on simulated asteroids by SNR, and the classes of
the real ZTF cutouts (tests/data), both in float32.

    python docs/results/classifier/experiments/icn_swap.py [--icn RUN/icn-final.pt]
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
BINS = ((10, 30), (30, 100), (100, 200), (200, 400), (400, 1000))


def main() -> None:
    import torch
    from novelty import ZTF

    from classifier.checkpoint import load_checkpoint
    from classifier.inference import Runtime, model_from_checkpoint
    from classifier.simulate import SimConfig, make_stamp, stamp_rng
    from classifier.stamp_io import fit_to_input, read_stamp

    parser = argparse.ArgumentParser()
    parser.add_argument("--icn", help="icn-final.pt of a `train --state-dir` run")
    args = parser.parse_args()
    payload = load_checkpoint(ROOT / "models/robust/screening-315f987fb95f6c48.pt")
    models = {"robust": model_from_checkpoint(payload, Runtime(precision="fp32"))}
    if args.icn:
        done = torch.load(args.icn, map_location="cpu", weights_only=False)  # our own file
        swapped = {**payload, "icn": {**payload["icn"], "state_dict": done["state_dict"]}}
        models["fine-tuned"] = model_from_checkpoint(swapped, Runtime(precision="fp32"))
    cfg = SimConfig().wider()
    sims = {}
    for lo, hi in BINS:
        stamps = []
        for j in range(150):
            rng = stamp_rng(99, lo, j)
            snr = float(rng.uniform(lo, hi))
            stamps.append(make_stamp("AST", rng, cfg, fixed={"snr": snr}).difference)
        sims[(lo, hi)] = np.stack(stamps).astype(np.float32)
    raw = [read_stamp(f.read_bytes()).pixels for f in sorted(ZTF.glob("*_difference.fits.gz"))]
    ztf = np.stack([fit_to_input(s) for s in raw]).astype(np.float32)
    for name, model in models.items():
        names = np.array(model.classes)
        row = []
        for (lo, hi), stamps in sims.items():
            top = names[model.stamp_probabilities(model.preprocessing(stamps)).argmax(1)]
            row.append(f"{lo}-{hi}: {np.mean(top == 'AST'):.0%}")
        top = names[model.stamp_probabilities(model.preprocessing(ztf)).argmax(1)]
        counts = dict(collections.Counter(str(t) for t in top).most_common())
        print(f"{name:10s} AST recall by SNR: " + ", ".join(row))
        print(f"{'':10s} ZTF cutouts: AST {np.mean(top == 'AST'):.1%} {counts}")


if __name__ == "__main__":
    main()

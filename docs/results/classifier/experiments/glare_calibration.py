"""Calibration of the simulated planet glare (simulator.md: "a model trained without GLARE passes
at least 30% of glare tracklets at its own threshold"): how much glare a model lets through.

    python docs/results/classifier/experiments/glare_calibration.py
        [--model models/screening-....pt] [--tracklets 1000]
        [--out docs/results/classifier/glare_calibration.json]

Simulates bogus tracklets of one field near a planet (seed 20261125, never used in training),
scores them at the model's threshold, and breaks the glare tracklets (knots along one band,
every stamp GLARE) down by knot kind and band brightness; also the ICN's top class for glare
stamps, and the chance linkages that hold a glare stamp.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

SEED = 20261125


def _job(args):
    from classifier.tracklets import make_tracklet

    index, field = args
    return make_tracklet(SEED, index, False, field=field)


def main() -> None:
    from multiprocessing import Pool

    from classifier.bundle import is_glare_tracklet
    from classifier.inference import load_model
    from classifier.tracklets import PlanetField

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=sorted((ROOT / "models").glob("screening-*.pt"))[-1]
    )
    parser.add_argument("--tracklets", type=int, default=1000)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs/results/classifier/glare_calibration.json"
    )
    args = parser.parse_args()

    field = PlanetField.draw(np.random.default_rng(SEED))
    with Pool() as pool:
        tracklets = pool.map(_job, [(i, field) for i in range(args.tracklets)], chunksize=10)
    model = load_model(args.model, device="cpu")
    stamps = np.concatenate([[d.stamp.difference for d in t.detections] for t in tracklets])
    meta = np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y] for t in tracklets for d in t.detections]
    )
    probs, scores = model.score(
        stamps.astype(np.float32), [len(t.detections) for t in tracklets], meta
    )
    passing = scores >= model.threshold
    groups: dict[str, list[bool]] = {}

    def add(name: str, ok: bool) -> None:
        groups.setdefault(name, []).append(bool(ok))

    for t, ok in zip(tracklets, passing, strict=True):
        if is_glare_tracklet(t):
            lat = t.detections[0].stamp.latents
            peak = lat["band_peak_sigma"]
            add("glare tracklets", ok)
            add(f"glare tracklets, knot {lat['knot']}", ok)
            band = (
                "< 1.5"
                if peak < 1.5
                else "1.5-10"
                if peak < 10
                else "10-100"
                if peak < 100
                else ">= 100"
            )
            add(f"glare tracklets, brightest band {band} sigma/px", ok)
        elif "GLARE" in t.classes:
            add("chance linkages with a glare stamp", ok)
        else:
            add(f"other bogus ({t.kind})", ok)
    names = np.array(model.classes)[probs.argmax(1)]
    truth = np.array([d.stamp.cls for t in tracklets for d in t.detections])
    report = {
        "model": args.model.name,
        "threshold": model.threshold,
        "seed": SEED,
        "tracklets": args.tracklets,
        "passing": {k: {"n": len(v), "passing": float(np.mean(v))} for k, v in groups.items()},
        "icn_on_glare_stamps": dict(Counter(names[truth == "GLARE"].tolist()).most_common()),
    }
    for k, v in report["passing"].items():
        print(f"{k:48s} n={v['n']:5d}  passing {v['passing']:.1%}")
    print("ICN's top class for GLARE stamps:", report["icn_on_glare_stamps"])
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()

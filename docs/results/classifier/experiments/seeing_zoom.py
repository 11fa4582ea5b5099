"""Experiment: resample each stamp so that its exposure's seeing falls inside the seeing range
the ICN was trained on, before the ICN reads it (a physical invariant: a point source under
6 px seeing, shrunk to 5.5 px, is a point source the ICN has seen). The TCN's cues are still
measured on the stamps as received.

    python docs/results/classifier/experiments/seeing_zoom.py --model M.pt [--range 1.0 5.5]
        [--cache var/cache/bench-novelty] [--sets nominal,psf-broad,psf-sharp]

Reads bench/novelty.py's cached sets (run it first); prints real kept / bogus rejected at the
model's threshold, as received and resampled, on the same tracklets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))


def zoom_to_range(stamps: np.ndarray, fwhm: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Each (100, 100) stamp resampled by target/fwhm about its centre, target the nearest
    end of [lo, hi] (unchanged where the seeing is inside it or unknown): shrunk stamps are
    NaN-padded (the model fills missing pixels with noise like the stamp's own), enlarged ones
    are the centre cropped and interpolated."""
    import torch
    import torch.nn.functional as F

    out = stamps.copy()
    size = stamps.shape[-1]
    for i, (s, f) in enumerate(zip(stamps, fwhm, strict=True)):
        if not np.isfinite(f) or lo <= f <= hi:
            continue
        scale = (hi if f > hi else lo) / f
        x = torch.from_numpy(np.nan_to_num(s, nan=float(np.nanmedian(s))))[None, None]
        if scale < 1:
            side = max(8, int(round(size * scale)))
            small = F.interpolate(x, size=(side, side), mode="area")[0, 0].numpy()
            canvas = np.full((size, size), np.nan, np.float32)
            start = (size - side) // 2
            canvas[start : start + side, start : start + side] = small
            out[i] = canvas
        else:
            side = max(8, int(round(size / scale)))
            start = (size - side) // 2
            crop = x[..., start : start + side, start : start + side]
            big = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
            # the same flux per unit of sky: an enlarged pixel holds less of it
            out[i] = big[0, 0].numpy() * (side / size) ** 2
    return out


def figures(model, data: dict, stamps: np.ndarray) -> tuple[float, float]:
    lengths, real = data["lengths"], data["real"]
    raw = model._raw_cues(data["meta"], data["stamps"], lengths)
    probs = model.stamp_probabilities(model.preprocessing(stamps))
    scores = model.tracklet_scores(probs, lengths, model._cue_inputs(raw))
    keep = model.accepts(scores)
    return float(keep[real].mean()), float((~keep[~real]).mean())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--range", nargs=2, type=float, default=(1.0, 5.5))
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "bench-novelty")
    parser.add_argument("--sets", default="nominal,psf-broad,psf-sharp")
    args = parser.parse_args()
    from classifier.inference import load_model

    model = load_model(args.model, "cpu").exact()
    lo, hi = args.range
    print(f"model {model.version} threshold {model.threshold:.4f}; seeing range {lo}-{hi} px")
    for name in args.sets.split(","):
        path = next(args.cache.glob(f"{name}-500-*.npz"))
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        fwhm = data["meta"][:, 6]
        before = figures(model, data, data["stamps"])
        after = figures(model, data, zoom_to_range(data["stamps"], fwhm, lo, hi))
        moved = float(((fwhm < lo) | (fwhm > hi)).mean())
        print(
            f"{name:>16}: as received real kept {100 * before[0]:6.2f}% bogus rejected "
            f"{100 * before[1]:6.2f}% | resampled ({100 * moved:5.1f}% of stamps) real kept "
            f"{100 * after[0]:6.2f}% bogus rejected {100 * after[1]:6.2f}%",
            flush=True,
        )

"""Experiment: is it the ZTF cutouts' noise, their sources' shape, or the padding that keeps the
robust ICN from calling more of them AST?

    python docs/results/classifier/experiments/ztf_noise.py

Each of the 59 ZTF difference cutouts (tests/data) gets an elliptical Moffat fitted to its
central source (21x21 px); the ICN (float32) then classifies variants of it:
- as stored (63x63, NaN-padded to 100x100 as ingest does), and at full size (padded with noise);
- its own fitted source on fresh white noise of the cutout's robust sigma (three draws), and on
  noise smoothed by a Gaussian of 0.5 or 0.7 px (correlated like the simulator's difference
  images), scaled to the same per-pixel sigma;
- its real noise and residuals with the source made round (the fit's geometric-mean width).
The lag-1 autocorrelation of the background (beyond 8 px of the source) is compared with the
simulator's AST stamps (SimConfig().wider()); the AST share is broken down by the fitted peak SNR.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
ROBUST = ROOT / "models/robust/screening-315f987fb95f6c48.pt"
ZTF = ROOT / "tests" / "data" / "ztf-alert-cutouts"


def moffat(p, yy, xx):
    a, x0, y0, sx, sy, th, beta, b = p
    c, s = np.cos(th), np.sin(th)
    u = (c * (xx - x0) + s * (yy - y0)) / sx
    v = (-s * (xx - x0) + c * (yy - y0)) / sy
    return a * (1 + u * u + v * v) ** (-beta) + b


def robust_sigma(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def lag1(r: np.ndarray) -> float:
    r = np.where(np.isfinite(r), r - np.nanmean(r), 0.0)
    return float(((r[:, 1:] * r[:, :-1]).sum() + (r[1:] * r[:-1]).sum()) / (2 * (r * r).sum()))


def fit(s: np.ndarray):
    n = s.shape[0]
    c = n // 2
    yy, xx = np.mgrid[0:n, 0:n]
    bg, sig = float(np.nanmedian(s)), robust_sigma(s)
    cut = slice(c - 10, c + 11)
    ok = np.isfinite(s[cut, cut])
    amp = float(np.nanmax(s[c - 3 : c + 4, c - 3 : c + 4]) - bg)
    r = least_squares(
        lambda p: (moffat(p, yy[cut, cut], xx[cut, cut]) - s[cut, cut])[ok],
        [amp, c, c, 2.0, 2.0, 0.0, 2.5, bg],
        bounds=(
            [0, c - 4, c - 4, 0.3, 0.3, -np.pi, 1.0, -np.inf],
            [np.inf, c + 4, c + 4, 20, 20, np.pi, 15, np.inf],
        ),
    )
    return r.x, bg, sig, yy, xx


def main() -> None:
    from classifier.checkpoint import load_checkpoint
    from classifier.inference import Runtime, model_from_checkpoint
    from classifier.simulate import SimConfig, make_stamp, stamp_rng
    from classifier.stamp_io import fit_to_input, read_stamp

    model = model_from_checkpoint(load_checkpoint(ROBUST), Runtime(precision="fp32"))
    names = np.array(model.classes)

    def classify(stamps):
        p = model.stamp_probabilities(model.preprocessing(np.stack(stamps).astype(np.float32)))
        return names[p.argmax(1)]

    raw = [
        read_stamp(f.read_bytes()).pixels.astype(np.float64)
        for f in sorted(ZTF.glob("*_difference.fits.gz"))
    ]
    rng = np.random.default_rng(0)
    variants = collections.defaultdict(list)
    peak_snr, lags = [], []
    for s in raw:
        p, bg, sig, yy, xx = fit(s)
        finite = np.isfinite(s)
        source = moffat(p, yy, xx) - p[7]

        def pad(img, finite=finite):
            return fit_to_input(np.where(finite, img, np.nan).astype(np.float32))

        variants["as stored (63x63, NaN-padded)"].append(fit_to_input(s.astype(np.float32)))
        big = rng.normal(bg, sig, (100, 100))
        o = (100 - s.shape[0]) // 2
        big[o : o + s.shape[0], o : o + s.shape[0]] = np.where(
            finite, s, big[o : o + s.shape[0], o : o + s.shape[0]]
        )
        variants["as stored, padded with noise to 100x100"].append(big.astype(np.float32))
        for draw in range(3):
            variants[f"fitted source, white noise (draw {draw + 1})"].append(
                pad(bg + source + rng.normal(0, sig, s.shape))
            )
        for k in (0.5, 0.7):
            w = gaussian_filter(rng.normal(0, 1, s.shape), k)
            variants[f"fitted source, noise smoothed {k} px (same sigma)"].append(
                pad(bg + source + w / w.std() * sig)
            )
        round_ = p.copy()
        round_[3] = round_[4] = np.sqrt(p[3] * p[4])
        round_[7] = 0
        variants["real noise and residuals, source made round"].append(
            pad(s - source + moffat(round_, yy, xx))
        )
        peak_snr.append(p[0] / sig)
        lags.append(lag1(np.where(np.hypot(xx - p[1], yy - p[2]) > 8, s - bg - source, np.nan)))
    stored = None
    for name, stamps in variants.items():
        top = classify(stamps)
        stored = top if stored is None else stored
        counts = dict(collections.Counter(str(t) for t in top).most_common(4))
        print(f"{name:48s} AST {np.mean(top == 'AST'):6.1%}  {counts}")
    peak_snr = np.array(peak_snr)
    print("as stored, AST share by the fitted peak SNR:")
    for lo, hi in ((0, 10), (10, 25), (25, 60), (60, 1e9)):
        sel = (peak_snr >= lo) & (peak_snr < hi)
        band = f"{lo:3.0f}-{hi if hi < 1e9 else 'inf':<4}"
        print(f"  peak SNR {band}: n={sel.sum():2d}  AST {np.mean(stored[sel] == 'AST'):6.1%}")
    sim = []
    cfg = SimConfig().wider()
    r = np.hypot(*np.mgrid[-50:50, -50:50])
    for j in range(200):
        d = make_stamp("AST", stamp_rng(5, 7, j), cfg).difference
        sim.append(lag1(np.where(r > 15, d, np.nan)))
    for label, v in (("ZTF cutouts", lags), ("simulated AST (wider)", sim)):
        lo, hi = np.percentile(v, [5, 95])
        print(
            f"background lag-1 autocorrelation, {label:22s}: median {np.median(v):+.3f}, "
            f"5-95% {lo:+.3f} .. {hi:+.3f}"
        )


if __name__ == "__main__":
    main()

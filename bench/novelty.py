"""Never auto-reject what the model has not seen: the model with its novelty reference
(classifier.novelty) on its own simulator's nominal ranges, on sets shifted beyond the ranges it
was trained on, and on real ZTF cutouts.

    .venv/bin/python bench/novelty.py --model models/screening-<hash>.pt [--tracklets 1000]

For every set, the same figures at the model's threshold, with a tracklet unlike training kept
in the to-review queue whatever its score (what the product does):
- real kept: scored at or above the threshold, or unlike training; and by the score alone;
- bogus rejected: scored below the threshold and like training; by bogus kind;
- unlike training: the share of real and of bogus tracklets flagged.

Sets (raw stamps through `ScreeningModel.assess`, exactly as the inference workers score them):
- nominal: SimConfig() (simulator.md's ranges), the evaluation seed;
- stamp-63 / stamp-30: the nominal tracklets with every stamp centre-cropped to 63x63 (ZTF's
  cutouts) or 30x30 and NaN-padded back to 100x100 as ingest does;
- psf-broad: seeing FWHM 4.6-7 px (trained up to 4.5);
- psf-sharp: FWHM 0.9-1.25 px, undersampled (trained from 1.3);
- bad-subtraction: PSF-matching kernel error 0.3-0.5 and registration error 0.35 px (trained
  up to 0.25 and 0.15);
- ztf: 30 three-detection tracklets of real ZTF difference cutouts (tests/data), moving at
  0.2-2 deg/day: all real point sources.
Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier.datasets import BOGUS_INDEX_OFFSET, _pool_map, tracklet_kind  # noqa: E402
from classifier.simulate import SimConfig  # noqa: E402
from classifier.stamp_io import fit_to_input, read_stamp  # noqa: E402

EVAL_SEED = 20261124
ZTF = ROOT / "tests" / "data" / "ztf-alert-cutouts"


def shifted(name: str) -> SimConfig:
    base = SimConfig()
    c = base.conditions
    if name == "psf-broad":
        return replace(base, conditions=replace(c, fwhm_median=5.5, fwhm_range=(4.6, 7.0)))
    if name == "psf-sharp":
        return replace(base, conditions=replace(c, fwhm_median=1.1, fwhm_range=(0.9, 1.25)))
    if name == "bad-subtraction":
        return replace(
            base,
            conditions=replace(
                c, kernel_error=(0.3, 0.5), registration_sigma=0.35, registration_tail=0.9
            ),
        )
    return base


def _job(job: tuple) -> dict:
    from classifier.tracklets import make_tracklet

    seed, items, cfg = job
    out = {"stamps": [], "meta": [], "lengths": [], "real": [], "kinds": []}
    for index, real in items:
        t = make_tracklet(seed, index, real, cfg, glare=False)
        out["stamps"].append(np.stack([d.stamp.difference for d in t.detections]))
        out["meta"].append([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y] for d in t.detections])
        out["lengths"].append(len(t.detections))
        out["real"].append(t.real)
        out["kinds"].append(tracklet_kind(t))
    return out


def simulate(cfg: SimConfig, n: int, workers: int, desc: str) -> dict:
    items = [(i, True) for i in range(n)] + [(BOGUS_INDEX_OFFSET + i, False) for i in range(n)]
    jobs = [(EVAL_SEED, items[s : s + 25], cfg) for s in range(0, len(items), 25)]
    parts = list(_pool_map(_job, jobs, workers, desc, sys.stderr.isatty()))
    return {
        "stamps": np.concatenate([s for p in parts for s in p["stamps"]]).astype(np.float32),
        "meta": np.concatenate([np.asarray(m) for p in parts for m in p["meta"]]),
        "lengths": np.array([v for p in parts for v in p["lengths"]]),
        "real": np.array([v for p in parts for v in p["real"]]),
        "kinds": [v for p in parts for v in p["kinds"]],
    }


def cropped(data: dict, side: int) -> dict:
    start = (100 - side) // 2
    stamps = np.stack(
        [fit_to_input(s[start : start + side, start : start + side]) for s in data["stamps"]]
    )
    return {**data, "stamps": stamps}


def ztf_tracklets(n: int = 30) -> dict:
    """n three-detection tracklets of real ZTF difference cutouts (63x63, NaN-padded as ingest
    does), each a mover at 0.2-2 deg/day over 40 minutes; magnitudes from the alerts."""
    import csv

    alerts = {r["candid"]: r for r in csv.DictReader((ZTF / "alerts.csv").open())}
    files = sorted(ZTF.glob("*_difference.fits.gz"))
    stamps, mags = [], []
    for f in files:
        stamps.append(fit_to_input(read_stamp(f.read_bytes()).pixels))
        row = alerts.get(f.name.split("_")[0])
        mags.append(float(row["magpsf"]) if row else 18.0)
    rng = np.random.default_rng(7)
    out = {"stamps": [], "meta": [], "lengths": [], "real": [], "kinds": []}
    for t in range(n):
        pick = [(3 * t + k) % len(files) for k in range(3)]
        rate, angle = rng.uniform(0.2, 2.0), rng.uniform(0, 2 * np.pi)
        mjd = 61000.3 + np.arange(3) * 20 / 1440
        dt = mjd - mjd[0]
        dec0 = rng.uniform(-20, 40)
        ra = 150 + rate * dt * np.cos(angle) / np.cos(np.radians(dec0)) + rng.normal(0, 1e-5, 3)
        dec = dec0 + rate * dt * np.sin(angle) + rng.normal(0, 1e-5, 3)
        x = 3000 + rate * dt * 3600 / 1.86 * np.cos(angle)
        y = 3000 + rate * dt * 3600 / 1.86 * np.sin(angle)
        out["stamps"] += [stamps[i] for i in pick]
        out["meta"] += [[mjd[k], ra[k], dec[k], mags[pick[k]], x[k], y[k]] for k in range(3)]
        out["lengths"].append(3)
        out["real"].append(True)
        out["kinds"].append("real")
    return {
        "stamps": np.stack(out["stamps"]).astype(np.float32),
        "meta": np.asarray(out["meta"]),
        "lengths": np.array(out["lengths"]),
        "real": np.array(out["real"]),
        "kinds": out["kinds"],
    }


def figures(model, data: dict) -> dict:
    t0 = time.time()
    out = model.assess(data["stamps"], data["lengths"], data["meta"])
    seconds = time.time() - t0
    real = data["real"]
    unlike = np.array([bool(r) for r in out.unlike_training])
    passing = out.scores >= model.threshold
    kept = passing | unlike
    top = np.array(model.classes)[out.probabilities.argmax(1)]
    stamp_real = np.repeat(real, data["lengths"])
    stamp_unlike = out.distances > model.novelty.stamp_limit if out.distances is not None else None
    result = {
        "tracklets": {"real": int(real.sum()), "bogus": int((~real).sum())},
        "real_kept": float(kept[real].mean()) if real.any() else None,
        "real_kept_by_score": float(passing[real].mean()) if real.any() else None,
        "real_unlike": float(unlike[real].mean()) if real.any() else None,
        "bogus_rejected": float((~kept[~real]).mean()) if (~real).any() else None,
        "bogus_rejected_by_score": float((~passing[~real]).mean()) if (~real).any() else None,
        "bogus_unlike": float(unlike[~real].mean()) if (~real).any() else None,
        "real_stamps_top_class": {
            c: int((top[stamp_real] == c).sum())
            for c in model.classes
            if (top[stamp_real] == c).any()
        },
        "real_stamps_unlike": (
            float(stamp_unlike[stamp_real].mean()) if stamp_unlike is not None else None
        ),
        "by_bogus_kind": {},
        "reasons": [r for r in out.unlike_training if r][:5],
        "seconds": round(seconds, 1),
    }
    kinds = np.array(data["kinds"])
    for kind in sorted(set(kinds[~real])):
        sel = kinds == kind
        result["by_bogus_kind"][kind] = {
            "tracklets": int(sel.sum()),
            "rejected": float((~kept[sel]).mean()),
            "unlike": float(unlike[sel].mean()),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--tracklets", type=int, default=1000, help="real, and as many bogus")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--sets",
        default="nominal,stamp-63,stamp-30,psf-broad,psf-sharp,bad-subtraction,ztf",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args()

    from classifier.inference import load_model

    model = load_model(args.model, device="cpu")
    if model.novelty is None:
        raise SystemExit(f"{args.model} has no novelty reference: python -m classifier novelty")
    print(
        f"model {model.version} threshold {model.threshold:.4f}; stamp limit "
        f"{model.novelty.stamp_limit:.1f}; {platform.node()} {os.cpu_count()} cores",
        flush=True,
    )
    report = {"model": model.version, "threshold": model.threshold, "sets": {}}
    nominal = None
    for name in args.sets.split(","):
        t0 = time.time()
        if name == "ztf":
            data = ztf_tracklets()
        elif name.startswith("stamp-"):
            nominal = nominal or simulate(SimConfig(), args.tracklets, args.workers, "nominal")
            data = cropped(nominal, int(name.split("-")[1]))
        else:
            data = simulate(shifted(name), args.tracklets, args.workers, name)
            if name == "nominal":
                nominal = data
        result = figures(model, data)
        result["wall_seconds"] = round(time.time() - t0, 1)
        report["sets"][name] = result

        def pct(v):
            return "   -  " if v is None else f"{100 * v:6.2f}"

        print(
            f"{name:>16}: real kept {pct(result['real_kept'])}% (score alone "
            f"{pct(result['real_kept_by_score'])}%, unlike {pct(result['real_unlike'])}%) | "
            f"bogus rejected {pct(result['bogus_rejected'])}% (score alone "
            f"{pct(result['bogus_rejected_by_score'])}%, unlike {pct(result['bogus_unlike'])}%)",
            flush=True,
        )
        worst = sorted(result["by_bogus_kind"].items(), key=lambda kv: kv[1]["rejected"])[:3]
        if worst:
            print(
                "                  worst kinds: "
                + ", ".join(
                    f"{k} {100 * v['rejected']:.1f}% (n={v['tracklets']})" for k, v in worst
                )
            )
        print(f"                  real stamps' top class: {result['real_stamps_top_class']}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Never auto-reject what the model has not seen: the model with its novelty reference
(classifier.novelty) on its own simulator's nominal ranges, on sets shifted beyond the ranges it
was trained on, and on real ZTF cutouts; several models side by side on the very same tracklets.

    .venv/bin/python bench/novelty.py --model models/screening-<hash>.pt [--model OTHER.pt]
        [--tracklets 1000] [--cache var/cache/bench-novelty] [--thresholds 0.05,0.1,0.2]

For every set, the same figures at the model's threshold, with a tracklet unlike training kept
in the to-review queue whatever its score (what the product does):
- real kept: scored at or above the threshold, or unlike training; and by the score alone;
- bogus rejected: scored below the threshold and like training; by bogus kind;
- unlike training: the share of real and of bogus tracklets flagged.

Sets (raw stamps through `ScreeningModel.assess`, exactly as the inference workers score them):
- nominal: SimConfig() (simulator.md's ranges), the evaluation seed;
- stamp-63 / stamp-30: the nominal tracklets with every stamp centre-cropped to 63x63 (ZTF's
  cutouts) or 30x30 and NaN-padded back to 100x100 as ingest does;
- psf-broad: seeing FWHM 5.5-7 px (the baseline trained up to 4.5, the robust recipe up to 5.5);
- psf-sharp: FWHM 0.9-1.0 px, undersampled (the baseline trained from 1.3, the robust from 1.0);
- psf-elongated: the science exposure's PSF axis ratio 0.3-0.5 (tracking error, wind shake; the
  robust recipe trains down to 0.5 since 2026-12-06, the baseline to 0.75);
- bad-subtraction: PSF-matching kernel error 0.3-0.5 and registration error 0.35 px (both
  trained up to 0.25 and 0.15);
- ztf: 30 three-detection tracklets of real ZTF difference cutouts (tests/data), moving at
  0.2-2 deg/day: all real point sources, each linking cutouts of alerts of about the same
  magnitude, as one mover's are; ztf-file-order: the same cutouts linked in file order, with
  magnitudes up to 3.6 apart in a tracklet (the set until 2026-12-06; shown, not judged);
- <set>-mixed (with --mixed N): N bogus tracklets a set that are all mixed linkages (two
  asteroids, or an asteroid's detections with bogus ones), under that set's conditions. They
  are 5% of the bogus mix, about 25 in 500, too few to judge their kind on alone.
Each shifted range is held out of every recipe's training, so the worst shift is a fair test.
The simulated sets carry each exposure's seeing (fwhm_px, which a cue set 3 model reads); with
--without-seeing it is hidden, as from a survey that does not send it (ZTF's set never has it).
Simulated sets are kept in --cache (keyed by the simulator's code) and reused by the next run.
Prints a table per model, the acceptance checks of issue 25, and writes JSON (--out). With
--thresholds, the checks again at each of those thresholds (what a threshold chosen for more
recall would give; the motion rule judged down to the lowest of them, which can leave a still
tracklet below half a higher threshold unflagged as unlike training, as the product would not).
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
MIXED_INDEX_OFFSET = 3_000_000  # the mixed-only sets' bogus tracklets: other indices
MIN_KIND = 30  # a bogus kind is judged on at least this many tracklets
ZTF = ROOT / "tests" / "data" / "ztf-alert-cutouts"


def shifted(name: str) -> SimConfig:
    base = SimConfig()
    c = base.conditions
    if name == "psf-broad":
        return replace(base, conditions=replace(c, fwhm_median=6.2, fwhm_range=(5.5, 7.0)))
    if name == "psf-sharp":
        return replace(base, conditions=replace(c, fwhm_median=0.95, fwhm_range=(0.9, 1.0)))
    if name == "psf-elongated":
        return replace(base, conditions=replace(c, sci_axis_ratio=(0.3, 0.5)))
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

    seed, items, cfg, kind = job
    out = {"stamps": [], "meta": [], "lengths": [], "real": [], "kinds": []}
    for index, real in items:
        t = make_tracklet(seed, index, real, cfg, glare=False, bogus_kind=kind)
        out["stamps"].append(np.stack([d.stamp.difference for d in t.detections]))
        out["meta"].append([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for d in t.detections])
        out["lengths"].append(len(t.detections))
        out["real"].append(t.real)
        out["kinds"].append(tracklet_kind(t))
    return out


def simulate(cfg: SimConfig, n: int, workers: int, desc: str, kind: str | None = None) -> dict:
    """n real and n bogus tracklets; with `kind`, n bogus tracklets of that kind only."""
    if kind is None:
        items = [(i, True) for i in range(n)] + [(BOGUS_INDEX_OFFSET + i, False) for i in range(n)]
    else:
        items = [(MIXED_INDEX_OFFSET + i, False) for i in range(n)]
    jobs = [(EVAL_SEED, items[s : s + 25], cfg, kind) for s in range(0, len(items), 25)]
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


def ztf_tracklets(n: int = 30, linking: str = "brightness") -> dict:
    """n three-detection tracklets of real ZTF difference cutouts (63x63, NaN-padded as ingest
    does), each a mover at 0.2-2 deg/day over 40 minutes; magnitudes from the alerts.

    The alerts are of unrelated objects, so a tracklet links three of them. linking
    "brightness" (the acceptance set) links cutouts next to each other in the alerts' magnitude
    order, as one mover's detections are: its brightness changes little in 40 minutes (a
    rotating asteroid's light curve, a few tenths of a magnitude). "file-order" (until
    2026-12-06) linked them in file order, with magnitudes up to 3.6 apart in one tracklet: a
    model that doubts such a tracklet reads its magnitudes right, not its stamps wrong.
    """
    import csv

    alerts = {r["candid"]: r for r in csv.DictReader((ZTF / "alerts.csv").open())}
    files = sorted(ZTF.glob("*_difference.fits.gz"))
    stamps, mags = [], []
    for f in files:
        stamps.append(fit_to_input(read_stamp(f.read_bytes()).pixels))
        row = alerts.get(f.name.split("_")[0])
        mags.append(float(row["magpsf"]) if row else 18.0)
    if linking == "brightness":
        order = np.argsort(mags, kind="stable")
        starts = np.round(np.linspace(0, len(files) - 3, n)).astype(int)
        picks = [[int(order[s + k]) for k in range(3)] for s in starts]
    elif linking == "file-order":
        picks = [[(3 * t + k) % len(files) for k in range(3)] for t in range(n)]
    else:
        raise ValueError(f"unknown linking {linking!r}: brightness or file-order")
    rng = np.random.default_rng(7)
    out = {"stamps": [], "meta": [], "lengths": [], "real": [], "kinds": [], "cutout": []}
    for pick in picks:
        rate, angle = rng.uniform(0.2, 2.0), rng.uniform(0, 2 * np.pi)
        mjd = 61000.3 + np.arange(3) * 20 / 1440
        dt = mjd - mjd[0]
        dec0 = rng.uniform(-20, 40)
        ra = 150 + rate * dt * np.cos(angle) / np.cos(np.radians(dec0)) + rng.normal(0, 1e-5, 3)
        dec = dec0 + rate * dt * np.sin(angle) + rng.normal(0, 1e-5, 3)
        x = 3000 + rate * dt * 3600 / 1.86 * np.cos(angle)
        y = 3000 + rate * dt * 3600 / 1.86 * np.sin(angle)
        out["stamps"] += [stamps[i] for i in pick]
        out["cutout"] += pick
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
        "cutout": np.array(out["cutout"]),  # which of the cutouts each stamp is
    }


def assessed(model, data: dict) -> dict:
    """What the model makes of a set, at any threshold: scores, still and unlike flags, stamps'
    top classes and novelty."""
    t0 = time.time()
    out = model.assess(data["stamps"], data["lengths"], data["meta"])
    return {
        "scores": np.asarray(out.scores),
        "still": (  # the motion rule's verdicts (none where it did not run: no metadata)
            np.array([bool(r) for r in out.not_moving], bool)
            if out.not_moving
            else np.zeros(len(out.scores), bool)
        ),
        "unlike": np.array([bool(r) for r in out.unlike_training], bool),
        "reasons": [r for r in out.unlike_training if r][:5],
        "top": np.array(model.classes)[out.probabilities.argmax(1)],
        "stamp_unlike": (
            out.distances > model.novelty.stamp_limit if out.distances is not None else None
        ),
        "seconds": time.time() - t0,
    }


def kept_for_review(seen: dict, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(passing, kept) of `assessed`'s answer at `threshold`: a score at it or over it that the
    motion rule did not cap, and that or unlike training (never auto-rejected)."""
    passing = (seen["scores"] >= threshold) & ~seen["still"]
    return passing, passing | seen["unlike"]


def figures(model, data: dict, threshold: float | None = None, seen: dict | None = None) -> dict:
    """The set's figures at `threshold` (the model's own if None); `seen`: `assessed`'s answer
    if already made. A still tracklet (the motion rule) passes at no threshold."""
    seen = seen or assessed(model, data)
    threshold = model.threshold if threshold is None else threshold
    real = data["real"]
    unlike = seen["unlike"]
    passing, kept = kept_for_review(seen, threshold)
    top = seen["top"]
    stamp_real = np.repeat(real, data["lengths"])
    stamp_unlike = seen["stamp_unlike"]
    ast_or_unlike = (top == "AST") | (stamp_unlike if stamp_unlike is not None else False)
    first = np.ones(len(top), bool)
    if "cutout" in data:
        first[:] = False
        first[np.unique(data["cutout"], return_index=True)[1]] = True
    seconds = seen["seconds"]
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
        # issue 25's ZTF figure: a real point source called AST, or flagged unlike training
        # (each distinct cutout once where a cutout is used in several tracklets)
        "real_stamps_ast_or_unlike": (
            float(ast_or_unlike[stamp_real & first].mean()) if stamp_real.any() else None
        ),
        "by_bogus_kind": {},
        "reasons": seen["reasons"],
        "seconds": round(seconds, 1),
    }
    if "cutout" in data:  # real cutouts: the width of those misread against those read AST
        result["cutouts_missed"] = missed_cutouts(data, top, ast_or_unlike & first, first)
    kinds = np.array(data["kinds"])
    for kind in sorted(set(kinds[~real])):
        sel = kinds == kind
        result["by_bogus_kind"][kind] = {
            "tracklets": int(sel.sum()),
            "rejected": float((~kept[sel]).mean()),
            "unlike": float(unlike[sel].mean()),
        }
    return result


def noise_truth(name: str, data: dict, seen: dict, model) -> dict:
    """Independent bogus draws of the simulated set `name`, rejected or not, by whether their
    detections are noise peaks: each tracklet made again from the simulator by its index (the
    cache keeps stamps, not truth) for the classes it drew. What a model cannot reject here,
    under conditions it was not trained for, is read against what lies in those tracklets."""
    from classifier.tracklets import make_tracklet

    real, kinds = data["real"], np.array(data["kinds"])
    _, kept = kept_for_review(seen, model.threshold)
    n_real = int(real.sum())
    groups: dict[str, list[bool]] = {"no noise peak": [], "some noise peaks": [], "all noise": []}
    for t in np.flatnonzero(~real & (kinds == "independent")):
        made = make_tracklet(
            EVAL_SEED, BOGUS_INDEX_OFFSET + int(t) - n_real, False, shifted(name), glare=False
        )
        classes = made.latents["classes"]
        noise = sum(c == "NOISE" for c in classes)
        group = (
            "all noise"
            if noise == len(classes)
            else "some noise peaks"
            if noise
            else "no noise peak"
        )
        groups[group].append(not kept[t])
    return {
        g: {"tracklets": len(v), "rejected": float(np.mean(v)) if v else None}
        for g, v in groups.items()
    }


def gaussian_fwhm(stamp: np.ndarray, half: int = 8) -> float:
    """FWHM (px) of a round Gaussian plus a constant fitted to the central (2 half + 1) px of a
    stamp (NaN where the fit fails): a source's width, faint ones included (a thresholded
    region's moments shrink with the SNR)."""
    from scipy.optimize import curve_fit

    c = stamp.shape[0] // 2
    cut = np.asarray(stamp[c - half : c + half + 1, c - half : c + half + 1], float)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    ok = np.isfinite(cut)

    def model(xy, a, x0, y0, s, b):
        return a * np.exp(-((xy[0] - x0) ** 2 + (xy[1] - y0) ** 2) / (2 * s * s)) + b

    try:
        p, _ = curve_fit(
            model, (xx[ok], yy[ok]), cut[ok], p0=[np.nanmax(cut), 0, 0, 1.5, 0], maxfev=4000
        )
    except (RuntimeError, ValueError):
        return float("nan")
    return float(2.3548 * abs(p[3]))


def missed_cutouts(data: dict, top: np.ndarray, read: np.ndarray, first: np.ndarray) -> dict:
    """The cutouts neither read AST nor flagged (each once): their top classes, and their
    sources' FWHM (px, `gaussian_fwhm`) against that of the cutouts read AST or flagged. The
    model bins stamps of broad exposures to its seeing only where the survey sends the seeing;
    ZTF's set sends none."""
    fwhm = np.array(
        [gaussian_fwhm(s) if f else np.nan for s, f in zip(data["stamps"], first, strict=True)]
    )
    missed = first & ~read
    comet = missed & (top == "COMET")
    return {
        "cutouts": int(missed.sum()),
        "top_class": {str(c): int((top[missed] == c).sum()) for c in np.unique(top[missed])},
        "fwhm_px_median_comet": float(np.nanmedian(fwhm[comet])) if comet.any() else None,
        "fwhm_px_median_read": float(np.nanmedian(fwhm[read])) if read.any() else None,
    }


def cached(cache: Path | None, name: str, n: int, make) -> dict:
    """The set `name` of n real and n bogus tracklets, from `cache` when this simulator made it."""
    from classifier.datasets import simulator_code

    if cache is None:
        return make()
    path = cache / f"{name}-{n}-{simulator_code('raw-tracklets')}.npz"
    if path.exists():
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        data["kinds"] = [str(k) for k in data["kinds"]]
        return data
    data = make()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in data.items()})
    tmp.replace(path)
    return data


def pct(v) -> str:
    return "   -  " if v is None else f"{100 * v:6.2f}"


def print_set(name: str, result: dict) -> None:
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
            + ", ".join(f"{k} {100 * v['rejected']:.1f}% (n={v['tracklets']})" for k, v in worst)
        )
    print(
        f"                  real stamps' top class: {result['real_stamps_top_class']}; "
        f"AST or unlike {pct(result['real_stamps_ast_or_unlike'])}%"
    )
    missed = result.get("cutouts_missed")
    if missed and missed["cutouts"]:

        def px(v) -> str:
            return "-" if v is None else f"{v:.2f}"

        print(
            f"                  cutouts neither AST nor unlike: {missed['cutouts']} "
            f"{missed['top_class']}; the sources' FWHM median of those read COMET "
            f"{px(missed['fwhm_px_median_comet'])} px (those read AST or unlike: "
            f"{px(missed['fwhm_px_median_read'])} px)"
        )


def acceptance(sets: dict) -> list[tuple[str, bool, str]]:
    """Issue 25's checks on one model's figures: (check, met, the figure)."""
    every = {k: v for k, v in sets.items() if not k.startswith("ztf")}
    simulated = {k: v for k, v in every.items() if not k.endswith("-mixed")}
    checks = []
    if simulated:
        worst_real = min(simulated.items(), key=lambda kv: kv[1]["real_kept"])
        checks.append(
            (
                "real kept >= 99.6% on every set",
                worst_real[1]["real_kept"] >= 0.996,
                f"lowest {pct(worst_real[1]['real_kept'])}% ({worst_real[0]})",
            )
        )
        shifted_sets = {k: v for k, v in simulated.items() if k != "nominal"}
        if "nominal" in simulated:
            v = simulated["nominal"]["bogus_rejected"]
            checks.append(("bogus rejected >= 95% in distribution", v >= 0.95, f"{pct(v)}%"))
        if shifted_sets:
            name, worst = min(shifted_sets.items(), key=lambda kv: kv[1]["bogus_rejected"])
            checks.append(
                (
                    "bogus rejected >= 90% on the worst shift",
                    worst["bogus_rejected"] >= 0.90,
                    f"{pct(worst['bogus_rejected'])}% ({name})",
                )
            )
        # each kind on all its tracklets under one set's conditions (the set and its -mixed
        # set together), judged where there are at least MIN_KIND of them
        pooled: dict[tuple[str, str], tuple[int, int]] = {}  # (set, kind): (n, rejected)
        for s, r in every.items():
            for k, v in r["by_bogus_kind"].items():
                key = (s.removesuffix("-mixed"), k)
                n, rejected = pooled.get(key, (0, 0))
                pooled[key] = (n + v["tracklets"], rejected + round(v["rejected"] * v["tracklets"]))
        kinds = [(f"{s}/{k}", r / n, n) for (s, k), (n, r) in pooled.items() if n >= MIN_KIND]
        few = [f"{s}/{k} (n={n})" for (s, k), (n, r) in pooled.items() if n < MIN_KIND]
        if kinds:
            name, low, n = min(kinds, key=lambda kv: kv[1])
            checks.append(
                (
                    f"every bogus kind >= 85% rejected (n >= {MIN_KIND} a set)",
                    low >= 0.85,
                    f"lowest {name} {pct(low)}% (n={n})"
                    + (f"; too few to judge: {', '.join(few)}" if few else ""),
                )
            )
    if "ztf" in sets:
        z = sets["ztf"]
        checks.append(
            (
                "no ZTF tracklet auto-rejected",
                z["real_kept"] >= 1.0,
                f"{pct(z['real_kept'])}% kept",
            )
        )
        checks.append(
            (
                "ZTF point sources AST or unlike >= 80%",
                z["real_stamps_ast_or_unlike"] >= 0.80,
                f"{pct(z['real_stamps_ast_or_unlike'])}%",
            )
        )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, action="append", required=True, help="repeat to compare models"
    )
    parser.add_argument("--tracklets", type=int, default=1000, help="real, and as many bogus")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--sets",
        default="nominal,stamp-63,stamp-30,psf-broad,psf-sharp,psf-elongated,bad-subtraction,ztf,"
        "ztf-file-order",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=ROOT / "var" / "cache" / "bench-novelty",
        help="where simulated sets are kept ('' for none)",
    )
    parser.add_argument(
        "--without-seeing",
        action="store_true",
        help="hide each exposure's seeing (fwhm_px) from the models, as a survey that does not "
        "send it",
    )
    parser.add_argument(
        "--mixed",
        type=int,
        default=0,
        help="also this many mixed linkages a simulated set (the <set>-mixed sets)",
    )
    parser.add_argument(
        "--thresholds",
        default="",
        help="also issue 25's checks at these thresholds (comma-separated), every model: what "
        "a threshold chosen for more recall would give",
    )
    parser.add_argument(
        "--noise-truth",
        default="",
        help="simulated sets (comma-separated) whose independent bogus draws are also counted by "
        "whether their detections are noise peaks (each made again from the simulator: minutes "
        "a set)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args()
    sweep = [float(t) for t in args.thresholds.split(",") if t.strip()]
    cache = args.cache if str(args.cache) else None

    from classifier.inference import load_model

    models = []
    for path in args.model:
        model = load_model(path, device="cpu")
        if model.novelty is None:
            raise SystemExit(f"{path} has no novelty reference: python -m classifier novelty")
        print(
            f"model {model.version} threshold {model.threshold:.4f} cues "
            f"{getattr(model.tcn_config, 'cues', 1)}; stamp limit {model.novelty.stamp_limit:.1f}",
            flush=True,
        )
        models.append(model)
    print(
        f"{platform.node()} {os.cpu_count()} cores; {args.tracklets} real and as many bogus a set; "
        f"the exposure's seeing {'hidden' if args.without_seeing else 'sent'}"
    )
    report = {
        "tracklets": args.tracklets,
        "seeing_sent": not args.without_seeing,
        "models": {m.version: {"threshold": m.threshold, "sets": {}} for m in models},
    }
    nominal = None
    kept_sets: dict[str, dict] = {m.version: {} for m in models}  # for --thresholds
    names = args.sets.split(",")
    if args.mixed:
        names += [
            f"{n}-mixed" for n in names if not n.startswith("ztf") and not n.startswith("stamp-")
        ]
    for name in names:
        t0 = time.time()
        if name == "ztf":
            data = ztf_tracklets()
        elif name == "ztf-file-order":
            data = ztf_tracklets(linking="file-order")
        elif name.endswith("-mixed"):
            data = cached(
                cache,
                name,
                args.mixed,
                lambda name=name: simulate(
                    shifted(name.removesuffix("-mixed")), args.mixed, args.workers, name, "mixed"
                ),
            )
        elif name.startswith("stamp-"):
            nominal = nominal or cached(
                cache,
                "nominal",
                args.tracklets,
                lambda: simulate(SimConfig(), args.tracklets, args.workers, "nominal"),
            )
            data = cropped(nominal, int(name.split("-")[1]))
        else:
            data = cached(
                cache,
                name,
                args.tracklets,
                lambda name=name: simulate(shifted(name), args.tracklets, args.workers, name),
            )
            if name == "nominal":
                nominal = data
        made = time.time() - t0
        if args.without_seeing and data["meta"].shape[1] > 6:
            data = {**data, "meta": data["meta"][:, :6]}  # features: seeing NaN, not sent
        for model in models:
            seen = assessed(model, data)
            if sweep:  # again, with the motion rule judging down to the lowest threshold asked
                threshold = model.threshold
                model.threshold = min([threshold, *sweep])
                try:
                    kept_sets[model.version][name] = (data, assessed(model, data))
                finally:
                    model.threshold = threshold
            result = figures(model, data, seen=seen)
            result["simulation_seconds"] = round(made, 1)
            report["models"][model.version]["sets"][name] = result
            print(f"[{model.version}]", end=" ")
            print_set(name, result)
            if name in args.noise_truth.split(","):
                result["independent_by_noise"] = noise_truth(name, data, seen, model)
                print(
                    f"{'':18}independent bogus rejected, by noise peaks among the detections: "
                    + ", ".join(
                        f"{g} {pct(v['rejected']).strip()}% (n={v['tracklets']})"
                        for g, v in result["independent_by_noise"].items()
                    )
                )
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1))
    for model in models:
        checks = acceptance(report["models"][model.version]["sets"])
        report["models"][model.version]["acceptance"] = [
            {"check": c, "met": ok, "figure": f} for c, ok, f in checks
        ]
        print(f"\nissue 25's checks, model {model.version}:")
        for c, ok, f in checks:
            print(f"  {'met    ' if ok else 'NOT met'}  {c}: {f}")
    for model in models if sweep else []:
        print(f"\nissue 25's checks at other thresholds, model {model.version}:")
        report["models"][model.version]["thresholds"] = {}
        for threshold in sweep:
            sets = {
                name: figures(model, data, threshold, seen)
                for name, (data, seen) in kept_sets[model.version].items()
            }
            checks = acceptance(sets)
            report["models"][model.version]["thresholds"][str(threshold)] = [
                {"check": c, "met": ok, "figure": f} for c, ok, f in checks
            ]
            print(f"  threshold {threshold:.4f}:")
            for c, ok, f in checks:
                print(f"    {'met    ' if ok else 'NOT met'}  {c}: {f.split('; too few')[0]}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""How far the physical cues can tell a mixed linkage from one mover: no model, only the cues.

    .venv/bin/python bench/mixed_cues.py [--sets nominal,psf-broad] [--tracklets 500]
        [--mixed 200] [--cache var/cache/bench-novelty] [--cues 5|6]
        [--oracle [--icn MODEL.pt] [--bogus]]

For each simulated set of bench/novelty.py (the very same cached tracklets), the cues of every
real tracklet and of every mixed linkage (`classifier.features.measure`, as scoring computes
them, the exposure's seeing sent): for each tracklet cue, the real tracklets' median and the
value that keeps 99.6% of them (issue 25's real recall), and the share of each mixed kind on the
real side of it, and what a cut on all of them at once keeps and rejects. A mixed linkage
inside every one of those limits looks like one mover to these cues: what a model can reject
of such linkages beyond the cut has to come from the stamps, or from a trade of real recall.
The chi^2 is cue set 5's (`--cues 5`, the default: the unweighted fit's residuals in the matched
filter's errors) or cue set 6's (`--cues 6`: the fit weighted by those errors).
With --oracle, every cue the cue set's network reads, at once, by a small network trained on
the set's own conditions (5-fold, scored out of fold): an upper bound on what the cues allow,
with no shift between training and test; with --icn, the stamps' class probabilities by that
model's ICN as well (everything its TCN reads); with --bogus, the set's own bogus tracklets of
every kind against its real ones too (what every input together rejects at 99.6% real recall
under conditions a model was not trained for, were it trained for them).
And the motion significance (rate over its error, in the matched filter's errors) of the real
tracklets and of the set's stationary variable stars, against 3 sigma.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from novelty import cached, shifted, simulate  # noqa: E402

from classifier import motion  # noqa: E402
from classifier.features import (  # noqa: E402
    TRACKLET_FEATURES,
    batch_raw,
    detection_inputs,
    tracklet_inputs,
)

KEEP = 0.996
# the cues a mixed linkage shows as more than one mover: misfit, magnitudes
JOINT = {
    cues: ("fit_rms_arcsec", "mag_range", chi2)
    for cues, chi2 in ((5, "chi2_dof_filtered"), (6, "chi2_dof_weighted"))
}


def _rows(data: dict, which: np.ndarray) -> np.ndarray:
    """The detections' rows of the tracklets `which` of a set, in order."""
    starts = np.concatenate([[0], np.cumsum(data["lengths"])])
    return np.concatenate([np.arange(starts[t], starts[t + 1]) for t in which] + [[]]).astype(int)


def tracklet_cues(data: dict, which: np.ndarray, detections: bool = False):
    """The tracklet cues (TRACKLET_FEATURES' columns) of the tracklets `which` of a set, as
    scoring measures them (`classifier.features.batch_raw`); with `detections`, the
    per-detection cues too."""
    rows = _rows(data, which)
    det, trk = batch_raw(data["meta"][rows], data["stamps"][rows], data["lengths"][which])
    return (det, trk) if detections else trk


def oracle_inputs(data: dict, which: np.ndarray, model=None, cues: int = 5) -> np.ndarray:
    """Every cue the TCN of cue set `cues` reads, as its inputs: the tracklet's, and each detection
    input's mean, minimum and maximum over the tracklet's detections; with `model`, its ICN's
    class probabilities of each stamp too (pooled the same way)."""
    det, trk = tracklet_cues(data, which, detections=True)
    d = detection_inputs(det, cues)
    if model is not None:
        rows = _rows(data, which)
        seen = model.assess(data["stamps"][rows], data["lengths"][which], data["meta"][rows])
        d = np.concatenate([d, seen.probabilities], axis=1)
    bounds = np.concatenate([[0], np.cumsum(data["lengths"][which])])
    pooled = [
        np.concatenate([d[a:b].mean(0), d[a:b].min(0), d[a:b].max(0)])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return np.concatenate([tracklet_inputs(trk, cues), np.stack(pooled)], axis=1)


def oracle(
    real: np.ndarray, mixed: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores of a small MLP trained on these very conditions to tell mixed
    linkages (1) from real tracklets (0): an upper bound on what a network can make of the
    cues here, with no shift between training and test. Returns (scores of real, of mixed)."""
    import torch

    torch.manual_seed(seed)
    x = np.concatenate([real, mixed]).astype(np.float32)
    y = np.concatenate([np.zeros(len(real)), np.ones(len(mixed))]).astype(np.float32)
    fold = np.random.default_rng(seed).permutation(len(x)) % folds
    out = np.zeros(len(x), np.float32)
    for k in range(folds):
        train, test = fold != k, fold == k
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        xt = torch.from_numpy((x[train] - mean) / std)
        yt = torch.from_numpy(y[train])
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1),
        )  # fmt: skip
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
        weight = torch.tensor(float((yt == 0).sum() / max(1, (yt == 1).sum())))
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
        for _ in range(400):
            opt.zero_grad()
            loss_fn(net(xt)[:, 0], yt).backward()
            opt.step()
        with torch.no_grad():
            out[test] = net(torch.from_numpy((x[test] - mean) / std))[:, 0].numpy()
    return out[: len(real)], out[len(real) :]


def print_bogus_oracle(data: dict, real_in: np.ndarray, icn, cues: int) -> None:
    """The oracle on the set's own bogus tracklets against its real ones (`real_in`: their
    inputs): the share rejected at 99.6% real recall, in all and by kind."""
    which = np.flatnonzero(~data["real"])
    bogus_in = oracle_inputs(data, which, icn, cues)
    real_out, bogus_out = oracle(real_in, bogus_in)
    rejected = bogus_out > np.quantile(real_out, KEEP)
    kinds = np.array(data["kinds"])[which]
    by_kind = ", ".join(
        f"{k} {100 * rejected[kinds == k].mean():.1f}% (n={int((kinds == k).sum())})"
        for k in sorted(set(kinds), key=lambda k: rejected[kinds == k].mean())
    )
    print(
        f"  oracle on every cue at once, the set's bogus: rejects {100 * rejected.mean():.1f}% "
        f"of {len(bogus_out)} with {100 * (real_out <= np.quantile(real_out, KEEP)).mean():.1f}% "
        f"of {len(real_out)} real kept (trained on this set's own conditions, scored out of fold"
        + (f"; with {icn.version}'s ICN probabilities)" if icn else ")")
    )
    print(f"    by kind: {by_kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="nominal,psf-broad")
    parser.add_argument("--tracklets", type=int, default=500, help="real, and as many bogus")
    parser.add_argument("--mixed", type=int, default=200, help="mixed linkages a set")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "bench-novelty")
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="also an MLP trained on each set's own cues (5-fold, out of fold): how many mixed "
        "linkages of each kind every cue together rejects at 99.6%% real recall",
    )
    parser.add_argument(
        "--icn",
        type=Path,
        default=None,
        help="with --oracle: also this model's ICN class probabilities of every stamp",
    )
    parser.add_argument(
        "--bogus",
        action="store_true",
        help="with --oracle: also the set's own bogus tracklets (every kind, as bench/novelty.py "
        "draws them) against its real ones: how many every cue together rejects at 99.6%% real "
        "recall under the set's conditions",
    )
    parser.add_argument(
        "--cues",
        type=int,
        choices=sorted(JOINT),
        default=5,
        help="whose chi^2 and inputs: cue set 5 (the unweighted fit's) or 6 (the weighted fit's)",
    )
    args = parser.parse_args()
    joint = JOINT[args.cues]
    if (args.icn is not None or args.bogus) and not args.oracle:
        parser.error("--icn and --bogus add to --oracle: give --oracle too")
    print(
        f"{platform.node()}, {os.cpu_count()} cores; {args.tracklets} real tracklets and "
        f"{args.mixed} mixed linkages a set; cue set {args.cues}; each cue cut where it keeps "
        f"{100 * KEEP:.1f}% of reals"
    )
    names = list(TRACKLET_FEATURES)
    icn = None
    if args.icn is not None:
        from classifier.inference import load_model

        icn = load_model(args.icn, device="cpu")
    for name in args.sets.split(","):
        base = cached(
            args.cache,
            name,
            args.tracklets,
            lambda name=name: simulate(shifted(name), args.tracklets, args.workers, name),
        )
        mixed = cached(
            args.cache,
            f"{name}-mixed",
            args.mixed,
            lambda name=name: simulate(shifted(name), args.mixed, args.workers, name, "mixed"),
        )
        real = tracklet_cues(base, np.flatnonzero(base["real"]))
        kinds = np.array(mixed["kinds"])
        print(f"\n== {name}: {len(real)} real tracklets")
        limits = {c: float(np.nanquantile(real[:, names.index(c)], KEEP)) for c in joint}
        for c in joint:
            j = names.index(c)
            print(f"  {c:18s} real: median {np.nanmedian(real[:, j]):7.3f}, "
                  f"{100 * KEEP:.1f}% at or below {limits[c]:7.3f}")  # fmt: skip
        box = np.all([real[:, names.index(c)] <= limits[c] for c in joint], axis=0)
        print(f"  the cut on all three at these values keeps {100 * box.mean():.1f}% of real ones")
        for kind in sorted(set(kinds)):
            cues = tracklet_cues(mixed, np.flatnonzero(kinds == kind))
            inside = np.ones(len(cues), bool)
            parts = []
            for c in joint:
                j = names.index(c)
                within = cues[:, j] <= limits[c]
                inside &= within
                parts.append(
                    f"{c} median {np.nanmedian(cues[:, j]):.3f}, {100 * within.mean():.1f}% inside"
                )
            print(f"  {kind} (n = {len(cues)}): " + "; ".join(parts))
            print(f"    inside every limit at once: {100 * inside.mean():.1f}%; the cut on all "
                  f"three rejects {100 * (1 - inside.mean()):.1f}%")  # fmt: skip
        if args.oracle:
            real_in = oracle_inputs(base, np.flatnonzero(base["real"]), icn, args.cues)
            for kind in sorted(set(kinds)):
                mixed_in = oracle_inputs(mixed, np.flatnonzero(kinds == kind), icn, args.cues)
                real_out, mixed_out = oracle(real_in, mixed_in)
                cut = np.quantile(real_out, KEEP)  # real tracklets at or below it are kept
                print(
                    f"  oracle on every cue at once, {kind}: rejects "
                    f"{100 * (mixed_out > cut).mean():.1f}% of {len(mixed_out)} with "
                    f"{100 * (real_out <= cut).mean():.1f}% of {len(real_out)} real kept "
                    "(trained on this set's own conditions, scored out of fold"
                    + (f"; with {icn.version}'s ICN probabilities)" if icn else ")")
                )
            if args.bogus:
                print_bogus_oracle(base, real_in, icn, args.cues)
        # stationary variable stars: a motion within its errors (the set's own bogus of that kind)
        # (the rule's own measure and cut: classifier.motion)
        stars = tracklet_cues(
            base, np.flatnonzero(np.array(base["kinds"]) == "correlated-variable")
        )
        real_sigma, star_sigma = motion.significance(real), motion.significance(stars)
        cut = motion.STILL_SIGMA
        print(f"  motion significance (filtered errors): real min {np.nanmin(real_sigma):.2f}, "
              f"{int((real_sigma < cut).sum())} of {len(real)} under {cut:g} sigma, "
              f"{int(motion.still(real).sum())} still by the rule; stationary variable stars "
              f"(n = {len(star_sigma)}) max {np.nanmax(star_sigma):.2f}, "
              f"{int((star_sigma < cut).sum())} under {cut:g} sigma, "
              f"{int(motion.still(stars).sum())} still by the rule")  # fmt: skip


if __name__ == "__main__":
    main()

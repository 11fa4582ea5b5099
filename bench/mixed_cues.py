"""How far the physical cues can tell a mixed linkage from one mover: no model, only the cues.

    .venv/bin/python bench/mixed_cues.py [--sets nominal,psf-broad] [--tracklets 500]
        [--mixed 200] [--cache var/cache/bench-novelty]

For each simulated set of bench/novelty.py (the very same cached tracklets), the cues of every
real tracklet and of every mixed linkage (`classifier.features.measure`, as scoring computes
them, the exposure's seeing sent): for each tracklet cue, the real tracklets' median and the
value that keeps 99.6% of them (issue 25's real recall), and the share of each mixed kind on the
real side of it, and what a cut on all of them at once keeps and rejects. A mixed linkage
inside every one of those limits looks like one mover to these cues: what a model can reject
of such linkages beyond the cut has to come from the stamps, or from a trade of real recall.
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
from classifier.features import TRACKLET_FEATURES, batch_raw  # noqa: E402

KEEP = 0.996
# the cues a mixed linkage shows as more than one mover: misfit, magnitudes
JOINT = ("fit_rms_arcsec", "mag_range", "chi2_dof_filtered")


def tracklet_cues(data: dict, which: np.ndarray) -> np.ndarray:
    """The tracklet cues (TRACKLET_FEATURES' columns) of the tracklets `which` of a set, as
    scoring measures them (`classifier.features.batch_raw`)."""
    starts = np.concatenate([[0], np.cumsum(data["lengths"])])
    rows = np.concatenate([np.arange(starts[t], starts[t + 1]) for t in which] + [[]]).astype(int)
    return batch_raw(data["meta"][rows], data["stamps"][rows], data["lengths"][which])[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="nominal,psf-broad")
    parser.add_argument("--tracklets", type=int, default=500, help="real, and as many bogus")
    parser.add_argument("--mixed", type=int, default=200, help="mixed linkages a set")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "bench-novelty")
    args = parser.parse_args()
    print(
        f"{platform.node()}, {os.cpu_count()} cores; {args.tracklets} real tracklets and "
        f"{args.mixed} mixed linkages a set; each cue cut where it keeps {100 * KEEP:.1f}% of reals"
    )
    names = list(TRACKLET_FEATURES)
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
        limits = {c: float(np.nanquantile(real[:, names.index(c)], KEEP)) for c in JOINT}
        for c in JOINT:
            j = names.index(c)
            print(f"  {c:18s} real: median {np.nanmedian(real[:, j]):7.3f}, "
                  f"{100 * KEEP:.1f}% at or below {limits[c]:7.3f}")  # fmt: skip
        box = np.all([real[:, names.index(c)] <= limits[c] for c in JOINT], axis=0)
        print(f"  the cut on all three at these values keeps {100 * box.mean():.1f}% of real ones")
        for kind in sorted(set(kinds)):
            cues = tracklet_cues(mixed, np.flatnonzero(kinds == kind))
            inside = np.ones(len(cues), bool)
            parts = []
            for c in JOINT:
                j = names.index(c)
                within = cues[:, j] <= limits[c]
                inside &= within
                parts.append(
                    f"{c} median {np.nanmedian(cues[:, j]):.3f}, {100 * within.mean():.1f}% inside"
                )
            print(f"  {kind} (n = {len(cues)}): " + "; ".join(parts))
            print(f"    inside every limit at once: {100 * inside.mean():.1f}%; the cut on all "
                  f"three rejects {100 * (1 - inside.mean()):.1f}%")  # fmt: skip
        # stationary variable stars: a motion within its errors (the set's own bogus of that kind)
        # (the rule's own measure and cut: classifier.motion)
        real_sigma = motion.significance(real)
        star_sigma = motion.significance(
            tracklet_cues(base, np.flatnonzero(np.array(base["kinds"]) == "correlated-variable"))
        )
        cut = motion.STILL_SIGMA
        print(f"  motion significance (filtered errors): real min {np.nanmin(real_sigma):.2f}, "
              f"{int(motion.still(real_sigma).sum())} of {len(real)} under {cut:g} sigma; "
              f"stationary variable stars (n = {len(star_sigma)}) max "
              f"{np.nanmax(star_sigma):.2f}, {int(motion.still(star_sigma).sum())} under "
              f"{cut:g} sigma")  # fmt: skip


if __name__ == "__main__":
    main()

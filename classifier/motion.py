"""A tracklet whose motion is not significant is not a mover: the one rule outside the networks.

A linker joins the subtraction residuals of a variable star (or any source at a fixed place)
into a tracklet when their positions scatter about one point within its tolerance; the stamps
are PSF-like and the networks read them as an asteroid's. What separates such a tracklet from a
real mover is physical: its fitted motion is within its astrometric errors. The significance
is the fitted rate over its error, with the errors measured as they are (the SNR of a matched
filter at the exposure's seeing, in the filtered stamp's own noise: `classifier.features`' cue
set 5, `motion_sigma_filtered`), so that it reads alike whatever the survey's pixel scale,
seeing or subtraction. The pixel-noise SNR of the second moments is 2-6x too high where the
subtraction correlated the noise, which would make a star's scatter look like motion.

`STILL_SIGMA` is 3: every simulated variable star (rate 0) lies under it (at most 2.7 sigma)
and every real mover of the nominal ranges over it (lowest 5.4; simulator.md's slowest,
0.05 deg/day, over about half an hour).

No detected motion is not evidence of no motion where the errors are too large to have seen the
slowest mover a linker reports (`SLOWEST_MOVER_DEG_DAY`): under seeing broader than any trained
on (5.5-7 px), 19 of 2,000 faint slow real movers lay under 3 sigma, with the networks scoring
most of them over 0.75, and a one-sided test threw them away. So a tracklet is still only where
its motion is both under `STILL_SIGMA` from zero and at least `SLOWEST_EXCLUDED_SIGMA` below the
slowest mover's: the positions must tell the two apart. Where they cannot, the rule says
nothing and the networks' score stands (and a rate below the trained range flags the tracklet
unlike training, so it stays in the to-review queue): real first.

The rule caps a tracklet's score below the model's threshold (`cap`), so that everything that
reads a score (the queue, audits, summaries, the promotion rule) treats it as rejected; the
networks' own score and the significance are kept in the tracklet's reason. A tracklet the model
finds unlike its training data still stays in the to-review queue, as every such tracklet does.
"""

from __future__ import annotations

import numpy as np

STILL_SIGMA = 3.0  # a motion under this many times its own error is no detected motion
# the slowest real mover a linker reports (simulator.md's range starts here, as the linkers of
# ATLAS-like surveys do); a tracklet is still only where its positions exclude this motion by
# SLOWEST_EXCLUDED_SIGMA of their error
SLOWEST_MOVER_DEG_DAY = 0.05
SLOWEST_EXCLUDED_SIGMA = 3.0


def significance(trk_raw: np.ndarray) -> np.ndarray:
    """(T,) the motion significance the rule reads, from raw tracklet cues
    (`classifier.features.TRACKLET_FEATURES` columns; NaN where not measured)."""
    from classifier.features import TRACKLET_FEATURES

    return np.asarray(trk_raw)[:, TRACKLET_FEATURES.index("motion_sigma_filtered")]


def slowest_excluded(trk_raw: np.ndarray) -> np.ndarray:
    """(T,) how many of its own errors the fitted motion lies below the slowest mover's
    (`SLOWEST_MOVER_DEG_DAY`): (slowest - rate) / the rate's error, the error recovered from the
    raw cues as rate / significance. +inf where the positions do not move at all (no error to
    recover, nothing moved), NaN where the significance was not measured."""
    from classifier.features import TRACKLET_FEATURES

    raw = np.asarray(trk_raw, dtype=np.float64)
    rate = raw[:, TRACKLET_FEATURES.index("rate_deg_day")]
    sigma = significance(raw)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = rate / sigma
        out = (SLOWEST_MOVER_DEG_DAY - rate) / error
    out = np.where(np.isfinite(sigma) & (rate <= 0), np.inf, out)
    return np.where(np.isfinite(sigma), out, np.nan)


def still(trk_raw: np.ndarray) -> np.ndarray:
    """True where a tracklet's motion is measured, under `STILL_SIGMA` of its error, and at
    least `SLOWEST_EXCLUDED_SIGMA` of it below the slowest mover's: its positions say it does
    not move, and could have seen it if it did."""
    excluded = slowest_excluded(trk_raw)  # NaN, so never still, where not measured
    with np.errstate(invalid="ignore"):
        return (significance(trk_raw) < STILL_SIGMA) & (excluded >= SLOWEST_EXCLUDED_SIGMA)


def cap(scores: np.ndarray, is_still: np.ndarray, threshold: float) -> np.ndarray:
    """The scores with each still tracklet's at most half the threshold (below it, whatever
    the threshold; the networks' order kept among scores already lower)."""
    out = np.asarray(scores, dtype=np.float32).copy()
    out[is_still] = np.minimum(out[is_still], np.float32(threshold / 2))
    return out


def reason(significance: float, excluded: float, network_score: float) -> str:
    """Why a still tracklet's score was capped, in words for the reviewer."""
    slowest = (
        ""
        if not np.isfinite(excluded)
        else (f", {excluded:.1f}σ below the slowest mover's ({SLOWEST_MOVER_DEG_DAY:g}°/day)")
    )
    return (
        f"motion {significance:.1f}σ of its error, under {STILL_SIGMA:.0f}σ{slowest}: a source "
        f"that does not move (the networks scored it {network_score:.3f})"
    )

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
0.05 deg/day, over about half an hour); under seeing broader than any trained on (5.5-7 px), 1
of 500 real movers lies under it (`bench/novelty.py`, docs/model.md). A real mover slower than its
own errors cannot be told from a star by its positions: the rule trades it for the stars.

The rule caps a tracklet's score below the model's threshold (`cap`), so that everything that
reads a score (the queue, audits, summaries, the promotion rule) treats it as rejected; the
networks' own score and the significance are kept in the tracklet's reason. A tracklet the model
finds unlike its training data still stays in the to-review queue, as every such tracklet does.
"""

from __future__ import annotations

import numpy as np

STILL_SIGMA = 3.0  # a motion under this many times its own error is no detected motion


def significance(trk_raw: np.ndarray) -> np.ndarray:
    """(T,) the motion significance the rule reads, from raw tracklet cues
    (`classifier.features.TRACKLET_FEATURES` columns; NaN where not measured)."""
    from classifier.features import TRACKLET_FEATURES

    return np.asarray(trk_raw)[:, TRACKLET_FEATURES.index("motion_sigma_filtered")]


def still(significance: np.ndarray) -> np.ndarray:
    """True where a tracklet's motion significance is measured and under `STILL_SIGMA`."""
    significance = np.asarray(significance, dtype=np.float64)
    return np.isfinite(significance) & (significance < STILL_SIGMA)


def cap(scores: np.ndarray, is_still: np.ndarray, threshold: float) -> np.ndarray:
    """The scores with each still tracklet's at most half the threshold (below it, whatever
    the threshold; the networks' order kept among scores already lower)."""
    out = np.asarray(scores, dtype=np.float32).copy()
    out[is_still] = np.minimum(out[is_still], np.float32(threshold / 2))
    return out


def reason(significance: float, network_score: float) -> str:
    """Why a still tracklet's score was capped, in words for the reviewer."""
    return (
        f"motion {significance:.1f}σ of its error, under {STILL_SIGMA:.0f}σ: a source that "
        f"does not move (the networks scored it {network_score:.3f})"
    )

"""The motion rule (classifier.motion): a tracklet whose motion is within its errors is not a
mover, whatever the networks made of its stamps; a real mover's score is left alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier import motion
from classifier.datasets import BOGUS_INDEX_OFFSET

# the second robust candidate: its networks pass 2 of these 24 variable stars (the baseline's
# none, in its own simulator's ranges)
ROBUST = Path(__file__).resolve().parents[2] / "models" / "robust" / "screening-61190e642c3183f7.pt"
SEED = 20261206


def as_arrays(tracklets) -> tuple[np.ndarray, list[int], np.ndarray]:
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections])
    meta = np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for t in tracklets for d in t.detections]
    )
    return stamps.astype(np.float32), [len(t.detections) for t in tracklets], meta


@pytest.fixture(scope="module")
def model():
    from classifier.inference import Runtime, load_model

    return load_model(ROBUST, runtime=Runtime(threads=2))


@pytest.fixture(scope="module")
def variable_stars():
    """Simulated variable stars (a source at a fixed place whose subtraction residuals a
    linker joined), 24 of them."""
    from classifier.tracklets import make_tracklet

    found, index = [], BOGUS_INDEX_OFFSET
    while len(found) < 24:
        t = make_tracklet(SEED, index, False, glare=False, bogus_kind="correlated")
        if t.latents["correlated_kind"] == "variable":
            found.append(t)
        index += 1
    return as_arrays(found)


@pytest.fixture(scope="module")
def real_movers():
    from classifier.tracklets import make_tracklet

    return as_arrays([make_tracklet(SEED, i, True, glare=False) for i in range(40)])


def test_no_variable_star_passes_though_the_networks_pass_some(model, variable_stars) -> None:
    stamps, lengths, meta = variable_stars
    out = model.assess(stamps, lengths, meta)
    unlike = np.array([bool(r) for r in out.unlike_training])
    assert not ((out.scores >= model.threshold) & ~unlike).any(), out.scores
    capped = [r for r in out.not_moving if r]
    # the networks alone passed some of them (the rule is what rejects them)
    passed = [float(r.split("scored it ")[1].rstrip(")")) for r in capped]
    assert sum(p >= model.threshold for p in passed) >= 2, out.not_moving
    assert all("under 3σ, " in r and "below the slowest mover's" in r for r in capped), capped
    assert not unlike.any(), out.unlike_training


def test_real_movers_keep_their_scores(model, real_movers) -> None:
    stamps, lengths, meta = real_movers
    out = model.assess(stamps, lengths, meta)
    assert out.not_moving == [""] * len(lengths)
    _, network, _, _ = model._network(stamps, np.asarray(lengths), meta)
    np.testing.assert_array_equal(out.scores, network)
    assert (out.scores >= model.threshold).mean() >= 0.95


def test_the_evaluation_applies_the_rule_as_scoring_does(model, variable_stars) -> None:
    """`classifier.evaluate.score_set` (the model card's figures, the promotion rule) reads the
    significance from the set's measured cues: no variable star passes there either, though
    the networks' own scores (`motion_rule=False`, what thresholds are chosen on) pass some."""
    from classifier.datasets import TrackletSet
    from classifier.evaluate import score_set
    from classifier.features import batch_raw
    from classifier.preprocess import prepare

    stamps, lengths, meta = variable_stars
    det_raw, trk_raw = batch_raw(meta, stamps, lengths)
    tset = TrackletSet(
        images=prepare(stamps, model.preprocessing, fwhm=meta[:, 6]).astype(np.float16),
        lengths=np.asarray(lengths),
        real=np.zeros(len(lengths), bool),
        kinds=["correlated-variable"] * len(lengths),
        det_classes=["SCAR"] * len(stamps),
        det_snr=np.zeros(len(stamps)),
        meta=meta,
        det_raw=det_raw,
        trk_raw=trk_raw,
    )
    _, networks = score_set(model, tset, motion_rule=False)
    assert (networks >= model.threshold).sum() >= 2, networks
    _, scores = score_set(model, tset)
    assert not (scores >= model.threshold).any(), scores
    assert (scores[networks > model.threshold / 2] <= model.threshold / 2).all()


def trk_rows(rates: list[float], significances: list[float]) -> np.ndarray:
    """Raw tracklet cue rows with these fitted rates (deg/day) and motion significances."""
    from classifier.features import TRACKLET_FEATURES

    rows = np.zeros((len(rates), len(TRACKLET_FEATURES)))
    rows[:, TRACKLET_FEATURES.index("rate_deg_day")] = rates
    rows[:, TRACKLET_FEATURES.index("motion_sigma_filtered")] = significances
    return rows


def test_the_cap_keeps_lower_scores_and_ignores_what_was_not_measured() -> None:
    scores = np.array([0.9, 0.01, 0.9, 0.9], np.float32)
    # errors of 0.002 deg/day: the slowest mover (0.05) would show 25 sigma
    still = motion.still(trk_rows([0.002, 0.001, 0.002, 0.014], [1.0, 0.5, np.nan, 7.0]))
    assert still.tolist() == [True, True, False, False]
    capped = motion.cap(scores, still, threshold=0.2)
    np.testing.assert_allclose(capped, [0.1, 0.01, 0.9, 0.9])
    assert scores[0] == np.float32(0.9)  # a copy


def test_no_motion_is_only_stillness_where_the_slowest_mover_would_have_shown() -> None:
    """Two tracklets, each fitted at 1.5 sigma: with an error of 0.004 deg/day the slowest
    mover (0.05) would have shown at 12.5 sigma, so the first is still; with 0.02 it would
    have shown at 2.5 sigma, so the second's positions cannot tell it from a slow mover."""
    rows = trk_rows([0.006, 0.03], [1.5, 1.5])
    np.testing.assert_allclose(motion.slowest_excluded(rows), [11.0, 1.0])
    assert motion.still(rows).tolist() == [True, False]
    # positions that did not move at all: nothing to recover an error from, and still
    assert motion.still(trk_rows([0.0], [0.0])).tolist() == [True]
    reason = motion.reason(1.5, 11.0, 0.97)
    assert "11.0σ below the slowest mover's (0.05°/day)" in reason
    assert "a source that does not move (the networks scored it 0.970)" in reason


def test_faint_slow_movers_under_broad_seeing_are_not_found_still() -> None:
    """Seeing of 5.5-7 px (broader than any trained on): the faint real movers at 0.05-0.09
    deg/day that a one-sided rule (motion under 3 sigma) capped, though the networks passed
    them, are not found still: their errors could not have seen the slowest mover. (Variable
    stars under that seeing are still only where theirs could: about half of them, the rest
    left to the networks; nominal stars are all still, the first test.)"""
    from dataclasses import replace

    from classifier.features import batch_raw
    from classifier.simulate import SimConfig
    from classifier.tracklets import make_tracklet

    base = SimConfig()
    broad = replace(
        base, conditions=replace(base.conditions, fwhm_median=6.2, fwhm_range=(5.5, 7.0))
    )
    # bench/novelty.py's psf-broad set: real movers the one-sided rule capped
    movers = [make_tracklet(20261124, i, True, broad, glare=False) for i in (5, 514, 866, 1042)]
    stamps, lengths, meta = as_arrays(movers)
    _, trk = batch_raw(meta, stamps, lengths)
    assert (motion.significance(trk) < motion.STILL_SIGMA).all()  # the old rule's verdict
    assert not motion.still(trk).any(), motion.slowest_excluded(trk)

"""Cue set 6: cue set 5 with the chi^2 of the motion fit weighted by each detection's own error
(classifier.features.weighted_chi2), so that a real mover's chi^2 follows chi^2 whatever the
spread of its errors (the seeing, the SNR); cue set 5 models score as before."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from classifier.features import (
    CUES,
    DETECTION_COLUMNS,
    DETECTION_FEATURES,
    TRACKLET_COLUMNS,
    TRACKLET_FEATURES,
    TRACKLET_INPUT_FEATURES,
    _linear_fit,
    batch_inputs,
    batch_raw,
    tracklet_inputs,
    weighted_chi2,
)
from tests.classifier.test_cue_set5 import synthetic_tracklets

N_DETECTIONS = 4
DOF = 2 * (N_DETECTIONS - 2)


def _axis_chi2s(rng: np.random.Generator, n: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """chi^2 of n one-axis tracklets of N_DETECTIONS positions on a line, each scattered by its
    own error: one detection bright (0.08", the floor), the others faint (0.08-`spread` arcsec,
    log-uniform). Returns (weighted fit's chi^2, the unweighted fit's residuals in the same
    errors)."""
    weighted, unweighted = np.empty(n), np.empty(n)
    for k in range(n):
        t = np.sort(rng.uniform(0, 0.04, N_DETECTIONS))
        t -= t.mean()
        sigma = np.exp(rng.uniform(np.log(0.08), np.log(spread), N_DETECTIONS))
        sigma[rng.integers(N_DETECTIONS)] = 0.08
        position = 3.0 + 500.0 * t + rng.normal(0, sigma)
        _, residual = _linear_fit(t, position)
        weighted[k] = weighted_chi2(t, residual, sigma)
        unweighted[k] = float(((residual / sigma) ** 2).sum())
    return weighted, unweighted


def test_the_weighted_fit_s_chi2_follows_chi2_however_spread_the_errors_are() -> None:
    """Positions scattered by their own errors, one detection far more precise than the rest (a
    bright exposure among faint ones, the broad-seeing case): the weighted fit's chi^2 per
    degree of freedom has mean 1 and the chi^2 distribution's tail, with errors spread 2x or
    40x alike; the unweighted fit's residuals in those errors grow with the spread (a real
    mover would read as a misfit under broad seeing)."""
    rng = np.random.default_rng(6)
    tails = []
    for spread in (0.16, 3.2):
        # two axes, as `measure` adds along and across
        w1, u1 = _axis_chi2s(rng, 3000, spread)
        w2, u2 = _axis_chi2s(rng, 3000, spread)
        weighted, unweighted = (w1 + w2) / DOF, (u1 + u2) / DOF
        assert weighted.mean() == pytest.approx(1.0, abs=0.06)
        tail = float(np.quantile(weighted, 0.996))
        assert tail == pytest.approx(stats.chi2.ppf(0.996, DOF) / DOF, rel=0.15)
        tails.append((tail, float(np.quantile(unweighted, 0.996))))
    (narrow_w, narrow_u), (wide_w, wide_u) = tails
    assert wide_w < 1.2 * narrow_w
    assert wide_u > 5 * narrow_u  # the unweighted chi^2's tail grows with the spread


def test_weighted_chi2_is_zero_on_a_line_and_takes_any_line_s_residuals() -> None:
    """Positions exactly on a line have chi^2 0, and residuals of any line (not only the
    unweighted fit's) give the same chi^2: the weighted fit absorbs an offset and a rate."""
    t = np.array([-0.02, -0.005, 0.01, 0.015])
    sigma = np.array([0.08, 1.5, 2.0, 0.9])
    assert weighted_chi2(t, 0.4 - 30.0 * t, sigma) == pytest.approx(0.0, abs=1e-18)
    scatter = np.array([0.05, -1.2, 2.1, -0.4])
    assert weighted_chi2(t, scatter + 0.4 - 30.0 * t, sigma) == pytest.approx(
        weighted_chi2(t, scatter, sigma), rel=1e-9
    )
    # all at one time: an offset alone is fitted
    same = np.zeros(3)
    assert weighted_chi2(same, np.array([1.0, 1.0, 1.0]), np.ones(3)) == pytest.approx(0.0)


def test_a_real_mover_under_broad_seeing_fits_its_line_in_the_weighted_fit() -> None:
    """Two real movers of the held-out broad seeing (5.5-7 px) with one bright detection among
    faint ones: cue set 5's chi^2 (unweighted fit) calls them misfits (10-21 per degree of
    freedom), the weighted fit's does not."""
    from dataclasses import replace

    from classifier.simulate import SimConfig
    from classifier.tracklets import make_tracklet

    base = SimConfig()
    cfg = replace(base, conditions=replace(base.conditions, fwhm_median=6.2, fwhm_range=(5.5, 7.0)))
    for index in (50061, 50098):  # bench/novelty.py's seed; found by measuring 120 such movers
        t = make_tracklet(20261124, index, True, cfg, glare=False)
        meta = np.array([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for d in t.detections])
        stamps = np.stack([d.stamp.difference for d in t.detections])
        _, trk = batch_raw(meta, stamps, [len(stamps)])
        unweighted = trk[0, TRACKLET_FEATURES.index("chi2_dof_filtered")]
        weighted = trk[0, TRACKLET_FEATURES.index("chi2_dof_weighted")]
        assert unweighted > 8 and weighted < 2.5, (index, unweighted, weighted)


def test_cue_set_6_reads_the_weighted_chi2_and_set_5_rows_score_as_before() -> None:
    """Set 6's inputs are set 5's but for the chi^2, read from the new column; set 5 reads the
    same inputs from rows stored before set 6 existed (10 tracklet columns) as from new ones;
    set 6 refuses rows without the column, naming what is missing."""
    meta, stamps, lengths = synthetic_tracklets()
    det, trk = batch_raw(meta, stamps, lengths)
    assert trk.shape[1] == len(TRACKLET_FEATURES) == 11
    assert det.shape[1] == len(DETECTION_FEATURES) == DETECTION_COLUMNS[6]
    # each cue set reads its named tracklet features from the columns it is given
    for cues, names in TRACKLET_INPUT_FEATURES.items():
        assert len(names) == CUES[cues][1]
        assert max(TRACKLET_FEATURES.index(n) for n in names) < TRACKLET_COLUMNS[cues]
    five = tracklet_inputs(trk, 5)
    np.testing.assert_array_equal(tracklet_inputs(trk[:, :10], 5), five)
    six = tracklet_inputs(trk, 6)
    assert six.shape == (len(lengths), CUES[6][1])
    np.testing.assert_array_equal(np.delete(six, 6, 1), np.delete(five, 6, 1))
    weighted = trk[:, TRACKLET_FEATURES.index("chi2_dof_weighted")]
    np.testing.assert_allclose(six[:, 6], np.log1p(weighted), rtol=1e-6)
    with pytest.raises(ValueError, match="10 columns; this cue set needs 11"):
        tracklet_inputs(trk[:, :10], 6)
    unmeasured = batch_raw(meta, stamps, lengths, filtered=False)[1]
    assert np.isnan(unmeasured[:, TRACKLET_FEATURES.index("chi2_dof_weighted")]).all()
    with pytest.raises(ValueError, match="not measured"):
        tracklet_inputs(unmeasured, 6)
    # the product's path measures them for a set 6 model, with or without the seeing sent
    for sent in (meta, meta[:, :6]):
        assert np.isfinite(batch_inputs(sent, stamps, lengths, cues=6)[1]).all()


def test_a_model_of_cue_set_6_trains_and_scores(tmp_path) -> None:
    """The robust recipe with cue set 6 on tiny data: the checkpoint says set 6 and the model
    scores raw stamps and metadata."""
    from classifier.checkpoint import load_checkpoint
    from classifier.inference import load_model
    from tests.classifier.conftest import tiny_set_model

    path, _ = tiny_set_model(tmp_path, preset="robust", seed=6, cues=6)
    config = load_checkpoint(path)["tcn"]["config"]
    assert config["cues"] == 6
    model = load_model(path, "cpu")
    meta, stamps, lengths = synthetic_tracklets()
    _, trk = model._raw_cues(meta, stamps, lengths)
    assert np.isfinite(trk[:, TRACKLET_FEATURES.index("chi2_dof_weighted")]).all()
    scores = model.assess(stamps, lengths, meta).scores
    assert np.isfinite(scores).all() and scores.shape == (len(lengths),)


def test_the_cue_set_6_candidate_loads_and_scores_with_its_novelty_reference() -> None:
    """models/robust/screening-6fab83dcba44b5b5.pt (the shipped model's ICN with a cue set 6
    TCN, its card beside it): it loads with its own novelty reference, reads cue set 6 and
    scores raw stamps and metadata."""
    from pathlib import Path

    from classifier.inference import load_model

    path = Path(__file__).resolve().parents[2] / "models/robust/screening-6fab83dcba44b5b5.pt"
    model = load_model(path, "cpu")
    assert model.version == "6fab83dcba44b5b5" and model.tcn_config.cues == 6
    assert model.novelty is not None and model.threshold == pytest.approx(0.0745, abs=1e-4)
    meta, stamps, lengths = synthetic_tracklets()
    scores = model.assess(stamps, lengths, meta).scores
    assert np.isfinite(scores).all() and ((0 <= scores) & (scores <= 1)).all()

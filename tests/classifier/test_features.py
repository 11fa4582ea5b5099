"""The cues a human checks, measured from what ingest stores: motion residuals, trails, mags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classifier.features import (
    CUES,
    DETECTION_FEATURES,
    N_DETECTION_INPUTS,
    N_TRACKLET_INPUTS,
    TRACKLET_FEATURES,
    batch_inputs,
    fit_motion,
    measure,
    trail_moments,
)
from classifier.render import draw_conditions
from classifier.simulate import SimConfig, make_stamp, stamp_rng
from classifier.tracklets import make_tracklet


def _columns(t) -> list[np.ndarray]:
    d = t.detections
    cols = np.array([[x.mjd, x.ra, x.dec, x.mag, x.x, x.y] for x in d]).T
    return [*cols, np.stack([x.stamp.difference for x in d]), np.array([x.fwhm_px for x in d])]


def test_a_fit_of_exact_uniform_motion_leaves_no_residual_even_across_ra_zero() -> None:
    mjd = 61000.1 + np.arange(4) * 0.01
    ra = (359.99 + np.arange(4) * 0.005) % 360  # crosses RA 0
    dec = np.full(4, 10.0) + np.arange(4) * 0.002
    fit = fit_motion(mjd, ra, dec)
    assert fit.rms_arcsec < 0.01
    expected = math.hypot(0.005 * math.cos(math.radians(10.0)), 0.002) / 0.01
    assert fit.rate_deg_day == pytest.approx(expected, rel=1e-3)
    assert 0 < fit.position_angle_deg < 90  # moving north-east


def test_an_offset_detection_shows_as_its_residual() -> None:
    mjd = 61000.1 + np.arange(5) * 0.01
    ra, dec = np.full(5, 50.0), 20.0 + np.arange(5) * 0.001
    dec[2] += 2.0 / 3600  # 2 arcsec north, along the motion
    fit = fit_motion(mjd, ra, dec)
    assert np.argmax(np.abs(fit.residual_along)) == 2
    assert abs(fit.residual_along[2]) > 1.2 and abs(fit.residual_cross).max() < 0.05


@pytest.mark.parametrize("length,angle", [(20.0, 0.3), (35.0, 2.0), (15.0, 1.2)])
def test_the_trail_of_a_bright_streak_is_measured_with_its_length_and_angle(length, angle):
    rng = stamp_rng(11, 1, int(length))
    cfg = SimConfig(field_star_mean=(0.0, 0.0), chip_edge_fraction=0.0)
    cond = draw_conditions(rng, cfg.conditions)
    stamp = make_stamp("STREAK", rng, cfg, cond, {"snr": 200.0, "length": length, "angle": angle})
    measured, measured_angle, elongation = trail_moments(stamp.difference)
    assert measured == pytest.approx(length, rel=0.25)
    diff = abs((measured_angle - angle + math.pi / 2) % math.pi - math.pi / 2)
    assert math.degrees(diff) < 6 and elongation > 2


def test_a_point_source_is_round_and_an_empty_stamp_gives_no_trail() -> None:
    rng = stamp_rng(12, 1, 0)
    cfg = SimConfig(field_star_mean=(0.0, 0.0), chip_edge_fraction=0.0)
    stamp = make_stamp("AST", rng, cfg, None, {"snr": 100.0, "length": 0.0, "angle": 0.0})
    length, _, elongation = trail_moments(stamp.difference)
    assert length < 4 and elongation < 1.6
    assert trail_moments(np.full((100, 100), np.nan)) == (0.0, 0.0, 1.0)


def test_a_real_streaks_trail_follows_the_fitted_motion() -> None:
    agree = []
    for i in range(300):
        t = make_tracklet(8, i, real=True)
        if t.latents["trail_px"] < 7 or t.latents["snr"] < 10 or t.latents["comet"]:
            continue
        f = measure(*_columns(t))
        angle = f.detections[:, DETECTION_FEATURES.index("trail_angle_deg")]
        agree.append(np.median(angle) < 20)
    assert len(agree) >= 3 and np.mean(agree) >= 0.8


def test_rows_come_back_in_the_order_given() -> None:
    t = make_tracklet(9, 2, real=True)
    cols = _columns(t)
    order = np.arange(len(cols[0]))[::-1].copy()
    forward = measure(*cols)
    backward = measure(*[c[order] for c in cols])
    assert np.allclose(backward.detections, forward.detections[order])
    assert np.allclose(backward.tracklet, forward.tracklet)
    assert forward.tracklet[TRACKLET_FEATURES.index("n_detections")] == len(order)


def test_batch_inputs_are_finite_and_shaped_for_the_network() -> None:
    tracklets = [make_tracklet(10, i, real=i % 2 == 0) for i in range(6)]
    meta = np.concatenate(
        [
            np.array([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for d in t.detections])
            for t in tracklets
        ]
    )
    stamps = np.concatenate(
        [np.stack([d.stamp.difference for d in t.detections]) for t in tracklets]
    )
    lengths = [len(t.detections) for t in tracklets]
    det, trk = batch_inputs(meta, stamps, lengths)
    assert det.shape == (sum(lengths), N_DETECTION_INPUTS)
    assert trk.shape == (6, N_TRACKLET_INPUTS)
    assert np.isfinite(det).all() and np.isfinite(trk).all()
    assert np.abs(det).max() < 10 and np.abs(trk).max() < 10
    # cue set 2 keeps set 1's inputs first and adds the physical invariants after them
    det2, trk2 = batch_inputs(meta, stamps, lengths, cues=2)
    assert det2.shape == (sum(lengths), CUES[2][0]) and trk2.shape == (6, CUES[2][1])
    assert np.array_equal(det2[:, :N_DETECTION_INPUTS], det)
    assert np.array_equal(trk2[:, :N_TRACKLET_INPUTS], trk)
    assert np.isfinite(det2).all() and np.abs(det2).max() < 10 and np.abs(trk2).max() < 10
    # cue set 3 adds the source's width over the seeing, the seeing, and whether it was sent
    det3, trk3 = batch_inputs(meta, stamps, lengths, cues=3)
    assert det3.shape == (sum(lengths), CUES[3][0]) and np.array_equal(det3[:, : CUES[2][0]], det2)
    assert np.array_equal(trk3, trk2) and (det3[:, -1] == 1).all()
    # without the seeing (a survey that does not send it; the old 6-column meta) those are 0
    det_unknown, _ = batch_inputs(meta[:, :6], stamps, lengths, cues=3)
    assert np.array_equal(det_unknown[:, : CUES[2][0]], det2)
    assert (det_unknown[:, CUES[2][0] :] == 0).all()
    # cue set 4: set 3 without the seeing itself (the width over it, and whether it was sent)
    det4, _ = batch_inputs(meta, stamps, lengths, cues=4)
    assert np.array_equal(det4, det3[:, [*range(CUES[2][0]), CUES[2][0], CUES[3][0] - 1]])
    # cue set 6: set 5's inputs, with the chi^2 of the fit weighted by the errors
    det5, trk5 = batch_inputs(meta, stamps, lengths, cues=5)
    det6, trk6 = batch_inputs(meta, stamps, lengths, cues=6)
    assert np.array_equal(det6, det5) and np.array_equal(trk6[:, 7], trk5[:, 7])
    assert np.array_equal(trk6[:, :6], trk5[:, :6]) and np.isfinite(trk6).all()
    with pytest.raises(ValueError, match="unknown cue set 7"):
        batch_inputs(meta, stamps, lengths, cues=7)


def test_a_point_source_is_as_wide_as_the_seeing_however_broad_or_sharp() -> None:
    """The width-over-seeing input is a physical invariant: the same for a point source of one
    SNR in 1 px seeing as in 7 px seeing (where the stamp alone reads as a cosmic ray or a
    comet), and clearly above it for a comet's coma in the same seeing."""
    from dataclasses import replace

    from classifier.features import seeing_inputs, source_moments

    point = {}
    for fwhm in (1.1, 2.2, 4.5, 7.0):
        cfg = SimConfig(field_star_mean=(0.0, 0.0), chip_edge_fraction=0.0)
        ranges = replace(cfg.conditions, fwhm_range=(fwhm, fwhm), fwhm_spread=0, fwhm_jitter=0)
        cfg = replace(cfg, conditions=ranges)
        widths = {}
        for cls in ("AST", "COMET"):
            rows = []
            for k in range(6):
                rng = stamp_rng(5, 3, k)
                cond = draw_conditions(rng, cfg.conditions)
                stamp = make_stamp(cls, rng, cfg, cond, {"snr": 80.0})
                sigma = source_moments(stamp.difference)[4]
                rows.append(seeing_inputs(np.array([sigma]), np.array([cond.sci_psf.fwhm]))[0])
            widths[cls] = float(np.median(np.array(rows)[:, 0]))
            assert np.array(rows)[:, 2].tolist() == [1.0] * 6
        assert widths["COMET"] > widths["AST"] + 0.15, (fwhm, widths)
        point[fwhm] = widths["AST"]
    assert max(point.values()) - min(point.values()) < 0.3, point  # within 35% at any seeing
    assert all(abs(v) < 0.6 for v in point.values()), point


def _mover(rate_deg_day: float, n: int = 4, seed: int = 0, snr: float = 30.0, scatter=0.0):
    """n AST stamps of one SNR, moving north at `rate_deg_day` with centroid errors drawn from
    the stamps' own expected error (and `scatter` arcsec more), 15 minutes apart at 1.86"/px."""
    rng = np.random.default_rng(seed)
    cfg = SimConfig()
    cond = draw_conditions(stamp_rng(seed, 9, 0), cfg.conditions)
    stamps = np.stack(
        [
            make_stamp("AST", stamp_rng(seed, 9, i), cfg, cond, {"snr": snr}).difference
            for i in range(n)
        ]
    )
    mjd = 61000.3 + np.arange(n) * 15 / 1440
    sigma = math.sqrt(2) * cond.sci_psf.fwhm / 2.3548 / snr * 1.86  # arcsec per axis
    sigma = math.hypot(sigma, scatter)
    dec = 10 + rate_deg_day * (mjd - mjd[0]) + rng.normal(0, sigma, n) / 3600
    ra = 150 + rng.normal(0, sigma, n) / 3600
    y = 3000 + (dec - 10) * 3600 / 1.86
    x = np.full(n, 3000.0)
    return measure(mjd, ra, dec, np.full(n, 18.0), x, y, stamps)


def test_a_stationary_source_has_no_significant_motion_and_a_mover_has() -> None:
    """A variable star's subtraction residual is a perfect point source that a linker may join
    into a slow "mover": what gives it away is that its motion is within its astrometric errors
    (cue set 2's motion significance), not its stamps."""
    significance = TRACKLET_FEATURES.index("motion_sigma")
    chi2 = TRACKLET_FEATURES.index("chi2_dof")
    still = [_mover(0.0, seed=s).tracklet for s in range(4)]
    moving = [_mover(0.5, seed=s).tracklet for s in range(4)]
    assert max(t[significance] for t in still) < 5
    assert min(t[significance] for t in moving) > 20
    # residuals drawn from the centroid errors stay within the expected errors; a linkage whose
    # positions scatter by 1.5" (the linker's tolerance) is far outside them
    assert all(t[chi2] < 3 for t in still + moving)
    chance = [_mover(0.5, seed=s, scatter=1.5).tracklet for s in range(4)]
    assert min(t[chi2] for t in chance) > 10
    f = _mover(0.5, seed=1)
    snr = f.detections[:, DETECTION_FEATURES.index("snr")]
    assert np.median(snr) == pytest.approx(30, rel=0.5)  # measured from the stamps themselves


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"lengths": [2, 2]}, "lengths sum to 4"),
        ({"meta": np.zeros((3, 5))}, "meta must be"),
        ({"nan": True}, "ra must be finite"),
    ],
)
def test_bad_metadata_is_named(bad, message) -> None:
    meta = np.array(
        [[61000.1 + i * 0.01, 10.0, 5.0 + i * 1e-3, 18.0, 100.0, 100.0 + i] for i in range(3)]
    )
    if bad.get("nan"):
        meta[1, 1] = np.nan
    stamps = np.zeros((3, 100, 100), np.float32)
    with pytest.raises(ValueError, match=message):
        batch_inputs(bad.get("meta", meta), stamps, bad.get("lengths", [3]))


def test_a_magnitude_not_measured_is_left_out_of_the_magnitude_cues() -> None:
    """A NaN magnitude (ingest's sentinel or missing one): dmag 0 for it, the scatter and range
    of the measured ones, every other cue as with the magnitude present."""
    t = make_tracklet(11, 3, real=True)
    cols = _columns(t)
    full = measure(*cols)
    mags = cols[3].copy()
    mags[1] = np.nan
    partial = measure(*cols[:3], mags, *cols[4:])
    dmag = DETECTION_FEATURES.index("dmag")
    assert partial.detections[1, dmag] == 0.0
    kept = np.delete(cols[3], 1)
    scatter, spread = (TRACKLET_FEATURES.index(n) for n in ("mag_scatter", "mag_range"))
    assert partial.tracklet[scatter] == pytest.approx(np.std(kept))
    assert partial.tracklet[spread] == pytest.approx(np.ptp(kept))
    others = [i for i in range(len(DETECTION_FEATURES)) if i != dmag]
    assert np.allclose(partial.detections[:, others], full.detections[:, others])
    none = measure(*cols[:3], np.full_like(mags, np.nan), *cols[4:])
    assert np.isfinite(none.detections).all() and np.isfinite(none.tracklet).all()


@pytest.mark.parametrize("size", [1, 2, 9999, 10000])
def test_the_cues_medians_are_numpys_to_the_bit(size: int) -> None:
    """The medians the cues take by partial selection, all rows at once, over each row's own
    pixels (any number, odd or even), are np.median's: ties, rows with one value or none."""
    from classifier.features import _median
    from classifier.preprocess import middle_pairs

    values = np.random.default_rng(size).normal(0, 5, size).astype(np.float32).astype(np.float64)
    assert _median(values) == np.median(values)
    assert _median(np.round(values)) == np.median(np.round(values))
    rng = np.random.default_rng(size)
    rows = rng.normal(0, 5, (6, size)).astype(np.float32).astype(np.float64)
    rows[1] = np.round(rows[1])
    kept = rng.random((6, size)) < [[1.0], [1.0], [0.5], [0.9], [1 / size], [0.0]]
    low, high, count = middle_pairs(rows, kept)
    for row, keep, lo, hi, n in zip(rows, kept, low, high, count, strict=True):
        assert n == keep.sum()
        if n:
            assert (lo + hi) / 2 == np.median(row[keep])


def test_the_stamp_background_is_the_plain_median_and_mad_to_the_bit() -> None:
    """The fill and noise the cues threshold at are np.median's, so the cues of a stamp are
    what the model was trained on: float32 and float64 stamps, chip edges with odd and even
    counts of finite pixels, ties, a constant stamp (noise 1) and one with nothing finite."""
    from classifier.features import stamp_background

    rng = np.random.default_rng(11)
    stamps = [rng.normal(5, 10, (100, 100)).astype(np.float32) for _ in range(12)]
    for i, cols in enumerate([0, 7, 33, 50, 99]):
        stamps[i][:, :cols] = np.nan
    stamps[5][3, 3] = np.inf
    stamps[6] = np.round(stamps[6])
    stamps[7][:] = 4.0
    stamps[8] = stamps[8].astype(np.float64) + rng.normal(0, 1e-9, (100, 100))
    for stamp in stamps:
        good = np.asarray(stamp, np.float64)[np.isfinite(stamp)]
        fill = np.median(good)
        noise = float(1.4826 * np.median(np.abs(good - fill - np.median(good - fill)))) or 1.0
        img, got_fill, got_noise = stamp_background(stamp)
        assert (got_fill, got_noise) == (fill, noise)
        assert np.array_equal(img, np.where(np.isfinite(stamp), stamp, fill))
    assert stamp_background(np.full((10, 10), np.nan, np.float32)) is None

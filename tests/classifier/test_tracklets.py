"""Tracklets: detections counts, consistent motion and metadata, bogus kinds, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classifier.classes import is_real
from classifier.datasets import tracklet_kind
from classifier.features import fit_motion
from classifier.tracklets import (
    LINKER_MAG_RANGE,
    LINKER_RMS,
    PIXEL_SCALE,
    astrometric_sigma,
    make_tracklet,
    night_mix,
)


def test_it_makes_the_same_tracklet_from_the_same_seed_and_index() -> None:
    a, b = make_tracklet(4, 9, real=True), make_tracklet(4, 9, real=True)
    assert [d.mjd for d in a.detections] == [d.mjd for d in b.detections]
    first_a, first_b = a.detections[0].stamp, b.detections[0].stamp
    np.testing.assert_array_equal(first_a.difference, first_b.difference)


def test_it_moves_real_objects_linearly_with_consistent_metadata() -> None:
    for i in range(8):
        t = make_tracklet(1, i, real=True)
        assert t.real and 3 <= len(t.detections) <= 8
        assert all(is_real(c) for c in t.classes)
        d = t.detections
        mjd = np.array([x.mjd for x in d])
        assert np.all(np.diff(mjd) > 0)
        fit = fit_motion(
            mjd, [x.ra for x in d], [x.dec for x in d], [x.x for x in d], [x.y for x in d]
        )
        # the sky motion and the detector motion agree (a gnomonic camera, 1.86"/px)
        assert fit.rate_deg_day == pytest.approx(fit.pixel_rate * PIXEL_SCALE / 3600, rel=0.01)
        # the positions scatter about the line by their centroid errors, no more
        sigmas = [math.hypot(*astrometric_sigma(x.stamp, t.latents["trail_px"])) for x in d]
        assert fit.rms_arcsec < 4 * max(sigmas) + 0.05
        assert fit.rate_deg_day == pytest.approx(
            t.latents["rate_deg_day"], abs=0.2 + 0.05 * t.latents["rate_deg_day"]
        )
        assert all(x.stamp.latents["det_sigma"] >= 5.0 for x in d)


def test_a_real_movers_residuals_grow_as_it_gets_fainter() -> None:
    faint, bright = [], []
    for i in range(80):
        t = make_tracklet(5, i, real=True)
        d = t.detections
        fit = fit_motion(*np.array([[x.mjd, x.ra, x.dec] for x in d]).T)
        (faint if t.latents["snr"] < 8 else bright if t.latents["snr"] > 25 else []).append(
            fit.rms_arcsec
        )
    assert len(faint) > 10 and len(bright) > 3
    assert np.median(faint) > 1.5 * np.median(bright)
    assert 0.1 < np.median(faint) < 0.8 and np.median(bright) < 0.3


def test_chance_linkages_fit_their_line_only_to_the_linkers_limit() -> None:
    rms = {"independent": [], "correlated-variable": [], "correlated-multistar": []}
    spans = []
    rates = {"correlated-variable": [], "correlated-multistar": []}
    for i in range(220):
        t = make_tracklet(6, 10_000_000 + i, real=False, glare=False)
        kind = tracklet_kind(t)
        d = t.detections
        fit = fit_motion(*np.array([[x.mjd, x.ra, x.dec] for x in d]).T)
        if kind in rms:
            rms[kind].append(fit.rms_arcsec)
        if kind in rates:
            rates[kind].append(fit.rate_deg_day)
        if kind in ("independent", "correlated-multistar"):
            spans.append(np.ptp([x.mag for x in d]))
    assert max(rms["independent"]) <= LINKER_RMS[1] * 1.05
    assert np.median(rms["independent"]) > 0.8  # most sit near the limit
    assert max(rates["correlated-variable"]) < 0.04  # a variable star does not move
    assert min(rates["correlated-multistar"]) > 0.03
    assert np.mean(np.array(spans) <= LINKER_MAG_RANGE) > 0.9


def test_it_makes_the_class_follow_the_trail_length() -> None:
    for i in range(12):
        t = make_tracklet(2, i, real=True)
        for d in t.detections:
            if d.stamp.cls != "COMET":
                long = t.latents["trail_px"] >= d.stamp.latents["conditions"]["fwhm"]
                assert (d.stamp.cls == "STREAK") == long


def test_it_makes_every_bogus_kind_and_no_glare_when_asked() -> None:
    kinds = set()
    for i in range(120):
        t = make_tracklet(3, i, real=False, glare=False)
        assert not t.real
        assert "GLARE" not in t.classes
        kinds.add(tracklet_kind(t))
        if t.kind == "mixed":
            n_real = sum(is_real(c) for c in t.classes)
            if t.latents["mixed_kind"] == "real+bogus":
                assert n_real == 2
            else:  # two different asteroids
                assert n_real == len(t.classes) >= 4
    assert {
        "independent",
        "correlated-spike",
        "correlated-burn",
        "correlated-variable",
        "correlated-multistar",
        "mixed-real+bogus",
    } <= kinds
    assert not any("glare" in k for k in kinds)


def test_it_puts_the_requested_fraction_of_real_tracklets_in_a_night() -> None:
    flags = night_mix(1, 500, 0.02)
    assert sum(flags) == 10 and len(flags) == 500
    assert math.isclose(sum(night_mix(2, 100, 0.5)), 50)


def test_a_rare_bogus_kind_can_be_made_on_demand() -> None:
    """Mixed linkages are 5% of the bogus mix: bench/novelty.py measures them on sets made of
    them alone, and every tracklet asked for is of that kind (both of its sub-kinds appear)."""
    kinds = [
        tracklet_kind(make_tracklet(4, 3_000_000 + i, False, bogus_kind="mixed")) for i in range(12)
    ]
    assert all(k.startswith("mixed-") for k in kinds)
    assert {"mixed-two-asteroids", "mixed-real+bogus"} <= set(kinds)
    with pytest.raises(ValueError, match="unknown bogus kind"):
        make_tracklet(4, 1, False, bogus_kind="glare")

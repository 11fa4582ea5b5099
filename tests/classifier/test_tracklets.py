"""Tracklets: detections counts, consistent motion and metadata, bogus kinds, determinism."""

from __future__ import annotations

import math

import numpy as np

from classifier.classes import is_real
from classifier.tracklets import PIXEL_SCALE, make_tracklet, night_mix


def test_it_makes_the_same_tracklet_from_the_same_seed_and_index() -> None:
    a, b = make_tracklet(4, 9, real=True), make_tracklet(4, 9, real=True)
    assert [d.mjd for d in a.detections] == [d.mjd for d in b.detections]
    first_a, first_b = a.detections[0].stamp, b.detections[0].stamp
    np.testing.assert_array_equal(first_a.difference, first_b.difference)


def test_it_moves_real_objects_linearly_with_consistent_metadata() -> None:
    for i in range(6):
        t = make_tracklet(1, i, real=True)
        assert t.real and 3 <= len(t.detections) <= 8
        assert all(is_real(c) for c in t.classes)
        mjd = np.array([d.mjd for d in t.detections])
        assert np.all(np.diff(mjd) > 0)
        xy = np.array([[d.x, d.y] for d in t.detections])
        speed = np.hypot(*np.diff(xy, axis=0).T) / np.diff(mjd)  # px / day
        expected = t.latents["rate_deg_day"] * 3600 / PIXEL_SCALE
        assert np.allclose(speed, expected, rtol=0.02)
        dec = np.array([d.dec for d in t.detections])
        assert np.allclose(np.diff(dec), np.diff(xy[:, 1]) * PIXEL_SCALE / 3600, atol=1e-9)
        assert all(d.stamp.latents["det_sigma"] >= 5.0 for d in t.detections)


def test_it_makes_the_class_follow_the_trail_length() -> None:
    for i in range(12):
        t = make_tracklet(2, i, real=True)
        for d in t.detections:
            if d.stamp.cls != "COMET":
                long = t.latents["trail_px"] >= d.stamp.latents["conditions"]["fwhm"]
                assert (d.stamp.cls == "STREAK") == long


def test_it_makes_every_bogus_kind_and_no_glare_when_asked() -> None:
    kinds = set()
    for i in range(60):
        t = make_tracklet(3, i, real=False, glare=False)
        assert not t.real
        assert "GLARE" not in t.classes
        kinds.add(t.kind)
        if t.kind == "mixed":
            assert sum(is_real(c) for c in t.classes) == 2
    assert kinds == {"independent", "correlated", "mixed"}


def test_it_puts_the_requested_fraction_of_real_tracklets_in_a_night() -> None:
    flags = night_mix(1, 500, 0.02)
    assert sum(flags) == 10 and len(flags) == 500
    assert math.isclose(sum(night_mix(2, 100, 0.5)), 50)

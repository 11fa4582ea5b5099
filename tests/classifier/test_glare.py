"""Planet glare as simulator.md describes it: a compact knot at the centre with nearly horizontal
bands across or near it, in clusters (fields near a planet), linked into slow, steady movers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from classifier.bundle import is_glare_tracklet, planet_fields, simulate_night
from classifier.features import fit_motion
from classifier.simulate import make_stamp, stamp_rng
from classifier.tracklets import PLANET_RADIUS, PlanetField, make_tracklet


def _sigma(stamp: np.ndarray) -> float:
    finite = stamp[np.isfinite(stamp)]
    return float(np.median(np.abs(finite - np.median(finite))) * 1.4826)


def test_a_glare_stamp_has_a_knot_at_the_centre_and_bands_near_horizontal() -> None:
    knots = set()
    for i in range(30):
        s = make_stamp("GLARE", stamp_rng(3, 1, i))
        lat = s.latents
        knots.add(lat["knot"])
        assert 1 <= lat["bands"] <= 3
        for band in lat["band_params"]:
            assert abs(math.degrees(band["angle"])) <= 9.5  # a crossing adds up to 5 degrees
            assert 1.0 <= band["width"] <= 20.0
        first = lat["band_params"][0]
        if lat["knot"] == "ghost":
            assert 4 <= abs(first["offset"]) <= 40  # beside a band
        else:
            assert abs(first["offset"]) <= 1  # on it, or where two cross
        assert abs(lat["x"]) <= 0.5 and abs(lat["y"]) <= 0.5
    assert knots == {"ghost", "clump", "crossing"}


def test_a_bright_band_runs_along_the_rows_not_the_columns() -> None:
    rng_index = next(
        i
        for i in range(200)
        if make_stamp("GLARE", stamp_rng(4, 1, i)).latents["band_peak_sigma"] > 30
    )
    s = make_stamp("GLARE", stamp_rng(4, 1, rng_index))
    diff = np.nan_to_num(s.difference - np.nanmedian(s.difference))
    # a horizontal band: rows differ from each other far more than columns do
    assert diff.mean(axis=1).std() > 3 * diff.mean(axis=0).std()


def test_glare_tracklets_slide_slowly_along_their_band_with_a_steady_magnitude() -> None:
    field = PlanetField.draw(np.random.default_rng(1))
    found = 0
    for i in range(80):
        t = make_tracklet(8, i, real=False, field=field)
        if not is_glare_tracklet(t):
            continue
        found += 1
        assert set(t.classes) == {"GLARE"}
        d = t.detections
        fit = fit_motion(*np.array([[x.mjd, x.ra, x.dec, x.x, x.y] for x in d]).T)
        assert 0.07 <= fit.rate_deg_day <= 2.6  # 0.1-2 deg/day, measured with its scatter
        dx, dy = d[-1].x - d[0].x, d[-1].y - d[0].y
        assert abs(dy) <= abs(dx) * math.tan(math.radians(6)) + 2.0  # along a near-row band
        knot = [x.stamp.latents["snr"] for x in d]
        assert np.std(np.log(knot)) < 0.1  # the knot's own flux is steady
        # in a planet's field, near the planet's place on the chip
        r = math.hypot(d[0].x - field.planet_x, d[0].y - field.planet_y)
        assert r <= PLANET_RADIUS + 300
    assert found >= 25  # most bogus tracklets near a planet are its glare


def test_a_night_has_glare_only_in_its_planet_fields(tmp_path: Path) -> None:
    assignment = planet_fields(5, 50, 0.4)
    assert sum(f is not None for f in assignment) == 20
    manifest = simulate_night(
        tmp_path / "n",
        seed=5,
        night="2026-11-20",
        n_tracklets=50,
        real_fraction=0.1,
        planet_fraction=0.4,
        progress=False,
        workers=1,
    )
    lines = (manifest.parent / "truth.jsonl").read_text().splitlines()
    truth = [json.loads(line) for line in lines]
    in_field = [t for t in truth if "planet_field" in t["latents"]]
    elsewhere = [t for t in truth if "planet_field" not in t["latents"]]
    assert len(in_field) == 20 and len(elsewhere) == 30
    assert not any("GLARE" in t["classes"] for t in elsewhere)
    assert sum("GLARE" in t["classes"] for t in in_field if not t["real"]) >= 10
    params = json.loads((manifest.parent / "params.json").read_text())
    assert params["planet_fraction"] == 0.4 and params["planet_fields"] == 1
    assert params["glare_tracklets"] == sum(
        (not t["real"]) and t["latents"].get("correlated_kind") == "glare" for t in truth
    )
    with pytest.raises(ValueError, match="planet_fraction"):
        planet_fields(5, 50, 1.5)


def test_a_night_without_planets_has_no_glare(tmp_path: Path) -> None:
    manifest = simulate_night(
        tmp_path / "n", seed=6, night="2026-11-21", n_tracklets=40, progress=False, workers=1
    )
    lines = (manifest.parent / "truth.jsonl").read_text().splitlines()
    truth = [json.loads(line) for line in lines]
    assert not any("GLARE" in t["classes"] for t in truth)

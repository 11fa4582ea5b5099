"""The tracklet page's "Motion and magnitudes" panel: the cues the TCN measures, as
`classifier.features.measure` gives them, a plot of them, and a message where they cannot be
measured."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from django.template.defaultfilters import floatformat
from scipy.stats import chi2

from classifier import motion
from classifier.features import DETECTION_FEATURES, TRACKLET_FEATURES, measure, weighted_residuals
from tests.conftest import make_user
from tests.stamps import detection_rows, fits_bytes, ingest_rows, stamp_pixels

pytestmark = pytest.mark.django_db

OFF_ARCSEC = 1.5  # the middle detection's offset: a mis-linked detection, off the fitted line
N, OFF = 5, 2  # detections, and which one is off the line (the middle: a fit cannot absorb it)


def streak_pixels(seed: int, *, length: float, angle: float, size: int = 100) -> np.ndarray:
    """Noise with a trail of `length` px through the centre at `angle` (radians, x towards y)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 10.0, (size, size))
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    for s in np.linspace(-length / 2, length / 2, 40):
        x0, y0 = c + s * math.cos(angle), c + s * math.sin(angle)
        image += 30.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 4.5)
    return image.astype(np.float32)


def broad_pixels(seed: int, size: int = 100) -> np.ndarray:
    """Noise with a faint round source 6 px FWHM wide (broad seeing) at the centre."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 10.0, (size, size))
    yy, xx = np.mgrid[:size, :size]
    c, sigma = (size - 1) / 2, 6.0 / 2.3548
    image += 10.0 * np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * sigma**2))
    return image.astype(np.float32)


def ingest_mislinked(survey_id: str = "M1", *, off_flux: float = 400.0):
    """Five detections of a mover whose stamps trail along the motion on the detector (bright:
    SNR over 100), but for the middle one: a round source of `off_flux` (400: SNR about 10)
    1.5 arcsec north of the line (a mis-linkage)."""

    rows = detection_rows(survey_id, N, seed=3)
    rows[OFF]["dec"] += OFF_ARCSEC / 3600
    for i, row in enumerate(rows[:-1]):
        row["fwhm_px"] = 3.0 + 0.2 * i  # the exposures' seeing; the last detection has none
    motion = math.atan2(15, 20)  # the rows' x/y steps
    files = {
        f"{survey_id}_{i}.fits": fits_bytes(
            stamp_pixels(i, source_flux=off_flux)
            if i == OFF
            else streak_pixels(i, length=14, angle=motion)
        )
        for i in range(N)
    }
    return ingest_rows(survey_id, rows, files)


def measured(tracklet):
    """`classifier.features.measure` on what ingest stored for the tracklet."""
    stamps = tracklet.model_input()
    rows = tracklet.detections.order_by("index").values_list(
        "mjd", "ra", "dec", "mag", "x", "y", "fwhm_px"
    )
    meta = np.asarray(list(rows), dtype=np.float64)
    return measure(*meta[:, :6].T, stamps, meta[:, 6])


def weighted(tracklet, features) -> np.ndarray:
    """(n, 3) residuals along, across and in all (arcsec) about the fit weighted by the
    matched filter's errors, and (n,) those residuals in sigma."""
    mjd = np.asarray(tracklet.detections.order_by("index").values_list("mjd", flat=True))
    column = features.detections[:, [DETECTION_FEATURES.index(n) for n in (
        "resid_along_arcsec", "resid_cross_arcsec",
        "sigma_along_filtered_arcsec", "sigma_cross_filtered_arcsec",
    )]]  # fmt: skip
    along = weighted_residuals(mjd * 24, column[:, 0], column[:, 2])
    cross = weighted_residuals(mjd * 24, column[:, 1], column[:, 3])
    arcsec = np.stack([along, cross, np.hypot(along, cross)], 1)
    return arcsec, np.hypot(along / column[:, 2], cross / column[:, 3])


def cells(page: str, number: int) -> list[str]:
    row = page.split(f'<tr data-detection="{number}">')[1].split("</tr>")[0]
    return [re.sub(r"<[^>]+>", "", cell) for cell in row.split("</td>")[:-1]]


def cells_html(page: str, number: int) -> str:
    return page.split(f'<tr data-detection="{number}">')[1].split("</tr>")[0]


def panel(client, tracklet) -> str:
    page = client.get(f"/tracklets/{tracklet.pk}/").content.decode()
    assert "<h2>Motion and magnitudes</h2>" in page
    return page.split('<section id="cues">')[1].split("</section>")[0]


def test_it_shows_the_cues_that_classifier_features_measures(client, reviewer):
    tracklet = ingest_mislinked()
    client.force_login(reviewer)
    page = panel(client, tracklet)
    features = measured(tracklet)
    residuals, in_sigma = weighted(tracklet, features)
    mjd = list(tracklet.detections.order_by("index").values_list("mjd", flat=True))
    mags = list(tracklet.detections.order_by("index").values_list("mag", flat=True))
    for i, values in enumerate(features.detections):
        cue = dict(zip(DETECTION_FEATURES, values, strict=True))
        angle = (
            f"{floatformat(cue['trail_angle_deg'], 0)}°" if cue["elongation"] >= 1.3 else "round"
        )
        assert cells(page, i + 1) == [
            str(i + 1),
            floatformat((mjd[i] - mjd[0]) * 1440, 1),
            floatformat(residuals[i, 2], 2),
            floatformat(residuals[i, 0], 2),
            floatformat(residuals[i, 1], 2),
            floatformat(mags[i], 2),
            floatformat(cue["dmag"], 2),
            floatformat(cue["trail_px"], 1),
            floatformat(cue["trail_expected_px"], 1),
            floatformat(cue["elongation"], 2),
            angle,
            floatformat(cue["snr_filtered"], 1),
            f"{floatformat(cue['sigma_along_filtered_arcsec'], 2)}/"
            f"{floatformat(cue['sigma_cross_filtered_arcsec'], 2)}",
            floatformat(in_sigma[i], 1),
            "—"
            if np.isnan(cue["fwhm_px"])
            else f"{floatformat(cue['fwhm_px'], 1)} "
            f"({floatformat(cue['psf_sigma_px'] * 2.3548 / cue['fwhm_px'], 2)}×)",
        ], i
    assert [c[-1] == "—" for c in (cells(page, k) for k in range(1, N + 1))] == [False] * 4 + [True]
    summary = dict(zip(TRACKLET_FEATURES, features.tracklet, strict=True))
    for name, digits in (
        ("fit_rms_arcsec", 2),
        ("rate_deg_day", 3),
        ("mag_scatter", 2),
        ("chi2_dof_weighted", 1),
        ("motion_sigma_filtered", 1),
    ):
        shown = re.search(f'data-cue="{name}"[^>]*>([^<]*)<', page).group(1)
        assert shown.rstrip("″σ") == floatformat(summary[name], digits), name
    # the weighted fit's chi^2 is what the columns shown add up to
    np.testing.assert_allclose(
        summary["chi2_dof_weighted"] * 2 * (N - 2), (in_sigma**2).sum(), rtol=1e-5
    )


@pytest.mark.parametrize("off_flux", [400.0, 8000.0], ids=["faint", "bright"])
def test_it_marks_the_mislinked_detection_and_the_trails_that_follow_the_motion(
    client, reviewer, off_flux
):
    """The detection 1.5" off is the one marked, in arcsec and in its own error, and not the
    precise ones beside it (an unweighted fit passes between them and marks them all); whether
    the tracklet is one linear motion is a chi^2 in those errors: a faint detection (SNR about 10)
    1.5" off is about 4 of its errors, suspect (p about 0.01) but not proof, a bright one is many
    errors off and the tracklet is marked as not one linear motion."""
    tracklet = ingest_mislinked(off_flux=off_flux)
    client.force_login(reviewer)
    page = panel(client, tracklet)
    features = measured(tracklet)
    residuals, in_sigma = weighted(tracklet, features)
    assert page.count("more than 1″ off") == 1
    assert "more than 1″ off" in cells_html(page, OFF + 1)
    assert residuals[OFF, 2] > 1.0 and in_sigma.argmax() == OFF
    if off_flux < 1000:  # the precise detections define the line: only the faint one is off it
        assert np.delete(residuals[:, 2], OFF).max() < 0.1
        assert np.delete(in_sigma, OFF).max() < 1.0 < 3.0 < in_sigma[OFF]
        assert page.count("σ off the fitted motion") == 1
        assert "σ off the fitted motion" in cells_html(page, OFF + 1)
    summary = dict(zip(TRACKLET_FEATURES, features.tracklet, strict=True))
    dof = 2 * (N - 2)
    p = chi2.sf(summary["chi2_dof_weighted"] * dof, dof)
    fit = re.search(r'<span data-cue="chi2_dof_weighted"([^>]*)>', page).group(1)
    if off_flux < 1000:
        assert 0.001 < p < 0.05
        assert "cue-off" not in fit and f"p = {floatformat(p, 3)}" in fit
    else:
        assert p < 1e-6 and in_sigma[OFF] > 10
        assert 'class="cue-off"' in fit and "not fit one linear motion" in fit
    assert re.search(r'data-cue="motion_sigma_filtered">\d+\.\dσ<', page)  # it does move
    for number in (1, 2, 4, 5):  # streaked along the motion: an angle near 0
        angle = cells(page, number)[10]
        assert angle.endswith("°") and int(angle[:-1]) < 10
    assert cells(page, OFF + 1)[10] == "round"
    assert "0.1–0.5″" in page and "1–2″" in page  # what a real mover and a mis-linkage look like


def test_a_source_that_does_not_move_shows_no_significant_motion(client, reviewer):
    """Five detections of one place (a variable star the linker joined): the motion is within
    its errors and the panel says so; each detection sits on the fit within its error."""
    rows = detection_rows("S1", N, seed=3)
    rng = np.random.default_rng(5)
    for row in rows:
        row["ra"], row["dec"] = (
            rows[0]["ra"] + rng.normal(0, 0.2) / 3600,
            rows[0]["dec"] + rng.normal(0, 0.2) / 3600,
        )
        row["x"], row["y"] = rows[0]["x"], rows[0]["y"]
    files = {f"S1_{i}.fits": fits_bytes(stamp_pixels(i)) for i in range(N)}
    tracklet = ingest_rows("S1", rows, files)
    client.force_login(reviewer)
    page = panel(client, tracklet)
    raw = measured(tracklet).tracklet
    summary = dict(zip(TRACKLET_FEATURES, raw, strict=True))
    # the panel's verdict is the motion rule's, the one that caps the score
    assert summary["motion_sigma_filtered"] < motion.STILL_SIGMA and motion.still(raw[None])[0]
    assert re.search(
        r'data-cue="motion_sigma_filtered" class="cue-off" title="under 3σ of its error[^"]*'
        r'it does not move"',
        page,
    )
    assert "more than 1″ off" not in page


def test_a_slow_faint_tracklet_gets_no_verdict_where_its_errors_could_not_have_seen_a_mover(
    client, reviewer
):
    """Three faint detections in broad seeing over 10 minutes, moving 0.01 deg/day: the motion is
    under 3 of its errors, but so would the slowest mover a linker reports (0.05 deg/day) be; the
    panel says there is no verdict, as the rule (which leaves the score alone) decides."""
    rows = detection_rows("W1", 3, seed=4)
    for i, row in enumerate(rows):
        dt = i * 5 / 1440
        row["mjd"] = rows[0]["mjd"] + dt
        row["ra"], row["dec"] = rows[0]["ra"] + dt * 0.008, rows[0]["dec"] + dt * 0.006
        row["x"], row["y"] = rows[0]["x"] + i * 0.07, rows[0]["y"] + i * 0.05
    files = {f"W1_{i}.fits": fits_bytes(broad_pixels(i)) for i in range(3)}
    tracklet = ingest_rows("W1", rows, files)
    client.force_login(reviewer)
    page = panel(client, tracklet)
    raw = measured(tracklet).tracklet
    summary = dict(zip(TRACKLET_FEATURES, raw, strict=True))
    assert summary["motion_sigma_filtered"] < motion.STILL_SIGMA
    assert not motion.still(raw[None])[0]
    shown = re.search(r'<span data-cue="motion_sigma_filtered"([^>]*)>', page).group(1)
    assert "cue-off" not in shown and "no verdict" in shown


def test_the_cues_plot_is_a_png(client, reviewer):
    tracklet = ingest_mislinked()
    client.force_login(reviewer)
    assert f"/tracklets/{tracklet.pk}/cues.png" in panel(client, tracklet)
    response = client.get(f"/tracklets/{tracklet.pk}/cues.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "private" in response["Cache-Control"]
    assert client.get("/tracklets/999999/cues.png").status_code == 404


def break_stamps_file(tracklet) -> None:
    tracklet.pixels.storage.delete(tracklet.pixels.name)


def break_a_position(tracklet) -> None:
    tracklet.detections.filter(index=1).update(x=float("inf"))


def break_to_one_detection(tracklet) -> None:
    tracklet.detections.filter(index__gt=0).delete()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (break_stamps_file, "is missing"),
        (break_a_position, "x must be finite"),
        (break_to_one_detection, "needs at least two"),
    ],
)
def test_it_says_why_where_the_cues_cannot_be_measured(client, reviewer, breakage, message):
    tracklet = ingest_mislinked()
    breakage(tracklet)
    client.force_login(reviewer)
    page = panel(client, tracklet)
    assert 'id="cues-problem"' in page and message in page and "cue-table" not in page
    png = client.get(f"/tracklets/{tracklet.pk}/cues.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("role", ["pipeline", "consumer", None])
def test_the_cues_plot_is_for_reviewers_and_admins_only(client, role):
    from django.contrib.auth.models import User

    tracklet = ingest_mislinked()
    url = f"/tracklets/{tracklet.pk}/cues.png"
    logged_out = client.get(url)
    assert logged_out.status_code == 302 and logged_out["Location"].startswith("/accounts/login/")
    user = (
        make_user(f"u-{role}", role)
        if role
        else User.objects.create_user("nobody", password="a-long-test-password")
    )
    client.force_login(user)
    refused = client.get(url)
    assert refused.status_code == 403 and "reviewers and admins" in refused.content.decode()
    client.force_login(make_user("root", "admin"))
    assert client.get(url).status_code == 200

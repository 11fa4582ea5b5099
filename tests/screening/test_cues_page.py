"""The tracklet page's "Motion and magnitudes" panel: the cues the TCN measures, as
`classifier.features.measure` gives them, a plot of them, and a message where they cannot be
measured."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from django.template.defaultfilters import floatformat

from classifier.features import DETECTION_FEATURES, TRACKLET_FEATURES, measure
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


def ingest_mislinked(survey_id: str = "M1"):
    """Five detections of a mover whose stamps trail along the motion on the detector, but for
    the middle one: round and 1.5 arcsec north of the line (a mis-linkage)."""

    rows = detection_rows(survey_id, N, seed=3)
    rows[OFF]["dec"] += OFF_ARCSEC / 3600
    for i, row in enumerate(rows[:-1]):
        row["fwhm_px"] = 3.0 + 0.2 * i  # the exposures' seeing; the last detection has none
    motion = math.atan2(15, 20)  # the rows' x/y steps
    files = {
        f"{survey_id}_{i}.fits": fits_bytes(
            stamp_pixels(i) if i == OFF else streak_pixels(i, length=14, angle=motion)
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


def cells(page: str, number: int) -> list[str]:
    row = page.split(f'<tr data-detection="{number}">')[1].split("</tr>")[0]
    return [re.sub(r"<[^>]+>", "", cell) for cell in row.split("</td>")[:-1]]


def panel(client, tracklet) -> str:
    page = client.get(f"/tracklets/{tracklet.pk}/").content.decode()
    assert "<h2>Motion and magnitudes</h2>" in page
    return page.split('<section id="cues">')[1].split("</section>")[0]


def test_it_shows_the_cues_that_classifier_features_measures(client, reviewer):
    tracklet = ingest_mislinked()
    client.force_login(reviewer)
    page = panel(client, tracklet)
    features = measured(tracklet)
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
            floatformat(cue["resid_arcsec"], 2),
            floatformat(cue["resid_along_arcsec"], 2),
            floatformat(cue["resid_cross_arcsec"], 2),
            floatformat(mags[i], 2),
            floatformat(cue["dmag"], 2),
            floatformat(cue["trail_px"], 1),
            floatformat(cue["trail_expected_px"], 1),
            floatformat(cue["elongation"], 2),
            angle,
            floatformat(cue["snr"], 1),
            f"{floatformat(cue['sigma_along_arcsec'], 2)}/"
            f"{floatformat(cue['sigma_cross_arcsec'], 2)}",
            floatformat(
                math.hypot(
                    cue["resid_along_arcsec"] / cue["sigma_along_arcsec"],
                    cue["resid_cross_arcsec"] / cue["sigma_cross_arcsec"],
                ),
                1,
            ),
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
        ("chi2_dof", 1),
        ("motion_sigma", 1),
    ):
        shown = re.search(f'data-cue="{name}"[^>]*>([^<]*)<', page).group(1)
        assert shown.rstrip("″σ") == floatformat(summary[name], digits), name


def test_it_marks_the_mislinked_detection_and_the_trails_that_follow_the_motion(client, reviewer):
    tracklet = ingest_mislinked()
    client.force_login(reviewer)
    page = panel(client, tracklet)
    features = measured(tracklet)
    assert features.detections[OFF, DETECTION_FEATURES.index("resid_arcsec")] > 1.0
    assert page.count("more than 1″ off") == 1
    assert "more than 1″ off" in page.split(f'<tr data-detection="{OFF + 1}">')[1].split("</tr>")[0]
    # in units of the detections' expected errors (bright trails: under 0.1″) the off-line
    # detection pulls the fit so far that the five detections are not one linear motion
    assert re.search(r'data-cue="chi2_dof" class="cue-off" title="[^"]*not fit one linear', page)
    assert re.search(r'data-cue="motion_sigma">\d+\.\dσ<', page)  # it does move
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
    summary = dict(zip(TRACKLET_FEATURES, measured(tracklet).tracklet, strict=True))
    assert summary["motion_sigma"] < 5
    assert re.search(
        r'data-cue="motion_sigma" class="cue-off" title="under 5σ: no significant', page
    )
    assert "more than 1″ off" not in page


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

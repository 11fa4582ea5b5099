"""The ingest service: whole tracklets in one transaction, clear errors, nothing half-written."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from screening.ingest.tracklets import (
    IngestRejected,
    TrackletInput,
    stamp_from_bytes,
    tracklet_ingest,
    tracklets_ingest,
)
from screening.models import Detection, Night, Tracklet
from screening.review.displays import NAN_RGB, SATURATED_RGB, display_png
from tests.conftest import ZTF_DIR, stored_files
from tests.stamps import NIGHT, detection_rows, fits_bytes, npy_bytes, stamp_files, stamp_pixels

pytestmark = pytest.mark.django_db


def tracklet_input(survey_id: str = "T1", *, rows=None, files=None, night=NIGHT) -> TrackletInput:
    rows = detection_rows(survey_id) if rows is None else rows
    files = stamp_files(survey_id) if files is None else files
    return TrackletInput(
        night=night,
        survey_id=survey_id,
        detections=rows,
        stamps={name: stamp_from_bytes(name, data) for name, data in files.items()},
    )


def rejection(tracklet: TrackletInput) -> IngestRejected:
    with pytest.raises(IngestRejected) as info:
        tracklet_ingest(tracklet=tracklet)
    return info.value


def test_it_stores_a_tracklet_with_its_detections_and_derived_files(media_root):
    result = tracklet_ingest(tracklet=tracklet_input())
    assert result.created
    tracklet = Tracklet.objects.get()
    assert (str(tracklet.night), tracklet.survey_id, tracklet.status) == (NIGHT, "T1", "pending")
    assert tracklet.n_detections == 4
    assert tracklet.rate_deg_per_day == pytest.approx(1.0, rel=0.02)
    assert 0 < tracklet.position_angle_deg < 90  # moving north-east
    detections = list(tracklet.detections.order_by("index"))
    assert [d.index for d in detections] == [0, 1, 2, 3]
    first = detections[0]
    assert first.stamp_as_received() == stamp_files("T1")["T1_0.fits"]
    assert tracklet.model_input().shape == (4, 100, 100)
    # one file a tracklet: its model input and its stamps as received
    assert {d.stamp.name for d in detections} == {tracklet.pixels.name}
    # 5 files: the 4 stamps as received and the model's input; no display PNG until viewed
    assert len(stored_files(media_root)) == 1 and not first.display
    assert Image.open(io.BytesIO(display_png(first))).size == (100, 100)
    first.refresh_from_db()
    assert first.display and len(stored_files(media_root)) == 2  # made once, then kept
    assert display_png(first) == first.display.read()


def _display(**detection) -> Image.Image:
    """The display PNG as served (made on first view)."""
    return Image.open(io.BytesIO(display_png(Detection.objects.get(**detection))))


def test_it_marks_nan_and_saturated_pixels_in_distinct_colours():
    pixels = stamp_pixels(7)
    pixels[:, :5] = np.nan
    pixels[50, 50] = 70000.0
    files = stamp_files("T1")
    files["T1_0.fits"] = fits_bytes(pixels, saturate=60000.0)
    tracklet_ingest(tracklet=tracklet_input(files=files))
    png = np.asarray(_display(index=0).convert("RGB"))
    assert tuple(png[10, 2]) == NAN_RGB
    assert tuple(png[50, 50]) == SATURATED_RGB
    assert tuple(png[20, 20]) not in (NAN_RGB, SATURATED_RGB)


def test_it_shows_a_faint_source_above_the_background_in_the_display():
    files = {f"T1_{i}.fits": fits_bytes(stamp_pixels(i, source_flux=400.0)) for i in range(4)}
    tracklet_ingest(tracklet=tracklet_input(files=files))
    grey = np.asarray(_display(index=0).convert("L"))
    assert grey[48:52, 48:52].mean() > grey[:30, :30].mean() + 40


def test_it_ingests_every_real_ztf_difference_cutout():
    paths = sorted(ZTF_DIR.glob("*_difference.fits.gz"))
    chunks = [paths[i : i + 4] for i in range(0, len(paths), 4)]
    if len(chunks[-1]) < 3:
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    for number, chunk in enumerate(chunks):
        survey_id = f"ZTF{number}"
        rows = detection_rows(survey_id, n=len(chunk))
        for row, path in zip(rows, chunk, strict=True):
            row["stamp"] = path.name
        files = {path.name: path.read_bytes() for path in chunk}
        tracklet_ingest(tracklet=tracklet_input(survey_id, rows=rows, files=files))
    assert Detection.objects.count() == len(paths)
    assert set(Detection.objects.values_list("stamp_width", "stamp_height")) == {(63, 63)}
    pixels = Tracklet.objects.first().model_input()
    assert pixels.shape == (4, 100, 100)
    assert np.isnan(pixels[:, :18]).all() and np.isfinite(pixels[:, 50, 50]).all()


def test_it_accepts_png_and_npy_stamps_of_other_sizes():
    files = stamp_files("T1")
    files["T1_1.fits"] = npy_bytes(stamp_pixels(1, size=64))
    files["T1_2.fits"] = npy_bytes(stamp_pixels(2, size=250))
    tracklet_ingest(tracklet=tracklet_input(files=files))
    formats = dict(Detection.objects.values_list("index", "stamp_format"))
    assert formats == {0: "fits", 1: "npy", 2: "npy", 3: "fits"}


def test_it_treats_a_resend_of_the_same_tracklet_as_a_no_op(media_root):
    first = tracklet_ingest(tracklet=tracklet_input())
    again = tracklet_ingest(tracklet=tracklet_input())
    assert not again.created and again.tracklet.pk == first.tracklet.pk
    assert Tracklet.objects.count() == 1 and Detection.objects.count() == 4
    assert len(stored_files(media_root)) == 1


def test_it_refuses_the_same_id_with_other_content_as_a_conflict():
    tracklet_ingest(tracklet=tracklet_input())
    rows = detection_rows("T1")
    rows[2]["mag"] += 0.5
    error = rejection(tracklet_input(rows=rows))
    assert error.status == 409
    assert "already stored with other content" in error.as_dict()["errors"][0]["reason"]
    assert Detection.objects.get(index=2).mag == pytest.approx(detection_rows("T1")[2]["mag"])


def test_the_same_id_on_another_night_is_another_tracklet():
    tracklet_ingest(tracklet=tracklet_input())
    other = "2026-11-25"
    rows, files = detection_rows("T1", night=other, seed=1), stamp_files("T1", seed=1)
    tracklet_ingest(tracklet=tracklet_input(night=other, rows=rows, files=files))
    assert Tracklet.objects.filter(survey_id="T1").count() == 2
    assert not Detection.objects.filter(duplicate_of__isnull=False).exists()


@pytest.mark.parametrize("night", ["2026-11-23", "2026-11-25", "2026-11-26"])
def test_detections_sent_under_another_night_are_refused_naming_their_night(night):
    tracklet_ingest(tracklet=tracklet_input())
    refused = rejection(tracklet_input(night=night))
    assert refused.status == 400
    assert [p.field for p in refused.problems] == [f"detections[{i}].mjd" for i in range(4)]
    assert f"is in the night {NIGHT}, not {night}" in refused.problems[0].reason
    assert Tracklet.objects.count() == 1


@pytest.mark.parametrize(
    ("station", "hours", "night"),
    [
        ("T08", 22.3, "2026-11-24"),  # 11:56 local (Hawaii, UTC-10h22), 12:02 below
        ("T08", 22.4, "2026-11-25"),
        ("M22", 10.5, "2026-11-24"),  # 11:53 local (Sutherland, UTC+1h23)
        ("M22", 10.7, "2026-11-25"),
        ("W68", 16.6, "2026-11-24"),  # 11:53 local (Cerro Pachon, UTC-4h43)
        ("W68", 16.8, "2026-11-25"),
    ],
)
def test_a_detections_night_is_its_stations_local_night(station, hours, night):
    """Noon to noon at the station's longitude, named by its morning (2026-11-24 00:00 UTC is
    MJD 61368): a detection a few minutes either side of local noon is in two different nights."""
    from screening.ingest.stations import local_nights

    mjd = 61368.0 + hours / 24  # hours after 2026-11-24 00:00 UTC; 43 s apart
    rows = [{**row, "station": station, "mjd": mjd + i * 0.0005}
            for i, row in enumerate(detection_rows("N1"))]  # fmt: skip
    assert local_nights([mjd], [station])[0].isoformat() == night
    result = tracklet_ingest(tracklet=tracklet_input("N1", rows=rows, night=night))
    assert result.tracklet.night.date.isoformat() == night


def test_a_detection_already_stored_is_linked_to_the_stored_one_not_stored_again():
    first = tracklet_ingest(tracklet=tracklet_input("T1")).tracklet
    # the same observations under another id (a second linkage of them), one of them moved by
    # 0.4 arcseconds and 0.3 seconds (a re-measurement), one of them replaced
    rows = detection_rows("T1")
    rows[1] = {**rows[1], "ra": rows[1]["ra"] + 0.4 / 3600, "mjd": rows[1]["mjd"] + 0.3 / 86400}
    rows[3] = {**rows[3], "ra": rows[3]["ra"] + 2 / 3600}  # 2 arcseconds away: another one
    files = stamp_files("T1")
    files["T1_3.fits"] = stamp_files("T1", seed=5)["T1_3.fits"]
    second = tracklet_ingest(tracklet=tracklet_input("T1-again", rows=rows, files=files)).tracklet
    stored = {d.index: d.pk for d in first.detections.all()}
    links = {d.index: d.duplicate_of_id for d in second.detections.order_by("index")}
    assert links == {0: stored[0], 1: stored[1], 2: stored[2], 3: None}
    # a third sending links to the first stored, not to the second's link
    third = tracklet_ingest(tracklet=tracklet_input("T1-third")).tracklet
    assert [d.duplicate_of_id for d in third.detections.order_by("index")] == [
        stored[i] for i in range(4)
    ]
    # another station's detection at the same time and place is another observation
    other = [{**row, "station": "T05"} for row in detection_rows("T1")]
    fourth = tracklet_ingest(
        tracklet=tracklet_input("T1-T05", rows=other, files=stamp_files("T1", seed=6))
    ).tracklet
    assert not fourth.detections.filter(duplicate_of__isnull=False).exists()


def test_a_batch_gives_each_tracklet_the_outcome_it_would_have_alone(media_root):
    stored = tracklet_ingest(tracklet=tracklet_input("T1")).tracklet
    bad = detection_rows("T3")
    bad[1]["mag"] = "bright"
    changed = detection_rows("T1")
    changed[2]["mag"] += 0.5
    other_t4 = detection_rows("T4")
    other_t4[0]["mag"] += 0.2
    batch = [
        tracklet_input("T2"),
        tracklet_input("T3", rows=bad),
        tracklet_input("T1"),  # sent before: unchanged
        tracklet_input("T1", rows=changed),  # other content under a stored id: a conflict
        tracklet_input("T2"),  # the batch's own T2 again: unchanged
        tracklet_input("T4"),
        tracklet_input("T4", rows=other_t4),  # the batch's own T4 with other content
    ]
    outcomes = tracklets_ingest(batch)
    kinds = [
        o.status if isinstance(o, IngestRejected) else ("created" if o.created else "unchanged")
        for o in outcomes
    ]
    assert kinds == ["created", 400, "unchanged", 409, "unchanged", "created", 409]
    assert (
        outcomes[2].tracklet.pk == stored.pk and outcomes[4].tracklet.pk == outcomes[0].tracklet.pk
    )
    assert outcomes[1].problems[0].field == "detections[1].mag"
    assert sorted(Tracklet.objects.values_list("survey_id", flat=True)) == ["T1", "T2", "T4"]
    assert Detection.objects.count() == 12 and len(stored_files(media_root)) == 3
    t4 = Tracklet.objects.get(survey_id="T4")
    assert [d.mag for d in t4.detections.order_by("index")] == pytest.approx(
        [r["mag"] for r in detection_rows("T4")]
    )  # the first T4 was stored, not the second


def test_repeats_within_one_batch_are_linked_as_one_by_one():
    rows = detection_rows("T1")
    rows[1] = {**rows[1], "ra": rows[1]["ra"] + 0.4 / 3600, "mjd": rows[1]["mjd"] + 0.3 / 86400}
    rows[3] = {**rows[3], "ra": rows[3]["ra"] + 2 / 3600}
    files = stamp_files("T1")
    files["T1_3.fits"] = stamp_files("T1", seed=5)["T1_3.fits"]
    first, second, third = (
        o.tracklet
        for o in tracklets_ingest(
            [
                tracklet_input("T1"),
                tracklet_input("T1-again", rows=rows, files=files),
                tracklet_input("T1-third"),
            ]
        )
    )
    stored = {d.index: d.pk for d in first.detections.all()}
    links = {d.index: d.duplicate_of_id for d in second.detections.order_by("index")}
    assert links == {0: stored[0], 1: stored[1], 2: stored[2], 3: None}
    assert [d.duplicate_of_id for d in third.detections.order_by("index")] == [
        stored[i] for i in range(4)
    ]


def _bad_file(files: dict[str, bytes], name: str, data: bytes) -> dict[str, bytes]:
    return {**files, name: data}


def _big_nan_free(size: int) -> bytes:
    return fits_bytes(np.zeros((size, size), dtype=np.float32) + 1)


@pytest.mark.parametrize(
    ("index", "data", "reason"),
    [
        (0, b"", "file is empty"),
        (1, fits_bytes(stamp_pixels(9), gz=True)[:700], "gzip stream is truncated"),
        (2, fits_bytes(np.full((100, 100), np.nan, np.float32)), "no finite pixel"),
        (3, b"SIMPLE  =                    T" + b" " * 50 + b"END" + b" " * 2797, "no 2-D image"),
    ],
    ids=["empty", "truncated-gzip", "nan-only", "fits-without-image"],
)
def test_it_rejects_a_bad_stamp_naming_the_file_and_writes_nothing(index, data, reason, media_root):
    files = _bad_file(stamp_files("T1"), f"T1_{index}.fits", data)
    error = rejection(tracklet_input(files=files))
    assert error.status == 400
    problem = error.as_dict()["errors"][0]
    assert problem["file"] == f"T1_{index}.fits"
    assert problem["field"] == f"detections[{index}].stamp"
    assert reason in problem["reason"]
    assert not Tracklet.objects.exists() and not Night.objects.exists()
    assert stored_files(media_root) == []


def test_it_rejects_a_10000_by_10000_image():
    import gzip

    huge = gzip.compress(fits_bytes(np.zeros((10000, 10000), np.float32)), mtime=0)
    error = rejection(tracklet_input(files=_bad_file(stamp_files("T1"), "T1_0.fits", huge)))
    assert "10000x10000 pixels" in error.as_dict()["errors"][0]["reason"]
    assert not Tracklet.objects.exists()


def test_it_rejects_a_file_over_the_size_limit(settings):
    settings.STAMP_MAX_BYTES = 50_000
    big = fits_bytes(np.random.default_rng(0).normal(size=(150, 150)).astype(np.float32))
    error = rejection(tracklet_input(files=_bad_file(stamp_files("T1"), "T1_3.fits", big)))
    assert "larger than the limit of 50000 bytes" in error.as_dict()["errors"][0]["reason"]
    assert not Tracklet.objects.exists()


def test_it_reports_every_problem_of_a_tracklet_at_once():
    rows = detection_rows("T1")
    del rows[1]["mjd"]
    rows[2]["dec"] = 95.0
    rows[3]["ra"] = "east"
    files = stamp_files("T1")
    del files["T1_0.fits"]
    problems = rejection(tracklet_input(rows=rows, files=files)).as_dict()["errors"]
    fields = {p["field"]: p["reason"] for p in problems}
    assert fields["detections[1].mjd"] == "mjd is missing"
    assert "outside -90..90" in fields["detections[2].dec"]
    assert "not a number" in fields["detections[3].ra"]
    assert fields["detections[0].stamp"] == "stamp file was not sent"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda t: {**t, "night": "24/11/2026"}, "night", "not YYYY-MM-DD"),
        (lambda t: {**t, "survey_id": "../etc"}, "tracklet", "letters, digits"),
        (lambda t: {**t, "detections": t["detections"][:2]}, "detections", "3 to 16 detections"),
    ],
    ids=["night", "id", "too-few"],
)
def test_it_validates_tracklet_fields(change, field, reason):
    base = {"night": NIGHT, "survey_id": "T1", "detections": detection_rows("T1")}
    changed = change(base)
    error = rejection(
        tracklet_input(changed["survey_id"], rows=changed["detections"], night=changed["night"])
    )
    assert any(p.get("field") == field and reason in p["reason"] for p in error.as_dict()["errors"])


def test_it_requires_detections_in_time_order():
    rows = detection_rows("T1")
    rows[1]["mjd"], rows[2]["mjd"] = rows[2]["mjd"], rows[1]["mjd"]
    error = rejection(tracklet_input(rows=rows))
    assert "time order" in error.as_dict()["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("mags", "stored", "flags"),
    [
        ([19.0, 99.0, 19.4, 19.2], [19.0, None, 19.4, 19.2], ["", "sentinel 99", "", ""]),
        (
            [19.0, -99.0, "drop", 19.2],
            [19.0, None, None, 19.2],
            ["", "sentinel -99", "missing", ""],
        ),
        (
            [999.9, None, 99.0, 99.0],
            [None] * 4,
            ["sentinel 999.9", "missing", "sentinel 99", "sentinel 99"],
        ),  # fmt: skip
    ],
)
def test_sentinel_or_missing_magnitudes_are_accepted_and_flagged(mags, stored, flags):
    rows = detection_rows("M1")
    for row, mag in zip(rows, mags, strict=True):
        if mag == "drop":
            del row["mag"]
        else:
            row["mag"] = mag
    tracklet = tracklet_ingest(tracklet=tracklet_input("M1", rows=rows)).tracklet
    detections = list(tracklet.detections.order_by("index"))
    assert [d.mag for d in detections] == stored
    assert [d.mag_flag for d in detections] == flags
    measured = [m for m in stored if m is not None]
    if measured:
        assert tracklet.mean_mag == pytest.approx(sum(measured) / len(measured))
    else:
        assert tracklet.mean_mag is None


def test_a_magnitude_outside_the_range_that_is_no_sentinel_is_refused():
    rows = detection_rows("M2")
    rows[1]["mag"] = 41.0
    refused = rejection(tracklet_input("M2", rows=rows))
    assert refused.problems[0].field == "detections[1].mag"
    assert "mag 41.0 is outside -30..40" in refused.problems[0].reason


def test_the_exposures_seeing_is_stored_where_sent_and_reaches_the_models_cues():
    from screening.scoring.worker import detection_meta

    rows = detection_rows("S1")
    for row, fwhm in zip(rows, [2.4, 3.1, None, ""], strict=True):
        row["fwhm_px"] = fwhm  # null and an empty (CSV) cell: not sent
    tracklet = tracklet_ingest(tracklet=tracklet_input("S1", rows=rows)).tracklet
    assert [d.fwhm_px for d in tracklet.detections.order_by("index")] == [2.4, 3.1, None, None]
    meta = detection_meta([tracklet.pk])[tracklet.pk]
    assert meta.shape == (4, 7)
    assert meta[:2, 6].tolist() == [2.4, 3.1] and np.isnan(meta[2:, 6]).all()


@pytest.mark.parametrize(("fwhm", "reason"), [(0, "must be above 0"), (250.0, "outside 0..100")])
def test_a_seeing_that_is_no_seeing_is_refused_naming_the_detection(fwhm, reason):
    rows = detection_rows("S2")
    rows[2]["fwhm_px"] = fwhm
    refused = rejection(tracklet_input("S2", rows=rows))
    assert refused.problems[0].field == "detections[2].fwhm_px"
    assert reason in refused.problems[0].reason
    assert not Tracklet.objects.filter(survey_id="S2").exists()


def test_the_stored_rate_and_direction_are_astropys_across_the_sky():
    """The tracklet's rate and position angle (plain floats at ingest) agree with astropy's
    angular_separation and position_angle: across RA 0/360, near the poles, any direction."""
    import math
    from types import SimpleNamespace

    import numpy as np
    from astropy.coordinates import angular_separation, position_angle

    from screening.ingest.tracklets import _motion

    rng = np.random.default_rng(5)
    cases = [(359.99, 10.0, 0.01, 10.02), (10.0, 89.99, 190.0, 89.98), (0.0, -89.9, 45.0, -89.8)]
    cases += [tuple(rng.uniform([0, -89, 0, -89], [360, 89, 360, 89])) for _ in range(200)]
    for ra1, dec1, ra2, dec2 in cases:
        rows = [
            SimpleNamespace(values={"ra": ra1, "dec": dec1, "mjd": 61000.0, "mag": 19.0}),
            SimpleNamespace(values={"ra": ra2, "dec": dec2, "mjd": 61000.5, "mag": None}),
        ]
        got = _motion(rows)
        args = [math.radians(v) for v in (ra1, dec1, ra2, dec2)]
        separation = math.degrees(float(angular_separation(*args)))
        angle = position_angle(*args).to_value("deg") % 360.0
        assert got["rate_deg_per_day"] == pytest.approx(separation / 0.5, rel=1e-12, abs=1e-12)
        assert abs((got["position_angle_deg"] - angle + 180) % 360 - 180) < 1e-9
        assert got["mean_mag"] == 19.0

"""MPC reports in ADES: PSV and XML of a night validate with iau-ades, a malformed field is
refused before anything is written, the XML reads back through iau-ades with the same values,
a report holds each observation once and re-running it is a no-op."""

from __future__ import annotations

import math

import pytest
from django.test import Client

from screening.models import Detection, MpcReport, Night, Tracklet
from screening.nights import night_counts_refresh
from screening.reports.ades import (
    AdesError,
    Observation,
    psv_text,
    psv_to_xml,
    report_again,
    report_build,
    trk_sub,
    xml_records,
    xml_validate,
)
from screening.review.verdicts import verdict_record
from tests.conftest import make_user
from tests.stamps import (
    NIGHT,
    detection_rows,
    ingest_rows,
    ingest_tracklet,
    model_version,
    score_tracklet,
    stamp_files,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def night(reviewer):
    model = model_version(threshold=0.5)
    tracklets = []
    for i, score in enumerate([0.95, 0.9, 0.8, 0.2]):
        t = ingest_tracklet(f"T{i}", seed=i)
        score_tracklet(t, model, score=score)
        tracklets.append(t)
    verdict_record(tracklet_id=tracklets[0].pk, reviewer=reviewer, value="real")
    verdict_record(tracklet_id=tracklets[1].pk, reviewer=reviewer, value="real")
    verdict_record(tracklet_id=tracklets[2].pk, reviewer=reviewer, value="bogus")
    return Night.objects.get(), tracklets


def test_a_nights_report_validates_and_reads_back_the_same(night, settings):
    settings.MPC_STATION = "T05"
    night, tracklets = night
    result = report_build(night=night)
    report = result.report
    assert result.created and report.n_tracklets == 2 and report.n_observations == 8
    # Both forms pass the IAU's own validator (the PSV through its converter).
    xml_validate(report.xml)
    xml_validate(psv_to_xml(report.psv))
    assert "<mpcCode>T05</mpcCode>" in report.xml and "<stn>T05</stn>" in report.xml
    assert f"! name {settings.MPC_SUBMITTER}" in report.psv
    # The XML through iau-ades's xmltopsv gives back each detection's values.
    back = xml_records(report.xml)
    detections = Detection.objects.filter(tracklet__in=tracklets[:2]).order_by("tracklet", "index")
    assert len(back) == 8
    for record, detection in zip(back, detections, strict=True):
        assert float(record["ra"]) == pytest.approx(detection.ra, abs=5e-7)
        assert float(record["dec"]) == pytest.approx(detection.dec, abs=5e-7)
        assert float(record["mag"]) == pytest.approx(detection.mag, abs=5e-3)
        assert record["stn"] == "T05" and record["mode"] == "CCD"
    # Each observation once; the tracklets are marked reported; again: a no-op.
    assert len({(r["trkSub"], r["obsTime"]) for r in back}) == 8
    assert set(Tracklet.objects.filter(report=report)) == set(tracklets[:2])
    again = report_build(night=night)
    assert not again.created and again.report == report
    assert MpcReport.objects.count() == 1
    # A new real verdict: the next report holds only the new tracklet.
    verdict_record(tracklet_id=tracklets[3].pk, reviewer=make_user("bob", "reviewer"), value="real")
    later = report_build(night=night).report
    assert later != report and later.n_tracklets == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mag", math.nan, "mag is nan, not a number"),
        ("ra", 361.5, "ra 361.5 is outside 0 <= ra < 360 degrees"),
        ("dec", -91.0, "dec -91.0 is outside -90..90 degrees"),
        ("mag", 40.0, "mag 40.0 is outside the ADES range -5..35"),
    ],
)
def test_a_malformed_field_is_refused_before_anything_is_written(night, field, value, message):
    from django.db import connection

    if math.isnan(value) and connection.vendor == "sqlite":
        pytest.skip("SQLite stores no NaN (PostgreSQL, where ./run test runs, does)")
    night, tracklets = night
    Detection.objects.filter(tracklet=tracklets[1], index=2).update(**{field: value})
    with pytest.raises(AdesError) as refused:
        report_build(night=night)
    assert str(refused.value) == f"tracklet 'T1': {message}"
    assert MpcReport.objects.count() == 0
    assert not Tracklet.objects.filter(report__isnull=False).exists()


def test_iau_ades_itself_refuses_what_our_checks_would_let_through():
    bad = Observation(1, "T1", "S0000001", 61000.5, 10.0, 20.0, 19.5)
    psv = psv_text([bad]).replace("|Gaia2|", "|Not a catalogue!|", 1)
    with pytest.raises(AdesError, match="iau-ades refused the report"):
        xml_validate(psv_to_xml(psv))


def test_auto_accept_only_when_switched_on_and_the_audited_precision_is_high(night, settings):
    night, tracklets = night
    settings.MPC_AUTO_ACCEPT_THRESHOLD = 0.85
    settings.MPC_AUTO_ACCEPT_MIN_PRECISION = 0.5
    extra = ingest_tracklet("T9", seed=9)
    score_tracklet(extra, tracklets[0].model_version, score=0.97)
    assert report_build(night=night).report.n_tracklets == 2  # off: verdicts only
    settings.MPC_AUTO_ACCEPT = True
    # Judged above 0.85: T0, T1 real: 2 of 2, lower bound 15.8% < 50%: not enough yet.
    assert not report_build(night=night).created
    settings.MPC_AUTO_ACCEPT_MIN_PRECISION = 0.1
    report = report_build(night=night).report
    assert report.auto_accepted == 1 and report.n_tracklets == 1


def test_the_report_page_and_api_give_the_files(night):
    night, _ = night
    admin = make_user("boss", "admin")
    client = Client()
    client.force_login(admin)
    response = client.post(f"/nights/{NIGHT}/report/")
    assert response.status_code == 302
    report = MpcReport.objects.get()
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert report.content_sha256 in page
    xml = client.get(f"/reports/{report.pk}/ades.xml")
    assert xml["Content-Type"] == "application/xml" and xml.content.decode() == report.xml
    body = client.get(f"/api/v1/reports/{report.pk}/").json()
    assert body["n_observations"] == 8 and body["night"] == NIGHT
    assert client.get(body["psv_url"]).content.decode() == report.psv
    assert client.get(body["xml_url"]).content.decode() == report.xml
    again = client.post("/api/v1/reports/", {"night": NIGHT}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == report.pk
    sent = client.post(f"/api/v1/reports/{report.pk}/send/").json()
    assert sent["status"] == "dry-run" and "not sent" in sent["send_log"]
    summary = client.get(f"/nights/{NIGHT}/summary/").content.decode()
    assert 'id="report-latency"' in summary and "days" in summary
    reviewer = make_user("eve", "reviewer")
    client.force_login(reviewer)
    assert client.post(f"/nights/{NIGHT}/report/").status_code == 403
    assert client.get(f"/api/v1/reports/{report.pk}/xml/").status_code == 200


def _ingest_at(survey_id: str, positions: list[tuple[float, float]], seed: int):
    rows = detection_rows(survey_id, len(positions), seed=seed)
    for row, (ra, dec) in zip(rows, positions, strict=True):
        row.update(ra=ra, dec=dec)
    return ingest_rows(survey_id, rows, stamp_files(survey_id, len(positions), seed=seed))


def test_positions_at_the_edges_of_the_sky_go_out_valid_and_come_back_the_same(reviewer):
    """RA 0 and 359.9999996 (which rounds to 360.000000, the schema's excluded end), Dec +90
    and -90: ingest -> ADES -> iau-ades's validator and converter -> the same sky positions."""
    cases = {
        "WRAP": [(359.9999996, 10.0), (359.9999999, 10.0001), (0.0, 10.0002), (0.0000004, 10.0003)],
        "NORTH": [(10.0, 89.9998), (10.0, 89.9999), (100.0, 90.0), (190.0, 89.9999)],
        "SOUTH": [(10.0, -89.9998), (10.0, -89.9999), (100.0, -90.0), (190.0, -89.9999)],
    }
    for seed, (name, positions) in enumerate(cases.items()):
        tracklet = _ingest_at(name, positions, seed)
        verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    report = report_build(night=Night.objects.get()).report
    xml_validate(report.xml)
    back = xml_records(report.xml)
    sent = [p for positions in cases.values() for p in positions]
    assert len(back) == len(sent)
    for record, (ra, dec) in zip(back, sent, strict=True):
        assert 0.0 <= float(record["ra"]) < 360.0, record
        # the same point of the sky: RA differences wrap at 360, and mean nothing at a pole
        d_ra = (float(record["ra"]) - ra + 180.0) % 360.0 - 180.0
        assert (
            abs(d_ra) * math.cos(math.radians(dec)) < 1e-6
            and abs(float(record["dec"]) - dec) < 5e-7
        )
    assert back[0]["ra"] == "0.000000"  # 359.9999996, wrapped after rounding


def test_obs_time_is_astropys_utc_rounded_to_the_millisecond(night):
    from astropy.time import Time

    night, tracklets = night
    report = report_build(night=night).report
    back = xml_records(report.xml)
    detections = Detection.objects.filter(tracklet__in=tracklets[:2]).order_by("tracklet", "index")
    for record, detection in zip(back, detections, strict=True):
        exact = Time(detection.mjd, format="mjd", scale="utc")
        sent = Time(record["obsTime"].rstrip("Z"), format="isot", scale="utc")
        assert abs((sent - exact).to_value("s")) <= 0.0005, (record["obsTime"], detection.mjd)
    # half a millisecond and more rounds up, as astropy does, not down (truncation)
    from screening.reports.ades import obs_times

    mjd = 61000.0 + (3600 + 0.0126) / 86400  # 01:00:00.0126 UTC
    assert obs_times([mjd]) == ["2025-11-21T01:00:00.013Z"]


def test_trksubs_are_prefixed_8_characters_and_never_shaped_like_a_designation(settings):
    from screening.reports.ades import designation_shaped, trk_sub

    # the shapes the MPC uses, and the old trkSub of tracklet 466,570
    for designation in ("K24A00A", "K00A00A", "_QC0000", "00433", "A0345", "~0000", "PLS2040",
                        "0001P", "CJ95O010", "2024 AB12", "2024AB12"):  # fmt: skip
        assert designation_shaped(designation), designation
    settings.MPC_TRKSUB_PREFIX = "S"
    ids = [1, 35, 36, 466_570, 10**6, 36**7 - 1]
    names = [trk_sub(i) for i in ids]
    assert names[:3] == ["S0000001", "S000000Z", "S0000010"]
    assert all(len(n) == 8 and n.startswith("S") and not designation_shaped(n) for n in names)
    assert len(set(names)) == len(ids)
    assert trk_sub(466_570, prefix="TB") != trk_sub(466_570)  # another installation, no clash
    with pytest.raises(AdesError, match="does not fit"):
        trk_sub(36**7)


def test_a_trksub_prefix_that_starts_like_a_designation_is_refused_at_start():
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "MPC_TRKSUB_PREFIX": "K2"}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "MPC_TRKSUB_PREFIX must be 1 to 3 capital letters" in done.stderr
    assert "'K2'" in done.stderr


def test_photcat_is_its_own_setting(night, settings):
    settings.MPC_ASTROMETRY_CATALOG = "Gaia2"
    settings.MPC_PHOTOMETRY_CATALOG = "ATLAS2"
    night, _ = night
    back = xml_records(report_build(night=night).report.xml)
    assert {(r["astCat"], r["photCat"]) for r in back} == {("Gaia2", "ATLAS2")}


def test_a_refusal_by_iau_ades_names_the_tracklet_the_detection_and_the_field(night, settings):
    observations = [
        Observation(1, "T1", "S0000001", 61000.5, 10.0, 20.0, 19.5),
        Observation(2, "T2", "S0000002", 61000.5, 10.0, 20.0, 19.5),
        Observation(2, "T2", "S0000002", 61000.51, 10.01, 20.0, 19.5),
    ]
    lines = psv_text(observations).splitlines()
    lines[-1] = lines[-1].replace("|Gaia2|", "|Bogus!|", 1)  # only T2's second detection
    with pytest.raises(AdesError) as refused:
        xml_validate(psv_to_xml("\n".join(lines) + "\n"), observations)
    assert "tracklet 'T2' (trkSub S0000002) detection 1, field astCat: " in str(refused.value)
    assert "'Bogus!'" in str(refused.value)
    # through report_build, with nothing written
    settings.MPC_PHOTOMETRY_BAND = "o!"
    night, _ = night
    with pytest.raises(AdesError) as refused:
        report_build(night=night)
    assert "tracklet 'T0'" in str(refused.value) and "detection 0" in str(refused.value)
    assert MpcReport.objects.count() == 0


def _ingest_copy(survey_id: str, night: str, *, seed: int):
    """The detections (and stamps) of the tracklet `seed` of NIGHT, sent again as `survey_id`
    under `night`: what a pipeline re-run does."""
    rows = detection_rows(f"T{seed}", 4, seed=seed, night=NIGHT)
    return ingest_rows(survey_id, rows, stamp_files(f"T{seed}", 4, seed=seed), night=night)


def test_detections_sent_under_two_nights_or_two_ids_go_into_one_report(night, reviewer):
    from screening.ingest.tracklets import IngestRejected

    night, tracklets = night  # T0 and T1 judged real
    again_same_night = _ingest_copy("T0-rerun", NIGHT, seed=0)
    stored = list(Detection.objects.filter(tracklet=tracklets[0]).values_list("pk", flat=True))
    assert [d.duplicate_of_id for d in again_same_night.detections.all()] == stored  # linked
    verdict_record(tracklet_id=again_same_night.pk, reviewer=reviewer, value="real")
    first = report_build(night=night)
    assert first.created and first.report.n_tracklets == 2 and first.report.n_observations == 8
    assert [str(item) for item in first.linked] == [
        "tracklet 'T0-rerun' left out: its detection(s) 0, 1, 2, 3 are those of tracklet 'T0' "
        "in this report"
    ]
    again_same_night.refresh_from_db()
    assert again_same_night.report == first.report  # linked: reported, not sent again

    # under the next night, the same detections are refused: they are in NIGHT at T08
    with pytest.raises(IngestRejected, match=f"is in the night {NIGHT}, not 2026-11-25"):
        _ingest_copy("T1", "2026-11-25", seed=1)
    # stored under two nights before nights were the station's (an older version's data): the
    # report still holds each detection once
    legacy = _ingest_copy("T1-legacy", NIGHT, seed=1)
    next_night = Night.objects.create(date="2026-11-25")
    Tracklet.objects.filter(pk=legacy.pk).update(night=next_night, survey_id="T1")
    night_counts_refresh()  # as the migration that brought the counts left such data
    verdict_record(tracklet_id=legacy.pk, reviewer=reviewer, value="real")
    second = report_build(night=next_night)
    assert not second.created and second.report is None
    assert [item.earlier for item in second.linked] == ["T1"]
    legacy.refresh_from_db()
    assert legacy.report == first.report
    assert MpcReport.objects.count() == 1
    sent = [(r["obsTime"], r["ra"], r["dec"]) for r in xml_records(first.report.xml)]
    assert len(sent) == len(set(sent)) == 8


def test_a_tracklet_of_new_detections_is_reported_beside_a_linked_one(night, reviewer):
    night, tracklets = night
    first = report_build(night=night).report
    copy = _ingest_copy("T0-rerun", NIGHT, seed=0)
    fresh = ingest_tracklet("N1", seed=7)
    for t in (copy, fresh):
        verdict_record(tracklet_id=t.pk, reviewer=reviewer, value="real")
    result = report_build(night=night)
    assert result.created and result.report.n_tracklets == 1
    assert [item.report_id for item in result.linked] == [first.pk]
    assert {r["trkSub"] for r in xml_records(result.report.xml)} == {trk_sub(fresh.pk)}


def _ingest_with(survey_id: str, seed: int, **extra):
    rows = [{**row, **extra} for row in detection_rows(survey_id, 4, seed=seed)]
    return ingest_rows(survey_id, rows, stamp_files(survey_id, 4, seed=seed))


def test_two_stations_and_two_bands_in_one_night_go_out_as_two_valid_blocks(reviewer, settings):
    from astropy import units as u
    from astropy.time import Time

    settings.MPC_STATION = "T08"
    hko = _ingest_with("HKO1", 1, station="T05", band="c", exposure=30.0, time_ref="start",
                       rms_ra=0.12, rms_dec=0.15, rms_mag=0.05)  # fmt: skip
    sth = _ingest_with("STH1", 2, station="M22", band="o")
    plain = _ingest_with("MLO1", 3)  # no station sent: the installation's
    for t in (hko, sth, plain):
        verdict_record(tracklet_id=t.pk, reviewer=reviewer, value="real")
    report = report_build(night=Night.objects.get()).report
    xml_validate(report.xml)
    assert report.xml.count("<obsBlock>") == 3
    for code in ("T05", "M22", "T08"):
        assert f"<mpcCode>{code}</mpcCode>" in report.xml
    back = xml_records(report.xml)
    by_trk = {}
    for record in back:
        by_trk.setdefault(record["trkSub"], []).append(record)
    hko_records = by_trk[trk_sub(hko.pk)]
    assert {(r["stn"], r["band"]) for r in hko_records} == {("T05", "c")}
    assert {(r["rmsRA"], r["rmsDec"], r["rmsMag"], r["exp"]) for r in hko_records} == {
        ("0.120", "0.150", "0.050", "30.00")
    }
    assert {(r["stn"], r["band"]) for r in by_trk[trk_sub(sth.pk)]} == {("M22", "o")}
    assert {r["stn"] for r in by_trk[trk_sub(plain.pk)]} == {"T08"}
    # a start-of-exposure time goes out as mid-exposure: mjd + 15 s, rounded to the millisecond
    assert len(hko_records) == 4, hko_records
    for record, detection in zip(hko_records, hko.detections.order_by("index"), strict=True):
        mid = Time(detection.mjd, format="mjd", scale="utc") + 15.0 * u.s
        sent = Time(record["obsTime"].rstrip("Z"), format="isot", scale="utc")
        assert abs((sent - mid).to_value("s")) <= 0.0005


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"station": "XYZ"}, "station", "'XYZ' is not an MPC observatory code"),
        ({"station": "E02"}, "station", "'E02' is not in the MPC's list of observatory codes"),
        ({"station": "250"}, "station", "is not on the ground"),
        ({"band": "long!"}, "band", "must be 1 to 3 letters or digits"),
        ({"time_ref": "end"}, "time_ref", "time_ref must be 'mid' or 'start'"),
        ({"time_ref": "start"}, "exposure", "time_ref 'start' needs the exposure time"),
        ({"rms_ra": -0.1}, "rms_ra", "outside"),
        ({"exposure": 0}, "exposure", "must be above 0"),
        ({"seeing": 1.2}, "seeing", "unknown field 'seeing'"),
    ],
)
def test_per_detection_report_fields_are_checked_at_ingest(extra, field, reason):
    from screening.ingest.tracklets import IngestRejected

    with pytest.raises(IngestRejected) as refused:
        _ingest_with("BAD1", 1, **extra)
    text = str(refused.value.as_dict())
    assert f"detections[0].{field}" in text and reason in text
    assert not Tracklet.objects.exists()


def test_an_admin_re_reports_on_purpose_with_a_reason_and_nothing_else_sends_twice(night):
    night, tracklets = night
    first = report_build(night=night).report
    admin, web = make_user("boss", "admin"), Client()
    web.force_login(admin)
    page = web.get(f"/reports/{first.pk}/").content.decode()
    assert trk_sub(tracklets[0].pk) in page and 'id="again-form"' in page

    # a reviewer cannot; an admin without a reason, or with a tracklet never reported, cannot
    eve = Client()
    eve.force_login(make_user("eve", "reviewer"))
    assert eve.post(f"/reports/{first.pk}/again/", {"tracklet": [tracklets[0].pk],
                                                     "reason": "x"}).status_code == 403  # fmt: skip
    web.post(f"/reports/{first.pk}/again/", {"tracklet": [tracklets[0].pk], "reason": " "})
    unreported = ingest_tracklet("U1", seed=9)
    with pytest.raises(AdesError, match="'U1' were never reported"):
        report_again(tracklets=[unreported], reason="test", user=admin)
    assert MpcReport.objects.count() == 1

    answer = web.post(
        f"/reports/{first.pk}/again/",
        {"tracklet": [tracklets[0].pk], "reason": "corrected astrometry of T0"},
    )
    again = MpcReport.objects.exclude(pk=first.pk).get()
    assert answer.status_code == 302 and answer["Location"] == f"/reports/{again.pk}/"
    assert again.again_reason == "corrected astrometry of T0" and again.created_by == admin
    assert list(again.again.all()) == [tracklets[0]] and again.n_observations == 4
    xml_validate(again.xml)
    assert {r["trkSub"] for r in xml_records(again.xml)} == {trk_sub(tracklets[0].pk)}
    tracklets[0].refresh_from_db()
    assert tracklets[0].report == first  # its first report stays its report
    shown = web.get(f"/reports/{again.pk}/").content.decode()
    assert "corrected astrometry of T0" in shown and f"/reports/{first.pk}/" in shown
    # the night's next report still leaves both out: re-reporting is only on purpose
    assert not report_build(night=night).created


def test_a_detection_without_a_magnitude_goes_out_without_mag_and_band(reviewer):
    rows = detection_rows("NOMAG", 4, seed=4)
    rows[2]["mag"] = 99.0  # a pipeline's sentinel: no positive flux
    tracklet = ingest_rows("NOMAG", rows, stamp_files("NOMAG", 4, seed=4))
    verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    report = report_build(night=Night.objects.get()).report
    xml_validate(report.xml)
    records = xml_records(report.xml)
    assert [r["mag"] for r in records] == [f"{r['mag']:.2f}" if i != 2 else ""
                                           for i, r in enumerate(rows)]  # fmt: skip
    assert records[2]["band"] == "" and records[1]["band"] == "o"

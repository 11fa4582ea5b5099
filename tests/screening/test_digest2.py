"""digest2 in the product: the scores it stores equal the package's own `classify` on the same
observations (the tracklet's ADES report), what it cannot score says why, and its scores reach
the queue, the tracklet page, the API, the export and the report page."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from screening.models import Tracklet
from screening.reports.ades import psv_text, psv_to_xml, tracklet_observations, trk_sub
from screening.scoring.digest2 import digest2_store, digest2_version, tracklet_psv
from tests.stamps import NIGHT, detection_rows, ingest_rows, stamp_files

pytestmark = pytest.mark.django_db

# (id, station, band, degrees/day along RA, along Dec, with rms, start): movers near and far
# (start: RA and Dec of the first detection, else tests.stamps's); on 2026-11-24 the opposition
# point is near RA 59, Dec +20.5, on the ecliptic
MOVERS = [
    ("FAST", "T08", "o", 6.0, 2.0, True, None),  # a close approach
    ("NEO1", "T05", "c", 1.2, -0.9, False, None),
    ("MB01", "T08", "o", -0.27, -0.07, True, (59.0, 20.5)),  # main belt at opposition
    ("MB02", "W68", "c", -0.22, -0.05, False, (61.0, 21.0)),
    ("SLOW", "M22", "o", 0.02, 0.01, False, None),  # a distant, slow one
    ("NRTH", "T05", "o", 0.6, 1.5, True, None),
]


def _mover(survey_id: str, seed: int, station: str, band: str, d_ra: float, d_dec: float,
           rms: bool, start: tuple[float, float] | None):  # fmt: skip
    rows = detection_rows(survey_id, 4, seed=seed)
    first = {**rows[0], **(dict(zip(("ra", "dec"), start, strict=True)) if start else {})}
    for row in rows:
        dt = row["mjd"] - first["mjd"]
        row.update(station=station, band=band, ra=first["ra"] + d_ra * dt,
                   dec=first["dec"] + d_dec * dt, mag=19.5 + 0.1 * seed)  # fmt: skip
        if rms:
            row.update(rms_ra=0.3, rms_dec=0.25, rms_mag=0.1)
    return ingest_rows(survey_id, rows, stamp_files(survey_id, 4, seed=seed))


@pytest.fixture
def movers() -> list[Tracklet]:
    return [_mover(m[0], i + 1, *m[1:]) for i, m in enumerate(MOVERS)]


def _package_classify(path: Path) -> dict[str, dict]:
    """The package's own one-shot `classify` on a file, in a process of its own (the engine's
    state is per process), with the model and observatory codes the product uses."""
    folder = Path(django_settings.DIGEST2_CACHE_DIR)
    code = (
        "import json, sys\n"
        "from digest2 import classify\n"
        f"found = classify({str(path)!r}, model_path={str(folder / 'digest2.model.csv')!r}, "
        f"obscodes_path={str(folder / 'digest2.obscodes')!r}, max_workers=1)\n"
        "print(json.dumps({r.designation: {'noid': dict(r.noid.items()), "
        "'raw': dict(r.raw.items())} for r in found}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", ["xml", "psv"])
def test_stored_scores_equal_the_packages_own_classify_of_the_report(movers, tmp_path, suffix):
    assert digest2_store([t.pk for t in movers]) == len(movers)
    path = tmp_path / f"tracklets.{suffix}"
    if suffix == "xml":  # the report as sent: ADES XML, one block per station
        path.write_text(psv_to_xml(psv_text(tracklet_observations(movers))))
    else:  # the same values as one PSV table (what the product hands the package's reader)
        path.write_text(tracklet_psv(movers))
    package = _package_classify(path)
    assert set(package) == {trk_sub(t.pk) for t in movers}
    for tracklet in Tracklet.objects.filter(pk__in=[t.pk for t in movers]):
        theirs = package[trk_sub(tracklet.pk)]
        assert tracklet.digest2_scores == theirs, tracklet.survey_id
        assert tracklet.digest2_neo == theirs["noid"]["NEO"]
        assert tracklet.digest2_version == digest2_version()
        assert not tracklet.digest2_problem
    neo = {t.survey_id: t.digest2_neo for t in Tracklet.objects.all()}
    # what an observer would expect of them: the fast mover is an NEO candidate, the slow
    # retrograde one of the main belt is not
    assert neo["FAST"] >= 65 > neo["MB01"]


def test_a_station_changes_the_scores_as_its_parallax_does(movers):
    """The observatory codes reach the engine: the same astrometry from Hawaii and from South
    Africa is not scored the same (an unknown code would be geocentric, silently)."""
    from screening.scoring.digest2 import digest2_scores

    near = movers[1]  # NEO1: an NEO, not certainly one
    before = digest2_scores([near])[near.pk].raw
    near.detections.update(station="M22")
    after = digest2_scores([near])[near.pk].raw
    assert before != after


def test_a_tracklet_digest2_cannot_score_says_why(settings):
    rows = detection_rows("STILL", 4)
    rows = [{**row, "ra": rows[0]["ra"], "dec": rows[0]["dec"]} for row in rows]  # no motion
    still = ingest_rows("STILL", rows, stamp_files("STILL", 4))
    digest2_store([still.pk])
    still.refresh_from_db()
    assert still.digest2_neo is None and still.digest2_scores == {}
    assert still.digest2_problem.startswith("digest2 could not score it")


def test_the_backfill_command_scores_what_has_no_score(movers):
    from django.core.management import call_command

    Tracklet.objects.update(digest2_version="", digest2_neo=None, digest2_scores={})
    call_command("digest2", "--night", NIGHT)
    assert not Tracklet.objects.filter(digest2_neo__isnull=True).exists()


def test_scores_reach_the_queue_the_tracklet_page_the_api_and_the_export(movers, reviewer):
    digest2_store([t.pk for t in movers])
    fast = Tracklet.objects.get(survey_id="FAST")
    web = Client()
    web.force_login(reviewer)
    page = web.get(f"/nights/{NIGHT}/?status=all&order=neo").content.decode()
    # NEO candidates first: the rows in digest2 order
    order = [t.survey_id for t in Tracklet.objects.order_by("-digest2_neo", "id")]
    places = [page.index(f">{name}<") for name in order]
    assert places == sorted(places)
    assert f"D2 {fast.digest2_neo:.0f}" in page
    only = web.get(f"/nights/{NIGHT}/?status=all&neo=1").content.decode()
    candidates = Tracklet.objects.filter(digest2_neo__gte=65)
    assert candidates.exists()
    for tracklet in Tracklet.objects.all():
        assert (f">{tracklet.survey_id}<" in only) == (tracklet.digest2_neo >= 65)
    detail = web.get(f"/tracklets/{fast.pk}/").content.decode()
    assert "digest2" in detail and digest2_version() in detail and "N22" in detail

    api = web.get(f"/api/v1/tracklets/{fast.pk}/").json()
    assert api["digest2_neo"] == pytest.approx(fast.digest2_neo)
    assert api["digest2"]["noid"] == fast.digest2_scores["noid"]
    assert api["digest2_version"] == digest2_version()
    listed = web.get(f"/api/v1/tracklets/?night={NIGHT}&neo_candidate=true").json()["results"]
    assert {row["tracklet"] for row in listed} == set(candidates.values_list("survey_id",
                                                                            flat=True))  # fmt: skip
    ordered = web.get(f"/api/v1/tracklets/?night={NIGHT}&ordering=-digest2_neo").json()
    assert [r["digest2_neo"] for r in ordered["results"]] == sorted(
        (t.digest2_neo for t in Tracklet.objects.all()), reverse=True
    )
    assert math.isfinite(api["digest2_neo"])


def test_the_summary_counts_neo_candidates_and_their_time_to_report(movers, reviewer):
    from screening.models import Night
    from screening.reports.ades import report_build
    from screening.review.verdicts import verdict_record

    digest2_store([t.pk for t in movers])
    candidates = list(Tracklet.objects.filter(digest2_neo__gte=65).order_by("-digest2_neo"))
    fast = Tracklet.objects.get(survey_id="FAST")
    verdict_record(tracklet_id=fast.pk, reviewer=reviewer, value="real")
    report = report_build(night=Night.objects.get()).report
    web = Client()
    web.force_login(reviewer)
    page = web.get(f"/nights/{NIGHT}/summary/").content.decode()
    assert f'data-figure="neo_candidates">{len(candidates)}<' in page
    table = page[page.index('id="neo-candidates"') :]
    for tracklet in candidates:
        assert f'data-tracklet="{tracklet.survey_id}"' in table
    row = table[table.index('data-tracklet="FAST"') :].split("</tr>")[0]
    assert f"#{report.pk}" in row and "real" in row and "not reported" not in row
    # the report page names its tracklets with their D2
    shown = web.get(f"/reports/{report.pk}/").content.decode()
    assert "NEO candidate" in shown and trk_sub(fast.pk) in shown


def test_the_verdict_export_carries_the_digest2_neo_score(movers, reviewer):
    from screening.review.verdicts import verdict_record

    digest2_store([t.pk for t in movers])
    fast = Tracklet.objects.get(survey_id="FAST")
    verdict_record(tracklet_id=fast.pk, reviewer=reviewer, value="real")
    web = Client()
    web.force_login(reviewer)
    rows = web.get("/api/v1/export/verdicts/").json()["results"]
    assert rows[0]["tracklet_digest2_neo"] == pytest.approx(fast.digest2_neo)


def test_the_summary_hides_others_verdicts_on_neo_candidates_still_blind_for_me(
    movers, reviewer, blind_rows
):
    """Blind screening: a candidate in my to-review queue shows no one's verdict and no report
    on the summary, as on every other page, until I give mine."""
    from screening.review.verdicts import verdict_record
    from tests.conftest import make_user
    from tests.stamps import model_version, score_tracklet

    model = model_version(threshold=0.5)
    for tracklet in movers:
        score_tracklet(tracklet, model, score=0.9)
    digest2_store([t.pk for t in movers])
    fast = Tracklet.objects.get(survey_id="FAST")
    fast.reviews_wanted = 2
    fast.save(update_fields=["reviews_wanted"])
    verdict_record(tracklet_id=fast.pk, reviewer=make_user("other", "reviewer"), value="bogus")
    web = Client()
    web.force_login(reviewer)
    page = web.get(f"/nights/{NIGHT}/summary/").content.decode()
    row = page[page.index('data-tracklet="FAST"') :].split("</tr>")[0]
    assert "bogus" not in row and "after your verdict" in row
    verdict_record(tracklet_id=fast.pk, reviewer=reviewer, value="real")
    page = web.get(f"/nights/{NIGHT}/summary/").content.decode()
    row = page[page.index('data-tracklet="FAST"') :].split("</tr>")[0]
    assert "disagreement" in row

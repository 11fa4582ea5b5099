"""Web pages and stamp images need a login; stamp images are cached by the browser."""

from __future__ import annotations

import pytest

from tests.stamps import NIGHT, ingest_tracklet

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracklet():
    return ingest_tracklet("T1")


def test_pages_and_stamps_redirect_to_the_login_when_logged_out(client, tracklet):
    detection = tracklet.detections.first()
    for url in ("/", f"/nights/{NIGHT}/", f"/stamps/{detection.pk}.png"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_reviewer_sees_the_night_and_its_stamps(client, reviewer, tracklet):
    client.force_login(reviewer)
    home = client.get("/")
    assert NIGHT in home.content.decode()
    night = client.get(f"/nights/{NIGHT}/").content.decode()
    detection = tracklet.detections.get(index=2)
    assert "T1" in night and f"/stamps/{detection.pk}.png" in night


def test_a_stamp_image_is_cached_and_a_revisit_costs_no_transfer(client, reviewer, tracklet):
    client.force_login(reviewer)
    detection = tracklet.detections.first()
    first = client.get(f"/stamps/{detection.pk}.png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert b"".join(first.streaming_content).startswith(b"\x89PNG")
    assert "max-age=" in first["Cache-Control"] and "private" in first["Cache-Control"]
    again = client.get(f"/stamps/{detection.pk}.png", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_the_login_page_logs_a_reviewer_in(client, reviewer):
    response = client.post(
        "/accounts/login/", {"username": "reviewer", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_the_tracklet_page_shows_predictions_verdicts_and_labels(client, reviewer):
    from screening.review.verdicts import stamp_label_record, verdict_record
    from tests.stamps import model_version, score_tracklet

    tracklet = score_tracklet(ingest_tracklet("T9"), model_version(), score=0.97)
    verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    stamp_label_record(
        detection_id=tracklet.detections.first().pk, reviewer=reviewer, class_name="STREAK"
    )
    client.force_login(reviewer)
    page = client.get(f"/tracklets/{tracklet.pk}/").content.decode()
    for text in (
        "T9",
        "0.970",
        "aaaaaaaaaaaa",
        "<bdi>AST</bdi> 0.90",
        ">real<",
        "STREAK",
        "reviewer",
    ):
        assert text in page, text


def test_the_night_summary_counts_and_draws_the_histogram(client, reviewer):
    from screening.review.verdicts import verdict_record
    from tests.stamps import model_version, score_tracklet

    model = model_version(threshold=0.8)
    for seed, score in enumerate([0.95, 0.3, 0.2, 0.9]):
        score_tracklet(ingest_tracklet(f"S{seed}", seed=seed), model, score=score)
    first = ingest_tracklet("S0", seed=0)
    verdict_record(tracklet_id=first.pk, reviewer=reviewer, value="real")
    client.force_login(reviewer)
    page = client.get(f"/nights/{NIGHT}/summary/").content.decode()
    figures = {
        name: page.split(f'data-figure="{name}">')[1].split("<")[0]
        for name in (
            "total",
            "scored",
            "auto_rejected",
            "reviewed",
            "real_found",
            "share_not_looked_at",
        )
    }
    assert figures == {
        "total": "4",
        "scored": "4",
        "auto_rejected": "2",
        "reviewed": "1",
        "real_found": "1",
        "share_not_looked_at": "50%",
    }
    png = client.get(f"/nights/{NIGHT}/histogram.png")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_no_page_renders_an_unknown_name_as_silently_empty(client, reviewer, settings):
    """Every name a page's template uses exists: with `string_if_invalid` set, an unknown one
    (say page.next_page_number, which rendered empty and sent "next" to page 1) shows up."""
    from screening.review.verdicts import stamp_label_record, verdict_record
    from tests.stamps import model_version, score_tracklet

    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"], "string_if_invalid": "INVALID[%s]"},
        }
    ]
    model = model_version(threshold=0.8)
    tracklets = [
        score_tracklet(ingest_tracklet(f"U{i}", seed=i), model, score=0.99 - i / 100)
        for i in range(12)
    ]
    verdict_record(tracklet_id=tracklets[0].pk, reviewer=reviewer, value="real")
    stamp_label_record(
        detection_id=tracklets[0].detections.first().pk, reviewer=reviewer, class_name="CR"
    )
    client.force_login(reviewer)
    urls = [
        "/",
        f"/nights/{NIGHT}/?status=all&per_page=10",
        f"/nights/{NIGHT}/?status=all&per_page=10&page=2",
        f"/nights/{NIGHT}/summary/",
        f"/tracklets/{tracklets[0].pk}/",
        "/models/",
        f"/models/{model.version}/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "INVALID[" not in response.content.decode(), url
    first = client.get(f"/nights/{NIGHT}/?status=all&per_page=10").content.decode()
    # the next page is the rows after this page's last (its sort value and id), numbered 2
    tenth = tracklets[9]
    after = f"{tenth.score!r}_{tenth.pk}"
    assert f'href="?status=all&amp;per_page=10&amp;after={after}&amp;page=2"' in first
    second = client.get(f"/nights/{NIGHT}/?status=all&per_page=10&after={after}&page=2")
    eleventh = tracklets[10]
    assert f'href="?status=all&amp;per_page=10&amp;before={eleventh.score!r}_{eleventh.pk}' in (
        second.content.decode()
    )


def test_scores_thresholds_and_recalls_read_with_sensible_digits():
    from screening.web.formats import percent, score, sig

    assert [score(v) for v in (0.95, 0.9994, 0.999968, 1.0, 0.0004, 0.0, None)] == [
        "0.950",
        "0.999",
        "1 − 3.2e-5",
        "1",
        "4.0e-4",
        "0",
        "—",
    ]
    ranked = [0.99999, 0.9999, 0.9996, 0.9990]  # one 1.000 each before; now in order
    assert len({score(v) for v in ranked}) == 4
    assert sig(0.10581812262535095) == "0.1058" and sig(0.8) == "0.8"
    assert (percent(0.99), percent(0.99333), percent(None)) == ("99.00%", "99.33%", "—")


def test_the_nav_leads_to_the_api_docs_and_the_docs_lead_back(client, reviewer):
    client.force_login(reviewer)
    home = client.get("/").content.decode()
    nav = home[home.index("<nav>") : home.index("</nav>")]
    assert '<a href="/api/v1/docs/">API</a>' in nav
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert 'id="swagger-ui"' in page  # the Swagger UI itself, still there
    bar = page[page.index('id="site-bar"') : page.index("</nav>")]
    assert '<a href="/">← back to the site</a>' in bar
    assert '<a class="brand" href="/">Tracklet screening</a>' in bar
    assert page.index('id="site-bar"') < page.index('id="swagger-ui"')  # above the docs


def test_the_night_menu_lists_the_newest_nights_and_selects_this_one_even_if_older(
    client, reviewer
):
    """The queue's night menu: the 60 newest nights, newest first, the page's own selected,
    and an older night's page shows its own date selected (not the newest night's)."""
    import datetime
    import re

    from screening.models import Night

    day = datetime.date(2031, 1, 1)
    Night.objects.bulk_create(Night(date=day + datetime.timedelta(days=i)) for i in range(65))
    client.force_login(reviewer)

    def menu(date):
        page = client.get(f"/nights/{date}/").content.decode()
        select = page.split("<select onchange=", 1)[1].split("</select>", 1)[0]
        return re.findall(r'<option value="([\d-]+)"( selected)?>([\d-]+)</option>', select)

    newest = menu("2031-03-06")  # the newest of the 65
    assert len(newest) == 60 and newest[0] == ("2031-03-06", " selected", "2031-03-06")
    assert [d for d, _, _ in newest] == sorted((d for d, _, _ in newest), reverse=True)
    oldest = menu("2031-01-01")  # not among the newest 60: added, at its place, selected
    assert len(oldest) == 61 and oldest[-1] == ("2031-01-01", " selected", "2031-01-01")
    assert sum(1 for _, chosen, _ in oldest if chosen) == 1

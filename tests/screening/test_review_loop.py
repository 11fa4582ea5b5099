"""The reviewer's loop on the server: stable paging, blind means blind everywhere, what the label
history records, undo across page loads, several reviewers on one night (claims).

The browser side (keys typed fast, two reviewers in two browsers) is in
test_review_loop_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from screening.models import (
    QueueAssignment,
    ReviewClaim,
    StampClass,
    StampLabel,
    Tracklet,
    Verdict,
)
from screening.review.verdicts import verdict_record
from tests.conftest import make_user
from tests.screening.test_audit import night  # noqa: F401 - the fixture
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db


def rows_of(html: str) -> list[str]:
    return re.findall(r'class="tid">([^<]+)</a>', html)


def link(html: str, which: str) -> str:
    found = re.search(rf'<a href="(\?[^"]*)" data-page="{which}"', html)
    return found.group(1).replace("&amp;", "&") if found else ""


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def give(client: Client, tracklet: Tracklet, value: str, **extra):
    response = client.post(
        f"/tracklets/{tracklet.pk}/verdict/",
        json.dumps({"value": value, **extra}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def thirty():
    """30 passing tracklets P00 (0.99) ... P29 (0.70), one page of 10 at a time."""
    model = model_version(threshold=0.5)
    return {
        f"P{i:02d}": score_tracklet(
            ingest_tracklet(f"P{i:02d}", seed=i, n=3), model, score=0.99 - i / 100
        )
        for i in range(30)
    }


def test_next_shows_the_rows_after_the_last_one_seen_whatever_was_judged_meanwhile(thirty):
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    client = page_client(alice)
    first = client.get(f"/nights/{NIGHT}/?per_page=10").content.decode()
    assert rows_of(first) == [f"P{i:02d}" for i in range(10)]
    for name in ("P00", "P01", "P02", "P03", "P04"):  # half of page 1 judged by alice
        give(client, thirty[name], "bogus")
    verdict_record(tracklet_id=thirty["P10"].pk, reviewer=bob, value="real")  # and one by bob
    second = client.get(f"/nights/{NIGHT}/{link(first, 'next')}").content.decode()
    # nothing unjudged passed over: with offsets this page would have started at P15
    assert rows_of(second) == [f"P{i:02d}" for i in range(11, 21)]
    assert "page 2" in second
    third = client.get(f"/nights/{NIGHT}/{link(second, 'next')}").content.decode()
    assert rows_of(third) == [f"P{i:02d}" for i in range(21, 30)]
    assert link(third, "next") == ""
    # the end of the pass says what is still waiting: the five alice skipped on page 1 and
    # page 2's ten (not judged here)
    assert "End of this pass: 15 tracklets of this night are still to review" in third
    back = client.get(f"/nights/{NIGHT}/{link(second, 'prev')}").content.decode()
    assert rows_of(back) == ["P05", "P06", "P07", "P08", "P09"]
    # a cursor that this queue did not make: the first page, with a message, not a 500
    response = client.get(f"/nights/{NIGHT}/?after=nonsense", follow=True)
    assert response.status_code == 200
    assert "is not a page cursor" in response.content.decode()


def test_the_api_queue_pages_by_cursor_too(thirty):
    alice = make_user("alice", "reviewer")
    api = APIClient()
    api.force_authenticate(alice)
    first = api.get(f"/api/v1/nights/{NIGHT}/queue/").json()
    assert len(first["rows"]) == 30 and first["next"] is None
    for row in first["rows"][:3]:
        verdict_record(tracklet_id=row["id"], reviewer=alice, value="bogus")
    # by number, page 1 now starts at the 4th; `after` a row keeps its place whatever is judged
    after = f"{thirty['P01'].score!r}_{thirty['P01'].pk}"
    rows = api.get(f"/api/v1/nights/{NIGHT}/queue/", {"after": after}).json()["rows"]
    assert [r["tracklet"] for r in rows[:2]] == ["P03", "P04"]
    assert api.get(f"/api/v1/nights/{NIGHT}/queue/", {"after": "x_y"}).status_code == 400
    # scripted reviewers that claim their pages get different rows
    bob, carol = APIClient(), APIClient()
    bob.force_authenticate(make_user("bob", "reviewer"))
    carol.force_authenticate(make_user("carol", "reviewer"))
    for_bob = bob.get(f"/api/v1/nights/{NIGHT}/queue/", {"claim": "true"}).json()["rows"]
    for_carol = carol.get(f"/api/v1/nights/{NIGHT}/queue/", {"claim": "true"}).json()["rows"]
    assert len(for_bob) == 27 and for_carol == []  # the 27 alice has not judged: bob's now
    unclaimed = carol.get(f"/api/v1/nights/{NIGHT}/queue/").json()["rows"]
    assert len(unclaimed) == 27  # without claim, the queue as before


@pytest.fixture
def audited(blind_rows, night):  # noqa: F811
    """test_audit's night (20 passing tracklets, 30 auto-rejected with classes CR, audits
    drawn), with blind screening on and one passing tracklet drawn for two reviewers."""
    audit = Tracklet.objects.filter(assignments__kind="audit").order_by("score").first()
    second = Tracklet.objects.filter(score__gte=0.5).order_by("-score")[3]
    Tracklet.objects.filter(pk=second.pk).update(reviews_wanted=2)
    return audit, second


def token_client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api


def test_a_blind_row_is_blind_in_every_view_filter_api_answer_and_export(audited):
    audit, second = audited
    assert audit.queue_score is not None and audit.score < 0.5
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    consumer = make_user("scientist", "consumer")
    client = page_client(alice)
    score_text = f"{audit.score:.3f}"

    def page(query: str) -> str:
        return client.get(f"/nights/{NIGHT}/?per_page=200&{query}").content.decode()

    def article(html: str) -> str:
        found = re.search(rf'<article[^>]*data-tracklet="{audit.pk}".*?</article>', html, re.S)
        return found.group(0) if found else ""

    for query in ("", "status=all", "order=informative&status=all", "order=asc&status=all"):
        row = article(page(query))
        assert 'data-blind="1"' in row, query
        assert (
            score_text not in row and "<bdi>CR</bdi> 0.90" not in row and "auto-rejected" not in row
        )
    # not an auto-rejected row to alice, and no filter finds it by its score or classes
    assert article(page("status=auto_rejected")) == ""
    assert article(page("status=all&score_max=0.3")) == ""
    assert article(page("status=all&stamp_class=CR")) == ""
    assert article(page("status=all&score_min=0.5")) != ""  # where it sits in the queue
    assert "disabled" in re.search(r'<select name="stamp_class"[^>]*>', page("")).group(0)

    api = token_client(alice)
    listed = api.get("/api/v1/tracklets/", {"tracklet": audit.survey_id}).json()["results"]
    assert [(r["score"], r["blind"], r["status"]) for r in listed] == [(None, True, "to review")]
    detail = api.get(f"/api/v1/tracklets/{audit.pk}/").json()
    assert (detail["score"], detail["model_version"]) == (None, None)
    low = api.get("/api/v1/tracklets/", {"score_max": 0.3, "page_size": 100}).json()["results"]
    assert audit.pk not in [r["id"] for r in low]
    scored = api.get("/api/v1/tracklets/", {"status": "scored", "page_size": 100}).json()
    assert audit.pk not in [r["id"] for r in scored["results"]]
    # accounts that do not screen see the score (the pipeline reads scores back)
    seen = token_client(consumer).get(f"/api/v1/tracklets/{audit.pk}/").json()
    assert seen["score"] == pytest.approx(audit.score) and seen["blind"] is False

    # others' verdicts on a row still blind to alice stay out of her export
    verdict_record(tracklet_id=second.pk, reviewer=bob, value="real")
    exported = api.get("/api/v1/export/verdicts/").json()["results"]
    assert second.pk not in [r["tracklet_id"] for r in exported]
    assert len(token_client(consumer).get("/api/v1/export/verdicts/").json()["results"]) == 1
    give(client, second, "bogus")
    exported = api.get("/api/v1/export/verdicts/").json()["results"]
    assert sorted(r["reviewer"] for r in exported if r["tracklet_id"] == second.pk) == [
        "alice",
        "bob",
    ]

    # a stamp class and a verdict on the blind row: history says nothing was shown ...
    detection = audit.detections.first()
    response = api.post(f"/api/v1/detections/{detection.pk}/label/", {"stamp_class": "AST"})
    assert response.status_code == 201
    label = StampLabel.objects.get(detection=detection)
    assert (label.class_shown, label.probability_shown, label.blind) == ("", None, True)
    cr = StampClass.objects.get(name="CR")
    StampLabel.objects.create(detection=detection, reviewer=bob, stamp_class=cr)
    labels = api.get("/api/v1/export/labels/").json()["results"]  # bob's opinion: not yet
    assert [(r["reviewer"], r["blind"]) for r in labels] == [("alice", True)]
    # nor on her page: the stamp shows her own class, not bob's later one
    stamp = re.search(rf'<figure[^>]*data-detection="{detection.pk}".*?</figure>', page(""), re.S)
    assert "→ <bdi>AST</bdi>" in stamp.group(0) and "CR" not in stamp.group(0)
    answer = give(client, audit, "real")
    verdict = Verdict.objects.get(tracklet=audit, reviewer=alice)
    assert (verdict.score_shown, verdict.blind) == (None, True)
    assert verdict.model_version_shown == audit.model_version
    # ... and the row comes back revealed: score, classes, status
    assert 'data-blind="0"' in answer["row"] and score_text in answer["row"]
    assert "<bdi>CR</bdi> 0.90" in answer["row"]
    assert "→ <bdi>CR</bdi>" in answer["row"]  # the latest class, anyone's, once revealed
    assert api.get(f"/api/v1/tracklets/{audit.pk}/").json()["score"] == pytest.approx(audit.score)
    # a verdict on a row that was not blind records the score that was on the screen
    passing = Tracklet.objects.get(survey_id="T000")
    give(client, passing, "bogus")  # blind in the to-review queue
    give(client, passing, "real")  # now revealed: judged by alice
    shown = list(
        Verdict.objects.filter(tracklet=passing).order_by("id").values_list("blind", "score_shown")
    )
    assert shown == [(True, None), (False, pytest.approx(passing.score))]


def test_undo_reaches_back_across_pages_and_page_loads(thirty):
    alice = make_user("alice", "reviewer")
    client = page_client(alice)
    for name in ("P03", "P17", "P25"):  # three pages apart, in this order
        give(client, thirty[name], "real")

    def undo():
        return client.post(f"/nights/{NIGHT}/undo/", "{}", content_type="application/json")

    assert undo().json()["survey_id"] == "P25"
    assert undo().json()["survey_id"] == "P17"
    verdict_record(tracklet_id=thirty["P10"].pk, reviewer=alice, value="bogus")
    assert undo().json()["survey_id"] == "P10"
    body = undo().json()
    assert body["survey_id"] == "P03" and 'data-verdict=""' in body["row"]
    response = undo()
    assert response.status_code == 400 and "nothing to undo" in response.json()["detail"]
    standing = Verdict.objects.filter(reviewer=alice).order_by("id").values_list("value", flat=True)
    assert list(standing).count("withdrawn") == 4


def test_two_reviewers_loading_one_night_get_different_tracklets(thirty):
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    Tracklet.objects.filter(pk=thirty["P02"].pk).update(reviews_wanted=2)  # double screening
    a = rows_of(page_client(alice).get(f"/nights/{NIGHT}/?per_page=10").content.decode())
    b = rows_of(page_client(bob).get(f"/nights/{NIGHT}/?per_page=10").content.decode())
    assert a == [f"P{i:02d}" for i in range(10)]
    # bob's page leaves out what alice holds, but not the tracklet drawn for two reviewers
    assert b == ["P02"] + [f"P{i:02d}" for i in range(10, 19)]
    # a lapsed claim frees the rows; who came first keeps them, the other is told within a poll
    ReviewClaim.objects.filter(reviewer=alice).delete()
    carol = make_user("carol", "reviewer")
    c = rows_of(page_client(carol).get(f"/nights/{NIGHT}/?per_page=10").content.decode())
    assert c[:3] == ["P00", "P01", "P02"]
    poll = page_client(alice).post(
        f"/nights/{NIGHT}/presence/",
        json.dumps({"tracklets": [thirty[n].pk for n in ("P00", "P01", "P02")]}),
        content_type="application/json",
    )
    taken = poll.json()["taken"]
    assert taken == {
        str(thirty["P00"].pk): "carol is on it",
        str(thirty["P01"].pk): "carol is on it",
        str(thirty["P02"].pk): "bob and carol are on it",  # the two it wants
    }
    verdict_record(tracklet_id=thirty["P00"].pk, reviewer=carol, value="real")
    poll = page_client(bob).post(
        f"/nights/{NIGHT}/presence/",
        json.dumps({"tracklets": [thirty["P00"].pk]}),
        content_type="application/json",
    )
    assert poll.json()["taken"] == {str(thirty["P00"].pk): "judged by carol"}
    # leaving the page gives its rows back
    page_client(carol).post(
        f"/nights/{NIGHT}/presence/",
        json.dumps({"tracklets": [thirty[n].pk for n in c], "release": True}),
        content_type="application/json",
    )
    assert not ReviewClaim.objects.filter(reviewer=carol).exists()


def test_the_page_endpoints_answer_bad_requests_clearly(thirty):
    alice = make_user("alice", "reviewer")
    client = page_client(alice)
    url = f"/tracklets/{thirty['P00'].pk}/verdict/"
    bad = client.post(url, "not json", content_type="application/json")
    assert bad.status_code == 400 and "JSON" in bad.json()["detail"]
    bad = client.post(url, json.dumps({"value": "maybe"}), content_type="application/json")
    assert bad.status_code == 400 and "must be one of" in bad.json()["detail"]
    bad = client.post(url, json.dumps({"value": "real", "blind": "yes"}), "application/json")
    assert bad.status_code == 400 and "blind" in bad.json()["detail"]
    missing = client.post(
        "/tracklets/999999/verdict/", json.dumps({"value": "real"}), "application/json"
    )
    assert missing.status_code == 404
    bad = client.post(
        f"/nights/{NIGHT}/presence/", json.dumps({"tracklets": "all"}), "application/json"
    )
    assert bad.status_code == 400
    pipeline = page_client(make_user("pipe", "pipeline"))
    assert pipeline.post(url, json.dumps({"value": "real"}), "application/json").status_code == 403
    assert not Verdict.objects.exists()
    assert QueueAssignment.objects.count() == 0


def test_a_claim_is_made_once_and_renewed_keeping_when_it_was_first_made(thirty):
    """Taking the same rows again (the page's poll) moves each claim's expiry forward and keeps
    its first time, which decides who got there first; a row named twice is one claim."""
    import datetime

    from django.utils import timezone

    from screening.review.queue import claims_take

    alice = make_user("alice", "reviewer")
    ids = [t.pk for t in list(thirty.values())[:3]]
    claims_take(reviewer=alice, tracklet_ids=[*ids, ids[0]])
    first = {c.tracklet_id: (c.created_at, c.expires_at) for c in ReviewClaim.objects.all()}
    assert set(first) == set(ids)
    ReviewClaim.objects.update(expires_at=timezone.now() + datetime.timedelta(seconds=5))
    claims_take(reviewer=alice, tracklet_ids=ids)
    again = {c.tracklet_id: (c.created_at, c.expires_at) for c in ReviewClaim.objects.all()}
    assert ReviewClaim.objects.count() == 3
    for pk in ids:
        assert again[pk][0] == first[pk][0]
        assert again[pk][1] >= first[pk][1] > timezone.now() + datetime.timedelta(seconds=200)


def test_taking_claims_answers_everyones_live_claims_in_the_order_they_were_made(thirty):
    """The claims a page takes come back with the others' live ones, by time made (read by the
    same statement on PostgreSQL): as a fresh read of the table gives them, lapsed ones left
    out, so that who got there first is decided the same way."""
    import datetime

    from django.utils import timezone

    from screening.review.queue import claims_live, claims_take

    alice, bob, carol = (make_user(n, "reviewer") for n in ("alice", "bob", "carol"))
    ids = [t.pk for t in list(thirty.values())[:3]]
    claims_take(reviewer=alice, tracklet_ids=ids[:2])
    claims_take(reviewer=carol, tracklet_ids=ids[1:])
    ReviewClaim.objects.filter(reviewer=carol, tracklet_id=ids[2]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )  # lapsed
    answer = claims_take(reviewer=bob, tracklet_ids=ids)
    assert answer == {
        ids[0]: [(alice.pk, "alice"), (bob.pk, "bob")],
        ids[1]: [(alice.pk, "alice"), (carol.pk, "carol"), (bob.pk, "bob")],
        ids[2]: [(bob.pk, "bob")],
    }
    assert answer == claims_live(ids)
    # taken again later, bob's first claims keep their place before anyone who came after
    dave = make_user("dave", "reviewer")
    claims_take(reviewer=dave, tracklet_ids=ids[:1])
    assert claims_take(reviewer=bob, tracklet_ids=ids[:1])[ids[0]] == [
        (alice.pk, "alice"),
        (bob.pk, "bob"),
        (dave.pk, "dave"),
    ]

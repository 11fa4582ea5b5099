"""Audited auto-rejection: the keyed draw, the blind queue (page and API), the estimate and its
exact interval against a hand computation, the alarm; gold and second screening, also blind."""

from __future__ import annotations

import logging
import math
import re

import pytest
from django.test import Client

from screening.models import Night, QueueAssignment, Tracklet
from screening.reports.reviewer_quality import cohen_kappa, gold_mark, reviewer_quality
from screening.review.audit import (
    audit_key,
    clopper_pearson,
    judged_needed,
    night_model_estimate,
    sample_keys,
)
from screening.review.verdicts import verdict_record
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("blind_rows")]


def binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_the_exact_interval_is_the_hand_computed_clopper_pearson():
    # k = 0: the upper bound has a closed form, 1 - (alpha/2)^(1/n).
    assert clopper_pearson(0, 8, 0.95) == (0.0, pytest.approx(1 - 0.025 ** (1 / 8), rel=1e-9))
    # k = 1: so has the lower bound, 1 - (1 - alpha/2)^(1/n).
    low, high = clopper_pearson(1, 8, 0.95)
    assert low == pytest.approx(1 - 0.975 ** (1 / 8), rel=1e-9)
    # The upper bound p is where P(X <= k; n, p) = alpha/2; the lower where P(X >= k) = alpha/2.
    assert binomial_cdf(1, 8, high) == pytest.approx(0.025, abs=1e-9)
    low, high = clopper_pearson(3, 12, 0.95)
    assert binomial_cdf(3, 12, high) == pytest.approx(0.025, abs=1e-9)
    assert 1 - binomial_cdf(2, 12, low) == pytest.approx(0.025, abs=1e-9)
    assert clopper_pearson(5, 5, 0.95)[1] == 1.0
    # Audits needed with none real for the upper bound to reach 2%: 1 - 0.025^(1/n) <= 0.02.
    n = judged_needed(0.02, 0.95)
    assert 1 - 0.025 ** (1 / n) <= 0.02 < 1 - 0.025 ** (1 / (n - 1))


def test_the_draw_is_keyed_and_reproducible(settings):
    a = audit_key(night="2026-11-24", version="v1", survey_id="T1")
    assert a == audit_key(night="2026-11-24", version="v1", survey_id="T1")
    assert a != audit_key(night="2026-11-24", version="v2", survey_id="T1")
    settings.AUDIT_SECRET = "another secret"
    assert a != audit_key(night="2026-11-24", version="v1", survey_id="T1")
    keys = {1: 0.5, 2: 0.01, 3: 0.9, 4: 0.2, 5: 0.015}
    assert sample_keys(keys, rate=0.02, minimum=0) == {2, 5}
    assert sample_keys(keys, rate=0.02, minimum=3) == {2, 5, 4}


@pytest.fixture
def night(settings):
    """20 tracklets passing a 0.5 threshold, 30 auto-rejected; audits: 10% topped up to 8."""
    settings.AUDIT_RATE = 0.1
    settings.AUDIT_MIN_PER_NIGHT = 8
    settings.SECOND_SCREENING_RATE = 0.0
    model = model_version(threshold=0.5)
    for i in range(50):
        tracklet = ingest_tracklet(f"T{i:03d}", seed=i, n=3)
        score = 0.55 + 0.02 * i if i < 20 else 0.01 * (i - 19)
        score_tracklet(tracklet, model, score=score, top_class="AST" if i < 20 else "CR")
    return Night.objects.get(), model


def audits(model) -> list[Tracklet]:
    ids = QueueAssignment.objects.filter(kind="audit", model_version=model).values("tracklet")
    return list(Tracklet.objects.filter(pk__in=ids).order_by("survey_id"))


def test_the_sample_is_the_one_the_secret_derives(night):
    night, model = night
    rejected = Tracklet.objects.filter(score__lt=0.5)
    keys = {
        t.pk: audit_key(night=NIGHT, version=model.version, survey_id=t.survey_id) for t in rejected
    }
    expected = sample_keys(keys, rate=0.1, minimum=8)
    assert {t.pk for t in audits(model)} == expected
    assert len(expected) >= 8
    # Scoring again (a worker's retry) draws nothing new.
    again = rejected.first()
    score_tracklet(again, model, score=again.score, top_class="CR")
    assert {t.pk for t in audits(model)} == expected


def row_html(html: str, pk: int) -> str:
    start = html.index(f'data-tracklet="{pk}"')
    return html[html.rindex("<article", 0, start) : html.index("</article>", start)]


def normalised(row: str) -> str:
    """A row with what differs between any two rows (ids, names, motion, stamps) taken out."""
    row = re.sub(r'data-(tracklet|detail|detection)="[^"]*"', "", row)
    row = re.sub(r'href="[^"]*"|src="[^"]*"|style="[^"]*"', "", row)
    row = re.sub(r">T\d+<", "><", row)
    return re.sub(r"-?\d+(\.\d+)?", "N", row)


def test_audit_rows_are_blind_in_the_page_the_api_and_the_order(night, reviewer):
    night, model = night
    drawn = audits(model)
    client = Client()
    client.force_login(reviewer)
    html = client.get(f"/nights/{NIGHT}/?per_page=200").content.decode()
    shown = [int(pk) for pk in re.findall(r'<article[^>]*data-tracklet="(\d+)"', html)]
    assert {t.pk for t in drawn} <= set(shown), "every audit row is in the to-review queue"
    assert len(shown) == 20 + len(drawn)
    # Every row reads the same once ids, names and numbers are taken out.
    shapes = {normalised(row_html(html, pk)) for pk in shown}
    assert len(shapes) == 1, shapes
    queue_html = html[html.index('<div id="queue"') : html.index('<nav class="pager"')]
    assert "auto-rejected" not in queue_html and "rejected" not in queue_html
    assert "class after verdict" in queue_html
    for t in drawn:
        assert f"{t.score}" not in queue_html
    # The order mixes them in: not all at the end as their scores would put them.
    positions = sorted(shown.index(t.pk) for t in drawn)
    assert positions[0] < len(shown) - len(drawn)
    # The API the reviewer sees: the same rows, the same fields, no score while blind.
    body = client.get(f"/api/v1/nights/{NIGHT}/queue/").json()
    assert body["blind"] is True
    rows = body["rows"]
    assert [r["id"] for r in rows] == shown[:50]
    assert {r["status"] for r in rows} == {"to review"}
    assert {r["score"] for r in rows} == {None}
    assert {s["top_class"] for r in rows for s in r["stamps"]} == {""}
    assert len({tuple(sorted(r)) for r in rows}) == 1
    # The tracklet's own page is blind too, for an audit row as for a passing one.
    for pk in (drawn[0].pk, shown[0]):
        page = client.get(f"/tracklets/{pk}/").content.decode()
        assert "blind-note" in page and "prediction-history" not in page


def test_the_estimate_counts_the_auditing_verdicts_and_matches_the_hand_computation(
    night, reviewer, caplog
):
    night, model = night
    drawn = audits(model)
    n = len(drawn)
    real = drawn[:2]
    for t in drawn:
        verdict_record(tracklet_id=t.pk, reviewer=reviewer, value="real" if t in real else "bogus")
    # A second reviewer's verdict does not change the audit: the first reviewer's counts.
    verdict_record(tracklet_id=drawn[-1].pk, reviewer=make_user("bob", "reviewer"), value="real")
    result = night_model_estimate(night, model)
    assert (result.rejected, result.drawn, result.judged, result.real) == (30, n, n, 2)
    assert result.rate == pytest.approx(2 / n)
    assert binomial_cdf(2, n, result.high) == pytest.approx(0.025, abs=1e-9)
    assert 1 - binomial_cdf(1, n, result.low) == pytest.approx(0.025, abs=1e-9)
    assert result.lost == pytest.approx(30 * 2 / n)
    # 2 real in ~8: the lower bound is above 2%: alarm, on the summary, the API and the banner.
    assert result.status == "alarm"
    client = Client()
    client.force_login(reviewer)
    summary = client.get(f"/nights/{NIGHT}/summary/").content.decode()
    assert 'data-status="alarm"' in summary
    assert "Audit alarm" in summary and "data-alarm" in summary
    body = client.get(f"/api/v1/nights/{NIGHT}/audit/").json()
    assert body["alarm"] is True and body["models"][0]["real"] == 2
    model_body = client.get(f"/api/v1/models/{model.version}/audit/").json()
    assert model_body["alarm"] is True


def test_the_pages_print_the_tracklets_lost_as_whole_tracklets(night, reviewer):
    """2 real in the judged audits of 30 auto-rejected: 30 x 2 / n real lost (7.5 for 8), a
    fraction of a tracklet nobody can lose; the pages print it rounded, the bound rounded up."""
    night, model = night
    drawn = audits(model)
    for t in drawn:
        value = "real" if t in drawn[:2] else "bogus"
        verdict_record(tracklet_id=t.pk, reviewer=reviewer, value=value)
    result = night_model_estimate(night, model)
    assert result.lost != int(result.lost) and result.lost_high != int(result.lost_high)
    client = Client()
    client.force_login(reviewer)
    pages = {
        "summary": client.get(f"/nights/{NIGHT}/summary/").content.decode(),
        "model": client.get(f"/models/{model.version}/").content.decode(),
    }
    for name, page in pages.items():
        lost = re.findall(r"<span data-lost>([^<]*)</span>", page)
        high = re.findall(r"<span data-lost-high>([^<]*)</span>", page)
        assert lost and high, name
        assert f"≈{math.floor(result.lost + 0.5)}" in lost, name
        assert str(math.ceil(result.lost_high)) in high, name
        for shown in lost + high:
            assert re.fullmatch(r"≈?\d+|—", shown), (name, shown)
        assert f"{result.lost:.1f}" not in page and f"{result.lost_high:.1f}" not in page, name


def test_the_alarm_is_logged_when_an_audit_verdict_puts_the_bound_over(
    night, reviewer, caplog, django_capture_on_commit_callbacks
):
    night, model = night
    drawn = audits(model)
    with caplog.at_level(logging.WARNING, logger="screening.review.audit"):
        with django_capture_on_commit_callbacks(execute=True):
            verdict_record(tracklet_id=drawn[0].pk, reviewer=reviewer, value="bogus")
        assert "AUDIT ALARM" not in caplog.text
        for t in drawn[1:4]:
            with django_capture_on_commit_callbacks(execute=True):
                verdict_record(tracklet_id=t.pk, reviewer=reviewer, value="real")
    assert f"AUDIT ALARM night {NIGHT} model {model.version[:12]}: 2 real in 3 audits" in (
        caplog.text
    )
    # logged when the night enters the alarm, not again at every later verdict
    with caplog.at_level(logging.WARNING, logger="screening.review.audit"):
        with django_capture_on_commit_callbacks(execute=True):
            verdict_record(tracklet_id=drawn[4].pk, reviewer=reviewer, value="real")
    assert caplog.text.count("AUDIT ALARM") == 1  # not at 3 real in 4, nor at 4 in 5


def test_no_real_in_enough_audits_is_ok_and_few_are_pending(settings, reviewer):
    from screening.review.audit import estimate

    needed = judged_needed(settings.AUDIT_TARGET_LOSS, settings.AUDIT_CONFIDENCE)
    assert estimate(rejected=9000, drawn=200, judged=needed, real=0).status == "ok"
    assert estimate(rejected=9000, drawn=200, judged=20, real=0).status == "pending"
    assert estimate(rejected=9000, drawn=200, judged=needed, real=3).status == "alarm"


def test_gold_and_second_screening_rows_are_blind_and_stay_for_each_reviewer(night, settings):
    night, model = night
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    passing = list(Tracklet.objects.filter(score__gte=0.5).order_by("-score"))
    rejected = Tracklet.objects.filter(score__lt=0.5).exclude(pk__in=[t.pk for t in audits(model)])
    gold_real, gold_bogus = passing[5], rejected.first()
    gold_mark(
        night=night,
        truth={gold_real.survey_id: "real", gold_bogus.survey_id: "bogus"},
        source="test",
    )
    second = passing[3]
    Tracklet.objects.filter(pk=second.pk).update(reviews_wanted=2)
    client = Client()
    client.force_login(alice)

    def queue(user) -> list[int]:
        client.force_login(user)
        html = client.get(f"/nights/{NIGHT}/?per_page=200").content.decode()
        return [int(pk) for pk in re.findall(r'<article[^>]*data-tracklet="(\d+)"', html)]

    assert {gold_real.pk, gold_bogus.pk, second.pk} <= set(queue(alice))
    for t in (gold_real, gold_bogus, second, passing[0]):
        verdict_record(tracklet_id=t.pk, reviewer=alice, value="bogus")
    bob_sees = queue(bob)
    # Gold stays for every reviewer, a second screening for a second one; an ordinary row
    # judged once does not.
    assert {gold_real.pk, gold_bogus.pk, second.pk} <= set(bob_sees)
    assert passing[0].pk not in bob_sees
    for t in (gold_real, gold_bogus, second):
        verdict_record(tracklet_id=t.pk, reviewer=bob, value="real" if t != gold_bogus else "bogus")
    assert second.pk not in queue(make_user("carol", "reviewer"))
    quality = {q.reviewer: q for q in reviewer_quality()}
    assert (quality["alice"].gold_judged, quality["alice"].gold_correct) == (2, 1)
    assert (quality["bob"].gold_judged, quality["bob"].gold_correct) == (2, 2)
    assert quality["bob"].gold_accuracy == 1.0
    # One shared ordinary tracklet (the second screening): alice bogus, bob real.
    assert quality["alice"].shared == 1
    admin = make_user("boss", "admin")
    client.force_login(admin)
    rows = {r["reviewer"]: r for r in client.get("/api/v1/reviewers/").json()}
    assert rows["alice"]["gold_correct"] == 1
    assert 'data-reviewer="bob"' in client.get("/reviewers/").content.decode()
    client.force_login(alice)
    assert client.get("/api/v1/reviewers/").status_code == 403


def test_cohen_kappa_matches_the_hand_computation():
    # 10 pairs: agree on 7 (4 real-real, 3 bogus-bogus); A says real 6 times, B 5 times.
    pairs = [("real", "real")] * 4 + [("bogus", "bogus")] * 3
    pairs += [("real", "bogus")] * 2 + [("bogus", "real")]
    po, pe = 0.7, 0.6 * 0.5 + 0.4 * 0.5
    assert cohen_kappa(pairs) == pytest.approx((po - pe) / (1 - pe))
    assert cohen_kappa([("real", "real")] * 3) is None


def test_an_audit_verdict_can_be_corrected_or_undone_and_the_row_returns_blind(night, reviewer):
    """A mistyped key on an audit row is not a lost real for ever: the reviewer's correction
    is the outcome, and undo puts the row back in the queue at its blind place."""
    from screening.review.queue import QueueFilters, queue_tracklets

    night, model = night
    row = audits(model)[0]
    place = row.queue_score
    assert place is not None and place >= model.threshold

    def queue_ids():
        tracklets = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters())
        return set(tracklets.values_list("pk", flat=True))

    assert row.pk in queue_ids()
    verdict_record(tracklet_id=row.pk, reviewer=reviewer, value="real")
    e = night_model_estimate(night, model)
    assert (e.judged, e.real) == (1, 1) and row.pk not in queue_ids()
    verdict_record(tracklet_id=row.pk, reviewer=reviewer, value="bogus")  # a correction
    e = night_model_estimate(night, model)
    assert (e.judged, e.real) == (1, 0)
    verdict_record(tracklet_id=row.pk, reviewer=reviewer, value="withdrawn")  # undo
    e = night_model_estimate(night, model)
    assert (e.judged, e.real) == (0, 0)
    row.refresh_from_db()
    assert row.queue_score == place and row.pk in queue_ids()
    # another reviewer's verdict, after the first one's, does not change the outcome
    verdict_record(tracklet_id=row.pk, reviewer=reviewer, value="bogus")
    verdict_record(tracklet_id=row.pk, reviewer=make_user("other", "reviewer"), value="real")
    e = night_model_estimate(night, model)
    assert (e.judged, e.real) == (1, 0)

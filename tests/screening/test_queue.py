"""The queue: sort order, filters, and a number of queries that does not grow with the page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from screening.models import Night
from screening.review.queue import QueueFilters, queue_rows, queue_tracklets
from screening.review.verdicts import verdict_record
from tests.stamps import ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db


@pytest.fixture
def night(reviewer):
    model = model_version(threshold=0.8)
    scores = {"A": 0.95, "B": 0.85, "C": 0.5, "D": None, "E": 0.99}
    for seed, (name, score) in enumerate(scores.items()):
        tracklet = ingest_tracklet(name, seed=seed)
        if score is not None:
            score_tracklet(tracklet, model, score=score, top_class="CR" if name == "B" else "AST")
    return Night.objects.get()


def ids(night, reviewer, **filters) -> list[str]:
    tracklets = queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters(**filters))
    return [t.survey_id for t in tracklets]


def test_it_sorts_by_score_highest_first_unscored_last_and_reverses(night, reviewer):
    assert ids(night, reviewer, status="all") == ["E", "A", "B", "C", "D"]
    assert ids(night, reviewer, status="all", order="asc") == ["C", "B", "A", "E", "D"]


def test_to_review_leaves_out_auto_rejected_and_reviewed(night, reviewer):
    assert ids(night, reviewer) == ["E", "A", "B", "D"]
    assert ids(night, reviewer, status="auto_rejected") == ["C"]
    verdict_record(
        tracklet_id=night.tracklets.get(survey_id="A").pk, reviewer=reviewer, value="real"
    )
    assert ids(night, reviewer) == ["E", "B", "D"]
    assert ids(night, reviewer, status="reviewed") == ["A"]


def test_score_range_and_stamp_class_filters(night, reviewer):
    assert ids(night, reviewer, status="all", score_min=0.8, score_max=0.96) == ["A", "B"]
    assert ids(night, reviewer, status="all", stamp_class="CR") == ["B"]


def test_the_class_filter_follows_the_model_whose_score_is_shown(night, reviewer):
    """A class matches only as a whole name, by the model that scored the row: rescored by
    another model, then by the first again (its stored score taken back), the rows move."""
    from screening.scoring.store import TrackletResult, scores_store
    from tests.stamps import PAPER_CLASSES

    second = model_version("b" * 64, threshold=0.8, active=False)
    first = night.tracklets.get(survey_id="A").model_version
    a = night.tracklets.get(survey_id="A")
    # one stamp COMET, the others NOISE: the row matches either, and no name part matches
    comet = [0.9 if c == "COMET" else 0.1 / 7 for c in PAPER_CLASSES]
    noise = [0.9 if c == "NOISE" else 0.1 / 7 for c in PAPER_CLASSES]
    scores_store(
        model_version=second,
        results=[
            TrackletResult(
                tracklet_id=a.pk,
                stamp_probabilities=[comet] + [noise] * (a.n_detections - 1),
                score=0.97,
            )
        ],
    )
    assert ids(night, reviewer, status="all", stamp_class="COMET") == ["A"]
    assert ids(night, reviewer, status="all", stamp_class="NOISE") == ["A"]
    assert "A" not in ids(night, reviewer, status="all", stamp_class="AST")
    assert ids(night, reviewer, status="all", stamp_class="AS") == []
    assert ids(night, reviewer, status="all", stamp_class="OMET") == []
    # the first model made active again: its stored score and classes come back
    scores_store(
        model_version=first,
        results=[TrackletResult(tracklet_id=a.pk, stamp_probabilities=[], score=0.0)],
    )
    assert ids(night, reviewer, status="all", stamp_class="COMET") == []
    assert ids(night, reviewer, status="all", stamp_class="AST") == ["E", "A", "C"]


def test_hide_what_i_judged_counts_a_withdrawn_verdict_as_not_judged(night, reviewer):
    from tests.conftest import make_user

    a = night.tracklets.get(survey_id="A").pk
    e = night.tracklets.get(survey_id="E").pk
    verdict_record(tracklet_id=a, reviewer=reviewer, value="bogus")
    verdict_record(tracklet_id=e, reviewer=reviewer, value="real")
    verdict_record(tracklet_id=e, reviewer=reviewer, value="withdrawn")
    assert ids(night, reviewer, status="all", hide_judged=True) == ["E", "B", "C", "D"]
    other = make_user("other", "reviewer")
    assert ids(night, other, status="all", hide_judged=True) == ["E", "A", "B", "C", "D"]


def test_building_rows_takes_the_same_number_of_queries_for_any_page_size(night, reviewer):
    for seed in range(10, 30):
        ingest_tracklet(f"X{seed}", seed=seed)
    counts = []
    for size in (2, 20):
        tracklets = list(
            queue_tracklets(night=night, reviewer=reviewer, filters=QueueFilters(status="all"))[
                :size
            ]
        )
        with CaptureQueriesContext(connection) as captured:
            rows = queue_rows(tracklets, reviewer=reviewer)
        assert len(rows) == size and all(len(r.stamps) == 4 for r in rows)
        counts.append(len(captured))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("blind", [False, True])
def test_the_queue_page_takes_the_same_queries_for_10_rows_as_for_20_in_every_view(
    client, reviewer, settings, blind
):
    """Every view, order and next page of the queue: a row reads nothing that its
    page's queries did not (a field left out of the rows' columns would cost a query a row).
    Rows of every kind: scored above and below the threshold, unscored, judged, with digest2's
    scores, unlike training, not moving, blind."""
    from screening.models import Tracklet

    settings.SCREENING_BLIND = blind
    model = model_version(threshold=0.8)
    for seed in range(26):
        tracklet = ingest_tracklet(f"R{seed:02d}", seed=seed)
        if seed % 7:
            score_tracklet(tracklet, model, score=(seed * 37 % 100) / 100)
    rows = Tracklet.objects.order_by("survey_id")
    rows.filter(survey_id__in=["R01", "R02", "R03"]).update(
        digest2_neo=88.0,
        digest2_scores={"noid": {"NEO": 88.0, "MC": 40.0, "Hun": 3.0}},
        digest2_version="digest2 test",
    )
    rows.filter(survey_id__in=["R04", "R05"]).update(unlike_training="stamps unlike training")
    rows.filter(survey_id__in=["R08", "R09"]).update(not_moving="motion within its errors")
    for name in ("R10", "R11", "R12"):
        verdict_record(tracklet_id=rows.get(survey_id=name).pk, reviewer=reviewer, value="real")
    client.force_login(reviewer)
    date = Night.objects.get().date.isoformat()
    client.get(f"/nights/{date}/?status=all&per_page=200")  # every display image drawn first
    views = ["status=to_review", "status=all", "status=all&order=asc", "status=reviewed",
             "status=auto_rejected", "status=all&order=neo", "status=all&order=informative",
             "status=all&hide_judged=1", "status=all&stamp_class=AST"]  # fmt: skip

    def page(url: str) -> tuple[int, int, bool, str | None]:
        """(queries, rows shown, whether it ends a to-review pass, the next page's cursor)"""
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        # the end of a to-review pass counts what is left: one query more
        end = response.context["remaining"] is not None
        shown = response.content.decode().count('<article class="qrow')
        return len(captured), shown, end, response.context["page"].next_cursor

    for view in views:
        counts, shown, ends = {}, {}, {}
        for size in (10, 20):
            url = f"/nights/{date}/?{view}&per_page={size}"
            counts[size, 0], shown[size, 0], ends[size, 0], cursor = page(url)
            if cursor:  # the next page, by its cursor
                counts[size, 1], shown[size, 1], ends[size, 1], _ = page(f"{url}&after={cursor}")
        assert shown[10, 0] == 10 or (10, 1) not in shown, (view, shown)
        for key, n in counts.items():
            assert n == counts[10, 0] - ends[10, 0] + ends[key], (view, counts)

"""`rows_update`: many rows' own values written in one statement, as bulk_update would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DataError, connection, transaction

from screening.bulk import rows_update
from screening.models import UNLIKE_TRAINING_MAX, Tracklet
from tests.stamps import ingest_tracklet, model_version

pytestmark = pytest.mark.django_db

FIELDS = ["score", "unlike_training", "model_version", "scored_at", "queue_score"]


def test_each_row_takes_its_own_values_and_no_other_row_changes():
    model = model_version()
    tracklets = [ingest_tracklet(f"T{i}", seed=i) for i in range(5)]
    when = datetime(2026, 11, 20, 3, 4, 5, 678000, tzinfo=UTC)
    values = {
        tracklets[0].pk: (0.25, 'stamp 2 unlike training: it\'s "odd"; ½ λ', model, when, None),
        tracklets[1].pk: (None, "", None, None, 0.5),
        tracklets[3].pk: (1.0, "x" * UNLIKE_TRAINING_MAX, model, when, -0.125),
    }
    rows = [Tracklet(pk=pk, **dict(zip(FIELDS, v, strict=True))) for pk, v in values.items()]
    assert rows_update(rows, FIELDS, batch_rows=2) == 3  # two statements
    for tracklet in tracklets:
        stored = Tracklet.objects.get(pk=tracklet.pk)
        got = tuple(getattr(stored, name) for name in FIELDS)
        if tracklet.pk in values:
            assert got == values[tracklet.pk]
        else:  # untouched, as ingest left it
            assert got == (None, "", None, None, None)


def test_a_value_the_column_cannot_hold_writes_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite keeps text of any length")
    tracklets = [ingest_tracklet(f"T{i}", seed=i) for i in range(2)]
    rows = [
        Tracklet(pk=tracklets[0].pk, score=0.5, unlike_training="fine"),
        Tracklet(pk=tracklets[1].pk, score=0.5, unlike_training="x" * (UNLIKE_TRAINING_MAX + 1)),
    ]
    with pytest.raises(DataError, match="too long"), transaction.atomic():
        rows_update(rows, ["score", "unlike_training"])
    assert set(Tracklet.objects.values_list("score", "unlike_training")) == {(None, "")}


def test_it_refuses_what_it_cannot_write():
    tracklet = ingest_tracklet("T1")
    with pytest.raises(ValueError, match="at least one field"):
        rows_update([tracklet], [])
    with pytest.raises(ValueError, match="cannot write Tracklet.id"):
        rows_update([tracklet], ["id"])
    assert rows_update([], ["score"]) == 0

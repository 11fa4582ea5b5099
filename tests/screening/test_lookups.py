"""`__any_of`: membership in a list of integer ids (one array on PostgreSQL, IN elsewhere)."""

from __future__ import annotations

import pytest

from screening.models import Detection, Tracklet
from tests.stamps import ingest_tracklet

pytestmark = pytest.mark.django_db


def test_any_of_chooses_the_same_rows_as_in():
    made = [ingest_tracklet(f"T{i}") for i in range(4)]
    ids = [made[0].pk, made[2].pk, made[2].pk]  # a repeat counts once
    assert set(Tracklet.objects.filter(pk__any_of=ids)) == {made[0], made[2]}
    assert list(
        Detection.objects.filter(tracklet_id__any_of=ids).order_by("id").values_list("id")
    ) == list(Detection.objects.filter(tracklet_id__in=ids).order_by("id").values_list("id"))
    # through a relation, and negated
    assert Detection.objects.filter(tracklet__pk__any_of=[made[1].pk]).count() == (
        made[1].detections.count()
    )
    assert set(Tracklet.objects.exclude(pk__any_of=ids)) == {made[1], made[3]}


def test_any_of_an_empty_list_chooses_nothing_and_a_non_integer_is_an_error():
    ingest_tracklet("T1")
    assert not Tracklet.objects.filter(pk__any_of=[]).exists()
    assert Tracklet.objects.exclude(pk__any_of=[]).count() == 1
    with pytest.raises(TypeError, match="integer ids"):
        list(Tracklet.objects.filter(pk__any_of=["1"]))
    with pytest.raises(TypeError, match="integer ids"):
        list(Tracklet.objects.filter(pk__any_of=[True]))

"""Concurrent uploads of the same tracklet, on real PostgreSQL connections: one copy stays."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from screening.ingest.tracklets import (
    IngestRejected,
    TrackletInput,
    stamp_from_bytes,
    tracklet_ingest,
    tracklets_ingest,
)
from screening.models import Detection, Tracklet
from tests.conftest import stored_files
from tests.stamps import NIGHT, detection_rows, stamp_files

pytestmark = pytest.mark.django_db(transaction=True)


def _send_together(inputs: list, ingest=lambda one: tracklet_ingest(tracklet=one)) -> list:
    """Run `ingest` on each input in its own thread (own connection), all at once."""
    barrier = threading.Barrier(len(inputs))
    outcomes: list[object] = [None] * len(inputs)

    def send(position: int) -> None:
        try:
            barrier.wait()
            outcomes[position] = ingest(inputs[position])
        except Exception as exc:  # the outcome under test
            outcomes[position] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _input(survey_id: str, *, mag_shift: float = 0.0) -> TrackletInput:
    rows = detection_rows(survey_id)
    for row in rows:
        row["mag"] += mag_shift
    files = stamp_files(survey_id)
    return TrackletInput(
        night=NIGHT,
        survey_id=survey_id,
        detections=rows,
        stamps={n: stamp_from_bytes(n, d) for n, d in files.items()},
    )


def test_two_concurrent_uploads_of_the_same_tracklet_leave_one_copy(media_root):
    for attempt in range(5):
        survey_id = f"SAME{attempt}"
        outcomes = _send_together([_input(survey_id), _input(survey_id)])
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
        assert sorted(o.created for o in outcomes) == [False, True]
        assert Tracklet.objects.filter(survey_id=survey_id).count() == 1
    assert Detection.objects.count() == 5 * 4
    assert len(stored_files(media_root)) == 5  # one a tracklet: the loser's was removed


def test_concurrent_uploads_with_different_content_give_one_copy_and_one_conflict():
    outcomes = _send_together([_input("DIFF"), _input("DIFF", mag_shift=0.3)])
    conflicts = [o for o in outcomes if isinstance(o, IngestRejected)]
    assert len(conflicts) == 1 and conflicts[0].status == 409
    assert Tracklet.objects.filter(survey_id="DIFF").count() == 1


def test_two_batches_sharing_a_tracklet_store_every_tracklet_once(media_root):
    """Two workers' batches hold the same tracklet: the batch that loses the race is written one
    tracklet at a time, so its other tracklets are stored and the shared one is unchanged."""
    for attempt in range(3):
        a, b, shared = (f"{name}{attempt}" for name in ("A", "B", "S"))
        batches = [[_input(a), _input(shared)], [_input(shared), _input(b)]]
        outcomes = _send_together(batches, tracklets_ingest)
        assert all(isinstance(o, list) for o in outcomes), outcomes
        first, second = outcomes
        assert first[0].created and second[1].created
        assert sorted([first[1].created, second[0].created]) == [False, True]
        assert first[1].tracklet.pk == second[0].tracklet.pk
    assert Tracklet.objects.count() == 9 and Detection.objects.count() == 36
    assert len(stored_files(media_root)) == 9

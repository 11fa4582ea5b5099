"""Scoring on inference workers: claim unscored tracklets in batches, run the model, store.

A worker process loads the active model once and reloads it when the active version changes.
Claims are leases (`Tracklet.claimed_at`): a worker killed mid-batch leaves claims that expire,
and the periodic sweep queues scoring again, so no tracklet is left unscored.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from screening.models import Detection, ModelVersion, Tracklet
from screening.queueing import request_digest2, request_displays
from screening.scoring.store import TrackletResult, scores_store

logger = logging.getLogger(__name__)

_loaded: dict[str, Any] = {}  # the model of this process: {"version": ..., "model": ...}


def active_model() -> tuple[ModelVersion, Any] | None:
    """The active model version and its loaded networks (loaded once per process and version)."""
    row = ModelVersion.objects.active()
    if row is None:
        return None
    if _loaded.get("version") != row.version:
        from classifier.inference import load_model

        _loaded.clear()
        from screening.registry.checkpoints import checkpoint_local

        model = load_model(checkpoint_local(row), **runtime_options())
        from classifier.hardware import cpu_summary

        logger.info(
            "loaded model %s in %s (CPU: %s): %s",
            row.version,
            model.runtime.precision,
            cpu_summary(),
            model.runtime,
        )
        _loaded.update(version=row.version, model=model)
    return row, _loaded["model"]


def runtime_options() -> dict[str, Any]:
    """How this worker runs models, from the INFERENCE_* settings."""
    precision = settings.INFERENCE_PRECISION
    return {
        "device": settings.INFERENCE_DEVICE,
        "precision": None if precision == "auto" else precision,
        "compile": settings.INFERENCE_COMPILE,
        "batch_stamps": settings.INFERENCE_PASS_STAMPS or None,
        "threads": settings.INFERENCE_THREADS,
    }


def unscored(model: ModelVersion) -> QuerySet[Tracklet]:
    """Tracklets the active model has still to score: new ones, and unreviewed older scores."""
    return Tracklet.objects.exclude(status=Tracklet.Status.REVIEWED).filter(
        Q(model_version__isnull=True) | ~Q(model_version=model)
    )


def _claimable(model: ModelVersion) -> QuerySet[Tracklet]:
    expired = timezone.now() - timedelta(seconds=settings.INFERENCE_CLAIM_SECONDS)
    return unscored(model).filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=expired))


def tracklets_claim(*, model: ModelVersion, max_stamps: int) -> list[Tracklet]:
    """Take up to max_stamps worth of claimable tracklets, oldest first, for this worker."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        candidates = (
            _claimable(model)
            .order_by("id")
            .select_for_update(skip_locked=skip_locked)
            .only("id", "n_detections", "pixels")[: max(1, max_stamps // 3)]
        )
        taken, stamps = [], 0
        for tracklet in candidates:
            if taken and stamps + tracklet.n_detections > max_stamps:
                break
            taken.append(tracklet)
            stamps += tracklet.n_detections
        Tracklet.objects.filter(pk__in=[t.pk for t in taken]).update(claimed_at=timezone.now())
    return taken


def tracklet_pixels(tracklet: Tracklet) -> np.ndarray:
    """The tracklet's raw stamps (n, 100, 100) float32, as ingest stored them."""
    from screening.tracklet_files import read_pixels

    return read_pixels(tracklet.pixels)


def detection_meta(tracklet_ids) -> dict[int, np.ndarray]:
    """Each tracklet's (n, 6) mjd, ra, dec, mag, x, y in detection (time) order, as stored.

    The same columns, in the same order as the tracklet's pixels, are what the model's motion
    and magnitude cues are measured from (classifier.features.META_COLUMNS), for scoring and
    retraining alike.
    """
    from classifier.features import META_COLUMNS

    rows: dict[int, list[tuple[float, ...]]] = {}
    for tracklet_id, *values in (
        Detection.objects.filter(tracklet_id__in=list(tracklet_ids))
        .order_by("tracklet_id", "index")
        .values_list("tracklet_id", *META_COLUMNS)
    ):
        rows.setdefault(tracklet_id, []).append(tuple(values))
    return {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}


def tracklets_score_pending(*, max_batches: int | None = None, digest2_after: bool = True) -> int:
    """Score claimed batches until nothing is left to score (or max_batches); return how many."""
    loaded = active_model()
    if loaded is None:
        logger.warning("no active model: tracklets stay pending")
        return 0
    row, model = loaded
    scored = batches = 0
    while max_batches is None or batches < max_batches:
        batch = tracklets_claim(model=row, max_stamps=settings.INFERENCE_BATCH_STAMPS)
        if not batch:
            break
        arrays = [tracklet_pixels(t) for t in batch]
        # every detection's metadata: the set TCN's cues, the novelty measure's and the
        # motion rule's (classifier.motion)
        by_id = detection_meta(t.pk for t in batch)
        meta = np.concatenate([by_id[t.pk] for t in batch])
        out = model.assess(np.concatenate(arrays), [len(a) for a in arrays], meta)
        results, start = [], 0
        for tracklet, array, score, unlike, still in zip(
            batch, arrays, out.scores, out.unlike_training, out.not_moving, strict=True
        ):
            results.append(
                TrackletResult(
                    tracklet_id=tracklet.pk,
                    stamp_probabilities=out.probabilities[start : start + len(array)],
                    score=float(score),
                    unlike_training=unlike,
                    not_moving=still,
                )
            )
            start += len(array)
        scored += scores_store(model_version=row, results=results)
        batches += 1
        request_displays([r.tracklet_id for r in results])
    if batches and digest2_after:
        request_digest2()  # after the model's scores, on a CPU worker
    return scored


def unscored_waiting() -> int:
    """How many tracklets wait with no live claim; the sweep queues scoring when any do."""
    row = ModelVersion.objects.active()
    return _claimable(row).count() if row is not None else 0


def unscored_stamps() -> int:
    row = ModelVersion.objects.active()
    if row is None:
        return 0
    return unscored(row).aggregate(n=Sum("n_detections"))["n"] or 0

"""Reviewer quality: accuracy on gold tracklets (known truth), agreement with other reviewers
(Cohen's kappa on tracklets both judged), and verdicts per active hour."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from screening.models import CurrentVerdict, Night, QueueAssignment, Tracklet, Verdict
from screening.review.audit import blind_rows_place, clopper_pearson
from screening.review.routing import GOLD_REVIEWS

# Gaps between a reviewer's verdicts longer than this are a break, not screening time.
ACTIVE_GAP_SECONDS = 300


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' real/bogus verdicts on the same tracklets."""
    n = len(pairs)
    if n == 0:
        return None
    agree = sum(1 for a, b in pairs if a == b) / n
    a_real = sum(1 for a, _ in pairs if a == "real") / n
    b_real = sum(1 for _, b in pairs if b == "real") / n
    chance = a_real * b_real + (1 - a_real) * (1 - b_real)
    if chance >= 1.0:
        return None  # both gave one value only: agreement beyond chance is undefined
    return (agree - chance) / (1 - chance)


@dataclass
class ReviewerQuality:
    reviewer: str
    verdicts: int
    gold_judged: int
    gold_correct: int
    gold_accuracy: float | None
    gold_accuracy_low: float | None
    shared: int  # tracklets also judged by someone else
    kappa: float | None
    verdicts_per_hour: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def reviewer_quality() -> list[ReviewerQuality]:
    """Every reviewer with a current verdict, most verdicts first."""
    current: dict[int, dict[int, str]] = defaultdict(dict)
    for tracklet_id, reviewer_id, value in CurrentVerdict.objects.exclude(
        value=Verdict.Value.WITHDRAWN
    ).values_list("tracklet_id", "reviewer_id", "value"):
        current[tracklet_id][reviewer_id] = value
    gold = dict(
        QueueAssignment.objects.filter(kind=QueueAssignment.Kind.GOLD).values_list(
            "tracklet_id", "truth"
        )
    )
    users = dict(get_user_model().objects.values_list("id", "username"))
    mine: dict[int, dict[int, str]] = defaultdict(dict)
    for tracklet_id, by in current.items():
        for reviewer_id, value in by.items():
            mine[reviewer_id][tracklet_id] = value
    times: dict[int, list] = defaultdict(list)
    for reviewer_id, when in Verdict.objects.order_by("created_at").values_list(
        "reviewer_id", "created_at"
    ):
        times[reviewer_id].append(when)
    out = []
    for reviewer_id, judged in mine.items():
        on_gold = [(v, gold[t]) for t, v in judged.items() if t in gold]
        correct = sum(1 for v, truth in on_gold if v == truth)
        low = clopper_pearson(correct, len(on_gold), settings.AUDIT_CONFIDENCE)[0]
        pairs = [
            (value, other)
            for t, value in judged.items()
            if t not in gold
            for r, other in current[t].items()
            if r != reviewer_id
        ]
        stamps = times[reviewer_id]
        active = sum(
            min((b - a).total_seconds(), ACTIVE_GAP_SECONDS)
            for a, b in zip(stamps, stamps[1:], strict=False)
        )
        out.append(
            ReviewerQuality(
                reviewer=users.get(reviewer_id, str(reviewer_id)),
                verdicts=len(judged),
                gold_judged=len(on_gold),
                gold_correct=correct,
                gold_accuracy=correct / len(on_gold) if on_gold else None,
                gold_accuracy_low=low if on_gold else None,
                shared=len({t for t in judged if t not in gold and len(current[t]) > 1}),
                kappa=cohen_kappa(pairs),
                verdicts_per_hour=(len(stamps) - 1) / (active / 3600) if active > 0 else None,
            )
        )
    return sorted(out, key=lambda q: -q.verdicts)


def reviewer_weights_named() -> dict[int, tuple[str, float]]:
    """Weights for retraining from gold accuracy: reviewer id to (username, accuracy on gold),
    1.0 for a reviewer who has judged no gold tracklet."""
    users = {u.username: u.pk for u in get_user_model().objects.only("id", "username")}
    return {
        users[q.reviewer]: (q.reviewer, q.gold_accuracy if q.gold_accuracy is not None else 1.0)
        for q in reviewer_quality()
        if q.reviewer in users
    }


def gold_mark(*, night: Night, truth: dict[str, str], source: str) -> int:
    """Make these tracklets of the night (survey id to real/bogus) gold: blind rows that stay in
    every reviewer's queue until each has judged them. Returns how many were added."""
    bad = {k: v for k, v in truth.items() if v not in ("real", "bogus")}
    if bad:
        raise ValueError(f"gold truth must be real or bogus, got {sorted(bad.items())[:3]}")
    tracklets = dict(
        Tracklet.objects.filter(night=night, survey_id__in=truth).values_list("survey_id", "id")
    )
    missing = sorted(set(truth) - set(tracklets))
    if missing:
        raise ValueError(f"no such tracklet on night {night.date}: {', '.join(missing[:5])}")
    with transaction.atomic():
        existing = set(
            QueueAssignment.objects.filter(
                kind=QueueAssignment.Kind.GOLD, tracklet_id__in=tracklets.values()
            ).values_list("tracklet_id", flat=True)
        )
        new = [(sid, pk) for sid, pk in tracklets.items() if pk not in existing]
        QueueAssignment.objects.bulk_create(
            [
                QueueAssignment(
                    tracklet_id=pk, kind=QueueAssignment.Kind.GOLD, truth=truth[sid], source=source
                )
                for sid, pk in new
            ]
        )
        Tracklet.objects.filter(pk__in=[pk for _, pk in new]).update(reviews_wanted=GOLD_REVIEWS)
        by_model: dict[int, list[int]] = defaultdict(list)
        for pk, model_id in Tracklet.objects.filter(
            pk__in=[pk for _, pk in new], model_version__isnull=False
        ).values_list("pk", "model_version_id"):
            by_model[model_id].append(pk)
        from screening.models import ModelVersion

        for model in ModelVersion.objects.filter(pk__in=by_model):
            blind_rows_place(night=night, model=model, tracklet_ids=by_model[model.pk])
    return len(new)

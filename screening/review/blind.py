"""Blind screening: which rows a reviewer must judge without seeing the model's score, classes
or others' verdicts, in every view, filter, API answer and export, until their own verdict.

A row is blind for a reviewer when blind screening is on (SCREENING_BLIND), the reviewer gives
verdicts (accounts that do not screen see everything), and the row is in their to-review queue:
wanted by more reviewers than have judged it, not judged by them, and passing the threshold or
placed in the queue blind (an audit of auto-rejection, a gold row).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, F, OuterRef, Q

from screening.models import CurrentVerdict, Tracklet, Verdict


def mine_q(reviewer: AbstractBaseUser, tracklet: Any = None) -> Exists:
    """The reviewer's current real/bogus verdict on the tracklet (OuterRef pk by default)."""
    return Exists(
        CurrentVerdict.objects.filter(
            tracklet=tracklet if tracklet is not None else OuterRef("pk"), reviewer=reviewer
        ).exclude(value=Verdict.Value.WITHDRAWN)
    )


def below_threshold_q(prefix: str = "") -> Q:
    """Scored below its model's threshold and like its training data: auto-rejected. A
    tracklet unlike the training data (classifier.novelty) is never auto-rejected: it stays in
    the to-review queue whatever its score. `prefix` ("tracklet__") for related rows."""
    return Q(
        **{
            f"{prefix}score__isnull": False,
            f"{prefix}score__lt": F(f"{prefix}model_version__threshold"),
            f"{prefix}unlike_training": "",
        }
    )


def auto_rejected(tracklet: Tracklet) -> bool:
    """`below_threshold_q` for one loaded tracklet (model_version loaded)."""
    if tracklet.score is None or not tracklet.model_version_id or tracklet.unlike_training:
        return False
    return tracklet.score < tracklet.model_version.threshold


def queued_q(prefix: str = "") -> Q:
    """In reviewers' queues: passing (or not scored yet), or placed there blind (audit, gold)."""
    return Q(**{f"{prefix}queue_score__isnull": False}) | ~below_threshold_q(prefix)


def to_review_q(reviewer: AbstractBaseUser, prefix: str = "") -> Q:
    """The tracklets in this reviewer's to-review queue: wanted by fewer reviewers than asked
    for (2 when double-screened, every reviewer for gold), not judged by them, and passing, or a
    blind row (audit, gold) placed in the queue. `prefix` ("tracklet__") for related rows."""
    pk = OuterRef(prefix.removesuffix("__")) if prefix else OuterRef("pk")
    # The reviewer's verdicts last: where this is negated (a view leaving blind rows out) the
    # row's own columns settle most rows first, and PostgreSQL reads the verdicts (hashing
    # all of the reviewer's) only if a row needs them.
    return (
        Q(**{f"{prefix}n_reviews__lt": F(f"{prefix}reviews_wanted")})
        & queued_q(prefix)
        & ~mine_q(reviewer, pk)
    )


def blind_applies(user: AbstractBaseUser) -> bool:
    """Whether this user screens blind: blind screening is on and they give verdicts. Accounts
    that do not screen (the pipeline reading scores back, consumers exporting labels) see all."""
    return bool(settings.SCREENING_BLIND and user.has_perm("screening.add_verdict"))


def blind_q(user: AbstractBaseUser, prefix: str = "") -> Q | None:
    """The rows blind for this user (None when nothing is): those of their to-review queue,
    whatever view, filter or API shows them, until their verdict."""
    return to_review_q(user, prefix) if blind_applies(user) else None


def row_is_blind(tracklet: Tracklet, my_verdict: str | None) -> bool:
    """`to_review_q` for one loaded tracklet (model_version loaded), given the reviewer's
    current verdict on it; call only where `blind_applies`."""
    if my_verdict not in (None, Verdict.Value.WITHDRAWN):
        return False
    if tracklet.n_reviews >= tracklet.reviews_wanted:
        return False
    return tracklet.queue_score is not None or not auto_rejected(tracklet)

"""Nights: the one parser of a night's date for ingest, pages, the API and commands.

A night is written `YYYY-MM-DD` everywhere (the date of its morning at the station, see
`screening.ingest.stations.local_nights`); any other spelling
(`20261124`, `2026-W48-2`, a date-time) is refused with the same message wherever it is sent.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404

from screening.ingest.json_input import short, type_name
from screening.models import Night

NIGHT_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_NIGHT = date(1990, 1, 1)
LAST_NIGHT = date(2099, 12, 31)


def night_parse(raw: Any, *, stored_range: bool = True) -> date:
    """A night as sent: a strict YYYY-MM-DD string, in FIRST_NIGHT..LAST_NIGHT when it is to be
    stored (`stored_range`; a lookup of a night outside it just finds none); ValueError, with a
    message that names what is wrong, if not."""
    if not isinstance(raw, str):
        raise ValueError(f"night must be a YYYY-MM-DD string, got {type_name(raw)} {short(raw)}")
    text = raw.strip()
    if not NIGHT_PATTERN.fullmatch(text):
        raise ValueError(f"night {short(raw)} is not YYYY-MM-DD")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"night {short(raw)} is not a date (YYYY-MM-DD)") from None
    if stored_range and not FIRST_NIGHT <= value <= LAST_NIGHT:
        raise ValueError(f"night {text} is outside {FIRST_NIGHT}..{LAST_NIGHT}")
    return value


def night_or_404(text: str, among: Iterable[Night] = ()) -> Night:
    """The night a URL names; 404 (not 500) naming the problem for anything else, or an unknown
    night. `among`: nights already read (a page's list), looked up without a query."""
    try:
        day = night_parse(text, stored_range=False)
    except ValueError as exc:
        raise Http404(f"{exc}: nights are YYYY-MM-DD") from None
    for night in among:
        if night.date == day:
            return night
    return get_object_or_404(Night, date=day)


def night_argument(text: str) -> date:
    """`type=` of a command's `--night`: the night, or the parser's error naming the format."""
    try:
        return night_parse(text, stored_range=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- each night's counts -------------------------------------------------------------------------

_STATUS_FIELDS = {"pending": "n_pending", "reviewed": "n_reviewed"}  # scored: the rest


def night_counts_created(night_id: int, n: int) -> None:
    """n new (pending) tracklets in the night; call in the transaction that stores them, last,
    so that the night's row is locked for as short a time as can be."""
    from django.db.models import F

    if n:
        Night.objects.filter(pk=night_id).update(
            n_tracklets=F("n_tracklets") + n, n_pending=F("n_pending") + n
        )


def night_counts_moved(night_id: int, old: str, new: str, n: int) -> None:
    """n of the night's tracklets went from status `old` to `new` (as an UPDATE that matched
    on `old` reported: moves made by someone else meanwhile are not counted twice)."""
    from django.db.models import F

    changes = {}
    if old in _STATUS_FIELDS:
        changes[_STATUS_FIELDS[old]] = F(_STATUS_FIELDS[old]) - n
    if new in _STATUS_FIELDS:
        changes[_STATUS_FIELDS[new]] = F(_STATUS_FIELDS[new]) + n
    if n and old != new and changes:
        Night.objects.filter(pk=night_id).update(**changes)


def night_counts_refresh(nights=None) -> int:
    """Count the tracklets again (all nights, or the given queryset's) and store the counts;
    returns how many nights' counts were wrong. `manage.py night_counts` runs it."""
    from django.db.models import Count, Q

    nights = Night.objects.all() if nights is None else nights
    wrong = 0
    for night in nights.annotate(
        real_tracklets=Count("tracklets"),
        real_pending=Count("tracklets", filter=Q(tracklets__status="pending")),
        real_reviewed=Count("tracklets", filter=Q(tracklets__status="reviewed")),
    ):
        real = (night.real_tracklets, night.real_pending, night.real_reviewed)
        if real != (night.n_tracklets, night.n_pending, night.n_reviewed):
            wrong += 1
            Night.objects.filter(pk=night.pk).update(
                n_tracklets=real[0], n_pending=real[1], n_reviewed=real[2]
            )
    return wrong

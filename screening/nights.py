"""Nights: the one parser of a night's date for ingest, pages, the API and commands.

A night is written `YYYY-MM-DD` everywhere (the date of its morning at the station, see
`screening.ingest.stations.local_nights`); any other spelling
(`20261124`, `2026-W48-2`, a date-time) is refused with the same message wherever it is sent.
"""

from __future__ import annotations

import argparse
import re
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


def night_or_404(text: str) -> Night:
    """The night a URL names; 404 (not 500) naming the problem for anything else, or an unknown
    night."""
    try:
        day = night_parse(text, stored_range=False)
    except ValueError as exc:
        raise Http404(f"{exc}: nights are YYYY-MM-DD") from None
    return get_object_or_404(Night, date=day)


def night_argument(text: str) -> date:
    """`type=` of a command's `--night`: the night, or the parser's error naming the format."""
    try:
        return night_parse(text, stored_range=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

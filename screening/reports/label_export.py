"""Label export: reviewers' verdicts and stamp labels as flat rows, for JSON pages or CSV streams.

Every row carries what the reviewer saw (the score or class and the model version) so that a
scientist can tell labels given against one model from those given against another. Rows are
the full history (an undo is a `withdrawn` verdict row), oldest first, in id order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

VERDICT_COLUMNS = {
    "id": "id",
    "night": "tracklet__night__date",
    "tracklet": "tracklet__survey_id",
    "tracklet_id": "tracklet_id",
    "tracklet_digest2_neo": "tracklet__digest2_neo",  # digest2's NEO score (null: none)
    "reviewer": "reviewer__username",
    "verdict": "value",
    "score_shown": "score_shown",
    "model_version_shown": "model_version_shown__version",
    "blind": "blind",
    "created_at": "created_at",
}

LABEL_COLUMNS = {
    "id": "id",
    "night": "detection__tracklet__night__date",
    "tracklet": "detection__tracklet__survey_id",
    "tracklet_id": "detection__tracklet_id",
    "detection_index": "detection__index",
    "detection_id": "detection_id",
    "reviewer": "reviewer__username",
    "stamp_class": "stamp_class__name",
    "class_is_real": "stamp_class__is_real",
    "class_shown": "class_shown",
    "probability_shown": "probability_shown",
    "model_version_shown": "model_version_shown__version",
    "blind": "blind",
    "created_at": "created_at",
}


def rows(queryset: QuerySet, columns: dict[str, str]) -> QuerySet:
    """Tuples of the columns' values (in `columns` order), in id order."""
    return queryset.order_by("id").values_list(*columns.values())


def row_dicts(queryset: QuerySet, columns: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a (small) queryset as dicts named by column."""
    return [dict(zip(columns, values, strict=True)) for values in rows(queryset, columns)]


# A text cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection
# list: = + - @ tab and carriage return; also line feed, NUL and the full-width = + - @).
FORMULA_STARTS = (
    *("=", "+", "-", "@", "\t", "\r", "\n", "\0"),
    *("\uff1d", "\uff0b", "\uff0d", "\uff20"),  # full-width = + - @
)


def _cell(value: Any) -> Any:
    """A CSV cell: a date-time in ISO 8601; text that a spreadsheet would read as a formula
    (a tracklet id, username or class name starting with =, +, -, @, ...) behind a single quote,
    as OWASP advises; numbers as they are (a negative number stays a number)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value  # csv writes None as an empty field


def csv_chunks(
    queryset: QuerySet, columns: dict[str, str], chunk_size: int = 5000, block_bytes: int = 1 << 16
) -> Iterator[str]:
    """CSV text in blocks of about 64 KiB, header first, fetching rows in chunks (a server-side
    cursor on PostgreSQL), so memory stays flat however many rows there are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(columns))
    for values in rows(queryset, columns).iterator(chunk_size=chunk_size):
        writer.writerow([_cell(v) for v in values])
        if buffer.tell() >= block_bytes:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()

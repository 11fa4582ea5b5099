"""Paging of the API's lists: `page` and `page_size` checked as the schema states them.

A `page` or `page_size` that is not a whole number in range answers 400 naming the parameter
(DRF would silently use the default, or answer 404 for `?page=abc`); a page past the last one
answers 404.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request

_WHOLE = re.compile(r"[0-9]{1,12}")
MAX_PAGE = 2**31 - 1


def query_int(request: Request, name: str, *, default: int, low: int, high: int | None) -> int:
    """A whole-number query parameter in [low, high]; ValidationError (400) otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if _WHOLE.fullmatch(raw) and low <= int(raw) and (high is None or int(raw) <= high):
        return int(raw)
    upper = f" to {high}" if high is not None else " or more"
    raise ValidationError({name: [f"must be a whole number from {low}{upper}, got {raw!r}"]})


def _integer(name: str, description: str, low: int, high: int | None) -> dict:
    schema = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": schema,
    }


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (M from 1 to 500, default 100)."""

    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        return query_int(
            request, "page_size", default=self.page_size, low=1, high=self.max_page_size
        )

    def get_page_number(self, request: Request, paginator) -> int:
        return query_int(request, "page", default=1, low=1, high=MAX_PAGE)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            _integer("page", "A page number (from 1); past the last page: 404.", 1, MAX_PAGE),
            _integer(
                "page_size",
                f"Results per page, 1 to {self.max_page_size} (default {self.page_size}).",
                1,
                self.max_page_size,
            ),
        ]


class BoundedCursorPagination(CursorPagination):
    """Cursor pages whose `page_size` (1 to `max_page_size`) is checked, not clamped."""

    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        return query_int(
            request, "page_size", default=self.page_size, low=1, high=self.max_page_size
        )

    def get_schema_operation_parameters(self, view) -> list[dict]:
        cursor, *_ = super().get_schema_operation_parameters(view)
        cursor["description"] = "The `next` or `previous` link's cursor; a forged one: 404."
        return [
            cursor,
            _integer(
                "page_size",
                f"Rows per page, 1 to {self.max_page_size} (default {self.page_size}).",
                1,
                self.max_page_size,
            ),
        ]

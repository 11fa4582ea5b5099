"""Untrusted JSON in (metadata, manifests): parsed with bounded depth and size, no NaN, no
duplicate keys; every error names where the text came from; value types named for messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1024 * 1024


class JSONInputError(ValueError):
    """JSON text that is not accepted; the message starts with where it came from."""


_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_load(
    text: str | bytes,
    *,
    where: str,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """Parse untrusted JSON text safely: depth and size bounded, no NaN/Infinity, no duplicate keys.

    Every error is a JSONInputError whose message starts with `where` (e.g. "metadata" or
    "manifest.jsonl line 7"), so the sender knows which input is wrong.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"{where}: not UTF-8 text ({exc})") from exc
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise JSONInputError(f"{where}: JSON is larger than {max_bytes} bytes")
    depth = 0
    for char in _JSON_NOT_BRACKETS.sub("", _JSON_STRINGS.sub('""', text)):
        depth += 1 if char in "[{" else -1
        if depth > max_depth:
            raise JSONInputError(f"{where}: JSON nested deeper than {max_depth} levels")

    def constant(name: str) -> Any:
        raise JSONInputError(f"{where}: {name} is not a JSON number (send a number or null)")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise JSONInputError(f"{where}: key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=constant, object_pairs_hook=pairs)
    except JSONInputError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{where}: not valid JSON ({exc})") from exc
    except (ValueError, RecursionError) as exc:
        raise JSONInputError(f"{where}: not valid JSON ({exc})") from exc


def type_name(value: Any) -> str:
    """How a JSON value's type is named in messages: 'an object', 'a list', 'a string', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The detection classes: the paper's eight plus GLARE, which of them are real, and what a class
name may be."""

from __future__ import annotations

import re
import unicodedata

REAL_CLASSES = ("AST", "STREAK", "COMET")
PAPER_CLASSES = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
ALL_CLASSES = (*PAPER_CLASSES, "GLARE")


def is_real(name: str) -> bool:
    """True for a class of real moving objects."""
    return name in REAL_CLASSES


CLASS_NAME_MAX = 32  # StampClass.name's length in the database
_CLASS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Characters that reorder the text around them (LRM, RLM, ALM, the embeddings, overrides and
# isolates): a name holding one can show as another name, or scramble a page's line.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def class_name_problem(name: object) -> str | None:
    """Why `name` cannot be a stamp class name, or None when it can.

    A class name is 1 to 32 ASCII letters, digits and `_ . -`, starting with a letter or digit
    (as tracklet ids): nothing a spreadsheet reads as a formula (a cell starting with =, +, - or
    @), no space, control or bidirectional-text control character, no look-alike letters from
    other scripts. Pages, CSV exports and checkpoints all carry these names."""
    if not isinstance(name, str) or not name:
        return "a stamp class name must be a non-empty string"
    shown = ascii(name[:40])
    bidi = sorted({c for c in name if c in BIDI_CONTROLS})
    if bidi:
        named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '')}".strip() for c in bidi)
        return (
            f"stamp class name {shown} holds a bidirectional-text control character ({named}), "
            "which reorders the text around it"
        )
    if name[0] in "=+-@\t\r\n":
        return (
            f"stamp class name {shown} starts with {name[0]!r}: a spreadsheet reads such a "
            "cell as a formula; start with a letter or digit"
        )
    if len(name) > CLASS_NAME_MAX:
        return f"stamp class name {shown} is longer than {CLASS_NAME_MAX} characters"
    if not _CLASS_NAME.fullmatch(name):
        return (
            f"stamp class name {shown} must be ASCII letters, digits and _ . - only, starting "
            "with a letter or digit"
        )
    return None

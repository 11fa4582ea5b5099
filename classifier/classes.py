"""The detection classes: the paper's eight plus GLARE, and which of them are real."""

from __future__ import annotations

REAL_CLASSES = ("AST", "STREAK", "COMET")
BOGUS_CLASSES = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "GLARE")
PAPER_CLASSES = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
ALL_CLASSES = (*PAPER_CLASSES, "GLARE")


def is_real(name: str) -> bool:
    """True for a class of real moving objects."""
    return name in REAL_CLASSES


def check_classes(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate a class list (known names, no duplicates, at least one real and one bogus)."""
    names = tuple(names)
    unknown = [n for n in names if not n.isidentifier() or n.upper() != n]
    if unknown:
        raise ValueError(f"class names must be upper-case identifiers: {unknown}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate class names in {names}")
    if not any(is_real(n) for n in names) or all(is_real(n) for n in names):
        raise ValueError("a class list needs at least one real and one bogus class")
    return names

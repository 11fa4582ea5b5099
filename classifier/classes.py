"""The detection classes: the paper's eight plus GLARE, and which of them are real."""

from __future__ import annotations

REAL_CLASSES = ("AST", "STREAK", "COMET")
PAPER_CLASSES = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
ALL_CLASSES = (*PAPER_CLASSES, "GLARE")


def is_real(name: str) -> bool:
    """True for a class of real moving objects."""
    return name in REAL_CLASSES

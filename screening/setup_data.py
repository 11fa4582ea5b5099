"""Rows every installation needs, made sure of after every migrate (and every test flush)."""

from __future__ import annotations

from typing import Any

from screening.roles import roles_ensure

# The paper's 8 stamp classes (Rabeendran & Denneau 2021); admins may add more.
PAPER_CLASSES = [
    ("BURN", False, "Vertical readout/bleed line from a saturated source."),
    ("CR", False, "Cosmic ray: small, sharp, not PSF-shaped; in one exposure only."),
    ("NOISE", False, "Nothing at the centre: a noise peak the pipeline detected."),
    ("SCAR", False, "Bright-star subtraction residual: dipoles and rings."),
    ("SPIKE", False, "Diffraction spike of a bright star (ATLAS: at 45 degrees)."),
    ("AST", True, "Point-like asteroid."),
    ("STREAK", True, "Trailed asteroid."),
    ("COMET", True, "Wide coma, faint trail."),
]


def stamp_classes_ensure() -> None:
    """Create the paper's classes that are missing; never change or remove existing ones."""
    from screening.models import StampClass

    for name, is_real, description in PAPER_CLASSES:
        StampClass.objects.get_or_create(
            name=name, defaults={"is_real": is_real, "description": description}
        )


def setup_data_ensure(**kwargs: Any) -> None:
    """The post_migrate hook: roles with their permissions, and the paper's stamp classes."""
    roles_ensure()
    stamp_classes_ensure()

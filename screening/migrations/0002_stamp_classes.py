"""The paper's 8 stamp classes (Rabeendran & Denneau 2021); admins may add more."""

from __future__ import annotations

from django.db import migrations

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


def add_classes(apps, schema_editor):
    StampClass = apps.get_model("screening", "StampClass")
    for name, is_real, description in PAPER_CLASSES:
        StampClass.objects.get_or_create(
            name=name, defaults={"is_real": is_real, "description": description}
        )


def remove_classes(apps, schema_editor):
    apps.get_model("screening", "StampClass").objects.filter(
        name__in=[name for name, _, _ in PAPER_CLASSES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0001_initial")]
    operations = [migrations.RunPython(add_classes, remove_classes)]

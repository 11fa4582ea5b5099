"""Rows every installation needs, made sure of after every migrate (and every test flush)."""

from __future__ import annotations

from typing import Any

from screening.ops.roles import roles_ensure

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


RETRAINING_SCHEDULE_NAME = "weekly retraining"


def retraining_schedule_ensure() -> None:
    """The retraining schedule (Sundays 03:00 UTC), created once; admins edit or disable it."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=RETRAINING_SCHEDULE_NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="3", day_of_week="0", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.create(
        name=RETRAINING_SCHEDULE_NAME,
        task="screening.tasks.train_scheduled",
        crontab=crontab,
        description="Retrain from the active model on reviewers' labels when there are new ones.",
    )


def setup_data_ensure(**kwargs: Any) -> None:
    """The post_migrate hook: roles, the paper's stamp classes, the retraining schedule."""
    roles_ensure()
    stamp_classes_ensure()
    retraining_schedule_ensure()

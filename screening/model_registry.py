"""Model versions: register a checkpoint, activate it (which rescoring follows)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils import timezone

from screening.models import ModelVersion


def model_register(*, path: Path) -> ModelVersion:
    """Register a checkpoint file as a model version named by its content hash (idempotent)."""
    from classifier.checkpoint import load_checkpoint

    payload = load_checkpoint(Path(path))
    model, _ = ModelVersion.objects.get_or_create(
        version=payload["version"],
        defaults={
            "checkpoint": str(Path(path).resolve()),
            "classes": list(payload["classes"]),
            "threshold": float(payload["threshold"]),
            "metrics": payload.get("metrics", {}),
        },
    )
    return model


def model_activate(*, version: str) -> ModelVersion:
    """Make a model version the active one; unreviewed tracklets are then rescored with it."""
    from screening.tasks import score_pending

    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().get(version=version)
        ModelVersion.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        if not model.is_active:
            model.is_active = True
            model.activated_at = timezone.now()
            model.save(update_fields=["is_active", "activated_at"])
        transaction.on_commit(score_pending.delay)
    return model

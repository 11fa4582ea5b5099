"""Model versions: register a checkpoint, activate it (which rescoring follows)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from classifier.classes import class_name_problem
from screening import queueing
from screening.models import ModelActivation, ModelVersion
from screening.registry.checkpoints import checkpoint_local, checkpoint_publish


class PromotionRefused(Exception):
    """A candidate that may not replace the active model (an admin may force it)."""


def model_register(*, path: Path) -> ModelVersion:
    """Register a checkpoint file as a model version named by its content hash (idempotent).

    A checkpoint whose class names are not stamp class names (`class_name_problem`: a formula
    for a spreadsheet, a bidirectional-text control for the pages) is a CheckpointError."""
    from classifier.checkpoint import CheckpointError, load_checkpoint

    payload = load_checkpoint(Path(path))
    for name in payload["classes"]:
        problem = class_name_problem(name)
        if problem:
            raise CheckpointError(f"{Path(path).name}: {problem}")
    checkpoint_publish(Path(path))  # before the row: a worker elsewhere finds the file
    shipped = evaluation_file_read(Path(path), payload["version"])
    evaluation = {"evaluation": {"synthetic": shipped}} if shipped else {}
    model, created = ModelVersion.objects.get_or_create(
        version=payload["version"],
        defaults={
            "checkpoint": str(Path(path).resolve()),
            "classes": list(payload["classes"]),
            "threshold": float(payload["threshold"]),
            "metrics": {
                **payload.get("metrics", {}),
                "calibration": payload.get("calibration"),
                **evaluation,
            },
        },
    )
    if not created and evaluation and not synthetic_report(model):
        model.metrics = {**(model.metrics or {}), **evaluation}
        model.save(update_fields=["metrics"])
    return model


# A model's figures on the fixed synthetic set can ship beside its checkpoint
# (`manage.py model_evaluate --save-beside`), so that a new install shows them from the start
# instead of after an evaluation run. They are used only for that very model, and only while the
# simulator that makes the set is the one they were measured on.
EVALUATION_FILE_SUFFIX = ".evaluation.json"


def evaluation_file(checkpoint: Path) -> Path:
    """models/screening-<v>.pt: models/screening-<v>.evaluation.json"""
    return Path(checkpoint).with_suffix(EVALUATION_FILE_SUFFIX)


def _simulator() -> str:
    from classifier.datasets import simulator_code

    return simulator_code()


def evaluation_file_write(model: ModelVersion, checkpoint: Path) -> Path:
    """Write the model's stored synthetic figures beside its checkpoint; returns the file."""
    report = synthetic_report(model)
    if not report:
        raise ValueError(f"model {model.version} has no evaluation to save")
    path = evaluation_file(checkpoint)
    content = {"version": model.version, "simulator": _simulator(), "synthetic": report}
    path.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    return path


def evaluation_file_read(checkpoint: Path, version: str) -> dict[str, Any] | None:
    """The figures shipped beside a checkpoint, if they are this version's and were measured
    on today's simulator; else None (an evaluation run makes them)."""
    import logging

    path = evaluation_file(checkpoint)
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("%s cannot be read (%s); not used", path, exc)
        return None
    if content.get("version") != version or content.get("simulator") != _simulator():
        logging.getLogger(__name__).info("%s: another model or simulator; not used", path.name)
        return None
    return content.get("synthetic") or None


def synthetic_report(model: ModelVersion) -> dict[str, Any]:
    """The model's figures on the fixed synthetic evaluation set, as {"candidate": this model,
    "base": the model it was compared with (if any), "params": the set}: a training run's
    comparison, or else a stand-alone evaluation (`model_evaluate`); {} when it has neither."""
    metrics = model.metrics or {}
    return ((metrics.get("comparison") or {}).get("synthetic")
            or (metrics.get("evaluation") or {}).get("synthetic") or {})  # fmt: skip


def model_evaluate(
    *,
    version: str,
    n_real: int | None = None,
    n_bogus: int | None = None,
    planet_bogus: int | None = None,
    progress: bool = False,
) -> ModelVersion:
    """Evaluate a model on the fixed synthetic set (as training runs do for their candidates)
    and store the figures with it: a model made outside a training run (the baseline) gets the
    registry's columns and its page's ROC curve and confusion matrix."""
    from classifier.inference import load_model
    from classifier.retrain import plain, synthetic_evaluation

    n_real, n_bogus, planet_bogus = evaluation_sizes(n_real, n_bogus, planet_bogus)
    model = ModelVersion.objects.get(version=version)
    network = load_model(checkpoint_local(model), device=settings.TRAINING_DEVICE)
    report = synthetic_evaluation(
        {"candidate": network},
        n_real,
        n_bogus,
        planet_bogus=planet_bogus,
        cache_dir=evaluation_cache(),
        progress=progress,
    )
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().get(pk=model.pk)
        model.metrics = {**(model.metrics or {}), "evaluation": {"synthetic": plain(report)}}
        model.save(update_fields=["metrics"])
    return model


def evaluation_sizes(
    n_real: int | None, n_bogus: int | None, planet_bogus: int | None
) -> tuple[int, int, int]:
    """The evaluation set's sizes, a training run's where not given; ValueError if empty."""
    from classifier.retrain import RetrainConfig

    sizes = RetrainConfig()  # the set a training run compares its candidate on
    n_real = sizes.eval_real if n_real is None else n_real
    n_bogus = sizes.eval_bogus if n_bogus is None else n_bogus
    planet_bogus = sizes.eval_planet if planet_bogus is None else planet_bogus
    if n_real < 1 or n_bogus < 1:
        raise ValueError(f"need at least one real and one bogus tracklet, got {n_real}, {n_bogus}")
    return n_real, n_bogus, planet_bogus


def evaluation_cache() -> Path:
    """Where the fixed synthetic evaluation set is kept once simulated."""
    return Path(settings.VAR_DIR) / "cache" / "evaluation"


def _evaluation_marker(version: str) -> Path:
    return evaluation_cache() / f"evaluating-{version}.json"


def _retraining_sets_marker(version: str) -> Path:
    return evaluation_cache() / f"retraining-sets-{version}.json"


def evaluation_marked(version: str) -> AbstractContextManager[None]:
    """Mark a stand-alone evaluation of a model as running (a file under the evaluation cache,
    which the Models page reads: `evaluation_status`) for as long as the block runs; removed
    when it succeeds, left saying "failed" with the error when it raises."""
    return _marked(_evaluation_marker(version))


def retraining_sets_marked(version: str) -> AbstractContextManager[None]:
    """The same for the making of a retraining's sets (`retraining_sets_status`)."""
    return _marked(_retraining_sets_marker(version))


@contextmanager
def _marked(marker: Path) -> Iterator[None]:
    marker.parent.mkdir(parents=True, exist_ok=True)
    started = timezone.now().isoformat()
    state = {"state": "running", "started": started, "pid": os.getpid(),
             "host": socket.gethostname()}  # fmt: skip
    _write_json(marker, state)
    try:
        yield
    except BaseException as exc:  # a Ctrl-C too; a kill leaves "running", with a dead pid
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        _write_json(marker, {**state, "state": "failed", "finished": timezone.now().isoformat(),
                             "error": error})  # fmt: skip
        raise
    marker.unlink(missing_ok=True)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(content))
    partial.replace(path)


def evaluation_status(model: ModelVersion) -> dict[str, Any] | None:
    """Where a stand-alone evaluation of a model without figures stands: {"state": "running",
    "started"}, {"state": "failed", "started", "finished", "error"}, or {"state": "stopped",
    "started"} (its process on this machine has gone without a word: killed); None when the
    model has its figures or no evaluation was started."""
    if synthetic_report(model):
        return None
    return _marker_state(_evaluation_marker(model.version))


def retraining_sets_status(model: ModelVersion | None) -> dict[str, Any] | None:
    """Where the making of a retraining's sets for this model (`model_evaluate
    --retraining-sets`, which `./run demo` starts in the background) stands, as
    `evaluation_status` says it; None when it finished or was never started."""
    return _marker_state(_retraining_sets_marker(model.version)) if model else None


def _marker_state(marker: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(marker.read_text())
        out = {"state": str(state["state"]), "started": datetime.fromisoformat(state["started"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if out["state"] == "failed":
        out["error"] = str(state.get("error") or "")
        out["finished"] = datetime.fromisoformat(state.get("finished") or state["started"])
    elif out["state"] == "running" and state.get("host") == socket.gethostname():
        if not _process_alive(int(state.get("pid") or 0)):
            out["state"] = "stopped"
    return out


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive
    return True


def promotion_check(candidate: ModelVersion, active: ModelVersion | None) -> str:
    """Why a candidate may replace the active model; PromotionRefused if it may not.

    A model that was active before (a rollback) or the first model may always be activated.
    A new candidate must keep real recall at its threshold at least as high as the active
    model's on the same held-out labels, and keep at least as many of the fixed synthetic set's
    real tracklets (1,500: one lost in a thousand shows), both measured by the training run.
    """
    if active is None:
        return "first active model"
    if candidate.pk == active.pk:
        return "already active"
    if candidate.activated_at is not None:
        return f"rollback to a model active before (replacing {active.version})"
    comparison = (candidate.metrics or {}).get("comparison") or {}
    if comparison.get("base_version") != active.version:
        raise PromotionRefused(
            f"candidate {candidate.version} was compared with model "
            f"{comparison.get('base_version') or 'none'}, not with the active {active.version}; "
            "retrain from the active model, or force"
        )
    holdout = comparison.get("holdout", {})
    mine = holdout.get("candidate", {}).get("real_recall")
    theirs = holdout.get("base", {}).get("real_recall")
    n_real = holdout.get("candidate", {}).get("tracklets", {}).get("real", 0)
    if not n_real or mine is None or theirs is None:
        raise PromotionRefused(
            "no held-out real tracklets to compare real recall on; label more, or force"
        )
    if mine < theirs:
        raise PromotionRefused(
            f"candidate real recall {mine:.4f} is below the active model's {theirs:.4f} on the "
            f"same {n_real} held-out real tracklets"
        )
    reasons = [f"real recall {mine:.4f} >= {theirs:.4f} on {n_real} held-out real tracklets"]
    # The held-out labels are few; the fixed synthetic set's real tracklets (1,500 by default)
    # are the same for both models, so one real tracklet lost in a thousand shows as one.
    paired = (comparison.get("synthetic") or {}).get("paired_real")
    if paired:
        kept, base_kept, total = paired["candidate_kept"], paired["base_kept"], paired["real"]
        if kept < base_kept:
            raise PromotionRefused(
                f"candidate keeps {kept} of the fixed synthetic set's {total} real tracklets, "
                f"the active model {base_kept} (it loses {paired['lost']} the active model keeps "
                f"and gains {paired['gained']}); {reasons[0]}"
            )
        reasons.append(
            f"keeps {kept} >= {base_kept} of {total} synthetic real tracklets "
            f"({paired['lost']} lost, {paired['gained']} gained)"
        )
    return "; ".join(reasons)


def model_promote(*, version: str, user=None, force: bool = False) -> ModelActivation:
    """Make a model active if the promotion rule allows it (or forced, which is recorded).

    Activating the model that is already active changes nothing: no activation is recorded,
    nothing is rescored, and the answer is an unsaved record (`pk` None, `already_active`
    True, reason "already active").
    """
    with transaction.atomic():
        candidate = ModelVersion.objects.select_for_update().get(version=version)
        if candidate.is_active:
            record = ModelActivation(
                model_version=candidate, previous=candidate, by=user, reason="already active"
            )
            record.already_active = True
            return record
        active = ModelVersion.objects.active()
        try:
            reason = promotion_check(candidate, active)
            forced = False
        except PromotionRefused as refusal:
            if not force:
                raise
            reason, forced = f"forced by an admin over: {refusal}", True
        record = ModelActivation.objects.create(
            model_version=candidate, previous=active, by=user, forced=forced, reason=reason
        )
        model_activate_and_rescore(version=version)
    record.already_active = False
    return record


def model_activate_and_rescore(*, version: str) -> ModelVersion:
    """Make a model version the active one and queue the rescoring of every unreviewed
    tracklet with it (after commit; tracklets it scored before keep those scores)."""
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().get(version=version)
        ModelVersion.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        if not model.is_active:
            model.is_active = True
            model.activated_at = timezone.now()
            model.save(update_fields=["is_active", "activated_at"])
        transaction.on_commit(lambda: queueing.enqueue(queueing.SCORE_PENDING))
    return model

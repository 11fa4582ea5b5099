"""Model registry pages: models side by side, training runs with live progress, a model's page
with its plots, and the admin's actions (start retraining, promote, roll back)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from screening.models import ModelActivation, ModelVersion, TrainingRun
from screening.ops.roles import pages_for_reviewers
from screening.registry.plots import PLOTS, reliability_report
from screening.registry.training import PRESETS, TrainingBusy, training_preset, training_run_request
from screening.registry.versions import (
    PromotionRefused,
    evaluation_status,
    model_promote,
    promotion_check,
    retraining_sets_status,
    synthetic_report,
)
from screening.review.audit import model_estimates


def model_summary(model: ModelVersion) -> dict[str, Any]:
    """The figures the registry shows side by side (None where not measured)."""
    comparison = (model.metrics or {}).get("comparison") or {}
    holdout = (comparison.get("holdout") or {}).get("candidate") or {}
    synthetic = synthetic_report(model).get("candidate") or {}
    at_threshold = synthetic.get("at_model_threshold") or {}
    return {
        "model": model,
        "n_classes": len(model.classes),
        "new_classes": [c for c in model.classes if c not in _paper_classes()],
        "compared_with": comparison.get("base_version"),
        "holdout_real": (holdout.get("tracklets") or {}).get("real"),
        "holdout_recall": holdout.get("real_recall"),
        "holdout_rejection": holdout.get("bogus_rejection"),
        "synthetic_auc": synthetic.get("auc"),
        "synthetic_recall": at_threshold.get("real_recall"),
        "synthetic_rejection": at_threshold.get("bogus_rejection"),
        # where the figures are not there yet: a stand-alone evaluation running, or failed
        "evaluation": evaluation_status(model),
    }


def _paper_classes() -> tuple[str, ...]:
    from classifier.classes import PAPER_CLASSES

    return PAPER_CLASSES


@pages_for_reviewers
def models_page(request: HttpRequest) -> HttpResponse:
    models = ModelVersion.objects.order_by("-created_at")
    runs = TrainingRun.objects.select_related("candidate", "started_by").order_by("-id")[:15]
    summaries = [model_summary(m) for m in models]
    return render(request, "screening/models.html", {
        "summaries": summaries,
        "evaluating": [s for s in summaries if (s["evaluation"] or {}).get("state") == "running"],
        "runs": runs,
        "live": next((r for r in runs if r.is_live), None),
        "activations": ModelActivation.objects.select_related(
            "model_version", "previous", "by")[:20],
        "can_train": request.user.has_perm("screening.add_trainingrun"),
        "preset": training_preset(),
        "preset_text": PRESETS[training_preset()][0],
        # what a retraining from the active model reads (its sets, the model's scores there),
        # being made in the background: a run started meanwhile makes what is missing itself
        "sets": retraining_sets_status(next(
            (s["model"] for s in summaries if s["model"].is_active), None)),
    })  # fmt: skip


@pages_for_reviewers
def model_page(request: HttpRequest, version: str) -> HttpResponse:
    model = get_object_or_404(ModelVersion, version=version)
    active = ModelVersion.objects.active()
    try:
        verdict, allowed = promotion_check(model, active), True
    except PromotionRefused as refusal:
        verdict, allowed = str(refusal), False
    comparison = (model.metrics or {}).get("comparison") or {}
    from classifier.metrics import held_out_stamp_accuracy
    from screening.registry.comparison import comparison_table

    return render(request, "screening/model.html", {
        "model": model,
        "summary": model_summary(model),
        "active": active,
        "promotion": verdict,
        "promotion_allowed": allowed,
        "comparison": comparison,
        "changes": comparison_table(comparison, list(model.classes)) if comparison else [],
        "lost": lost_real(comparison),
        "stamp_accuracy": held_out_stamp_accuracy(comparison),
        "reliability": reliability_report(model),
        "evaluation": evaluation_status(model),
        "audit_rows": _audit_rows(model),
        "training": TrainingRun.objects.filter(candidate=model).first(),
        "can_activate": request.user.has_perm("screening.change_modelversion"),
        "activations": ModelActivation.objects.filter(model_version=model).select_related(
            "previous", "by"),
    })  # fmt: skip


def lost_real(comparison: dict) -> list[dict]:
    """The real tracklets a candidate loses and its base keeps, with why (the retraining run's
    `holdout_lost` and the fixed synthetic set's `lost_tracklets`): what the model page lists
    where the promotion rule refuses a candidate for losing real tracklets."""
    rows = []
    for row in comparison.get("holdout_lost") or []:
        key = str(row.get("tracklet", ""))
        url = f"/tracklets/{key}/" if key.isdigit() else ""
        rows.append({**row, "data": "held-out labels", "url": url})
    paired = (comparison.get("synthetic") or {}).get("paired_real") or {}
    for row in paired.get("lost_tracklets") or []:
        rows.append({**row, "data": "fixed synthetic set", "url": ""})
    return rows


def _audit_rows(model: ModelVersion) -> list:
    from django.conf import settings

    audit = model_estimates(model)
    return [
        ("all nights", audit["overall"]),
        (f"last {settings.AUDIT_WINDOW_NIGHTS} nights", audit["window"]),
        *[(night.date.isoformat(), e) for night, e in reversed(audit["nights"][-7:])],
    ]


@pages_for_reviewers
def model_plot(request: HttpRequest, version: str, kind: str) -> HttpResponse:
    if kind not in PLOTS:
        raise Http404(f"no plot {kind!r}")
    model = get_object_or_404(ModelVersion, version=version)
    response = HttpResponse(PLOTS[kind](model), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


@require_POST
@pages_for_reviewers
@permission_required("screening.add_trainingrun", raise_exception=True)
def training_start(request: HttpRequest) -> HttpResponse:
    try:
        run = training_run_request(user=request.user)
        messages.success(request, f"training run {run.pk} queued")
    except TrainingBusy as busy:
        messages.error(request, str(busy))
    return redirect("models")


@require_POST
@pages_for_reviewers
@permission_required("screening.change_modelversion", raise_exception=True)
def model_activate_page(request: HttpRequest, version: str) -> HttpResponse:
    model = get_object_or_404(ModelVersion, version=version)
    try:
        record = model_promote(
            version=model.version, user=request.user, force=request.POST.get("force") == "1"
        )
        if getattr(record, "already_active", False):
            messages.info(request, f"model {model.version} is already active; nothing changed")
        else:
            messages.success(
                request,
                f"model {model.version} is active: {record.reason}; "
                "unreviewed tracklets are being rescored",
            )
    except PromotionRefused as refusal:
        messages.error(request, f"not activated: {refusal}")
    return redirect("model-page", version=model.version)

"""The registry and training runs over the API and on the pages (permissions, refusals)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from screening.model_registry import model_activate, model_register
from screening.models import ModelActivation, ModelVersion, TrainingRun
from tests.conftest import make_user
from tests.untrained_model import make_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(settings, tmp_path) -> ModelVersion:
    settings.MODELS_DIR = tmp_path / "models"
    model = model_register(path=make_checkpoint(tmp_path / "models", seed=0))
    return model_activate(version=model.version)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def worse_candidate(active: ModelVersion) -> ModelVersion:
    holdout = {"tracklets": {"real": 30, "bogus": 90}}
    figures = {
        "candidate": {**holdout, "real_recall": 0.9},
        "base": {**holdout, "real_recall": 1.0},
    }
    return ModelVersion.objects.create(
        version="c" * 16,
        checkpoint="/models/c.pt",
        classes=active.classes,
        metrics={"comparison": {"base_version": active.version, "holdout": figures}},
    )


def test_admins_start_runs_one_at_a_time_and_reviewers_only_watch(active) -> None:
    admin = token_client(make_user("root", "admin"))
    reviewer = token_client(make_user("rev", "reviewer"))
    started = admin.post("/api/v1/training-runs/")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    again = admin.post("/api/v1/training-runs/")
    assert again.status_code == 409 and "one at a time" in again.json()["detail"]
    assert reviewer.post("/api/v1/training-runs/").status_code == 403
    runs = reviewer.get("/api/v1/training-runs/").json()["results"]
    assert [r["id"] for r in runs] == [started.json()["id"]]
    assert TrainingRun.objects.count() == 1


def test_activation_follows_the_rule_unless_an_admin_forces_it(active) -> None:
    admin = token_client(make_user("root", "admin"))
    candidate = worse_candidate(active)
    url = f"/api/v1/models/{candidate.version}/activate/"
    refused = admin.post(url, {"force": False}, format="json")
    assert refused.status_code == 409 and "below the active model's" in refused.json()["detail"]
    assert ModelVersion.objects.get(is_active=True) == active
    reviewer = token_client(make_user("rev", "reviewer"))
    assert reviewer.post(url, {"force": True}, format="json").status_code == 403
    forced = admin.post(url, {"force": True}, format="json")
    assert forced.status_code == 200 and forced.json()["forced"] is True
    assert ModelVersion.objects.get(is_active=True) == candidate
    listed = reviewer.get("/api/v1/models/").json()["results"]
    assert {m["version"]: m["is_active"] for m in listed} == {
        candidate.version: True,
        active.version: False,
    }
    assert ModelActivation.objects.get().by.username == "root"


def test_the_pages_show_the_registry_and_refuse_actions_to_reviewers(active) -> None:
    candidate = worse_candidate(active)
    reviewer = make_user("rev", "reviewer")
    client = Client()
    client.force_login(reviewer)
    page = client.get("/models/")
    assert page.status_code == 200
    assert candidate.version.encode() in page.content and b"start-training" not in page.content
    assert client.post("/models/train/").status_code == 403
    assert client.post(f"/models/{candidate.version}/activate/").status_code == 403
    detail = client.get(f"/models/{candidate.version}/")
    assert b"below the active model" in detail.content
    for kind in ("roc", "confusion", "scores"):
        png = client.get(f"/models/{candidate.version}/{kind}.png")
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/models/{candidate.version}/nope.png").status_code == 404

    admin = make_user("root", "admin")
    client.force_login(admin)
    assert b"start-training" in client.get("/models/").content
    response = client.post(f"/models/{candidate.version}/activate/", follow=True)
    assert b"not activated" in response.content
    client.post(f"/models/{candidate.version}/activate/", {"force": "1"})
    assert ModelVersion.objects.get(is_active=True) == candidate
    pipeline = Client()
    pipeline.force_login(make_user("pipe", "pipeline"))
    assert pipeline.get("/models/").status_code == 403


def test_a_model_made_outside_a_training_run_can_be_evaluated_for_the_registry(active) -> None:
    """The baseline has no training run's comparison; `model_evaluate` stores its synthetic
    figures, which the registry and the model's page then show like a candidate's."""
    from io import StringIO

    from django.core.management import CommandError, call_command

    client = Client()
    client.force_login(make_user("rev", "reviewer"))
    assert "evaluation" not in (active.metrics or {})

    out = StringIO()
    call_command("model_evaluate", "--real", "8", "--bogus", "8", "--planet", "4", stdout=out)
    model = ModelVersion.objects.get(pk=active.pk)
    figures = model.metrics["evaluation"]["synthetic"]
    assert figures["params"] == {
        "seed": 20261124, "real": 8, "bogus": 8, "glare": True, "planet_bogus": 4
    }  # fmt: skip
    report = figures["candidate"]
    assert report["tracklets"]["real"] == 8 and report["tracklets"]["bogus"] == 12
    assert 0.0 <= report["auc"] <= 1.0 and len(report["roc"]["fpr"]) > 1
    assert f"AUC {report['auc']:.4f}" in out.getvalue()
    registry = client.get("/models/").content.decode()
    assert f"{report['auc']:.4f}" in registry

    again = StringIO()
    call_command("model_evaluate", active.version, "--if-missing", stdout=again)
    assert "already has an evaluation" in again.getvalue()
    with pytest.raises(CommandError, match="no model version 'nope'"):
        call_command("model_evaluate", "nope")
    with pytest.raises(CommandError, match="at least one real and one bogus"):
        call_command("model_evaluate", "--real", "0")

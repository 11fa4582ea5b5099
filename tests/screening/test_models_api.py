"""The registry and training runs over the API and on the pages (permissions, refusals)."""

from __future__ import annotations

import multiprocessing
import os
import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from screening.models import ModelActivation, ModelVersion, TrainingRun
from screening.registry.versions import model_activate_and_rescore, model_register
from tests.conftest import make_user
from tests.untrained_model import make_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(settings, tmp_path) -> ModelVersion:
    settings.MODELS_DIR = tmp_path / "models"
    model = model_register(path=make_checkpoint(tmp_path / "models", seed=0))
    return model_activate_and_rescore(version=model.version)


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


def test_the_model_page_says_a_class_is_not_in_the_base_rather_than_0_percent(active) -> None:
    """A candidate that learnt GLARE, compared with a base that has no GLARE class, on held-out
    stamps all labelled GLARE: the base cannot be right on any, which is not an accuracy."""
    holdout = {"tracklets": {"real": 5, "bogus": 20}, "real_recall": 1.0, "bogus_rejection": 0.9}
    stamps = {"stamps": 44, "per_class_stamps": {"GLARE": 44}}
    candidate = ModelVersion.objects.create(
        version="g" * 16,
        checkpoint="/models/g.pt",
        classes=[*active.classes, "GLARE"],
        metrics={"comparison": {
            "base_version": active.version,
            "new_classes": ["GLARE"],
            "holdout": {"candidate": holdout, "base": holdout},
            "holdout_stamps": {
                "candidate": {**stamps, "accuracy": 0.93, "per_class": {"GLARE": 0.93}},
                "base": {**stamps, "accuracy": 0.0, "per_class": {"GLARE": 0.0}},
            },
        }},
    )  # fmt: skip
    client = Client()
    client.force_login(make_user("rev", "reviewer"))
    page = client.get(f"/models/{candidate.version}/").content.decode()
    row = page[page.index('<tr id="icn-accuracy">') :]
    row = row[: row.index("</tr>")]
    assert "93.00%" in row and "(<bdi>GLARE</bdi> not in this model)" in row
    assert "0.00%" not in row
    changes = page[page.index('id="changes"') :]
    glare = changes[changes.index("GLARE stamps: recall") :]
    glare = glare[: glare.index("</tr>")]
    assert "93.00%" in glare and "not in this model" in glare and "0.00%" not in glare


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


def test_the_models_page_says_an_evaluation_is_running_or_failed(active, settings, tmp_path):
    """`./run demo` evaluates the baseline in the background for minutes: until its figures
    are stored, the page says it is evaluating (since when), that it reloads, or that it failed
    or stopped; not a bare "—"."""
    from django.core.management import call_command
    from django.utils import timezone

    from screening.registry.versions import evaluation_marked

    settings.VAR_DIR = tmp_path
    client = Client()
    client.force_login(make_user("rev", "reviewer"))

    def registry_row() -> str:
        page = client.get("/models/").content.decode()
        row = page[page.index(f'data-version="{active.version}"') :]
        return row[: row.index("</tr>")]

    assert "evaluat" not in registry_row()  # nothing started: the plain "—"
    with evaluation_marked(active.version):
        page = client.get("/models/").content.decode()
        row = registry_row()
        model_page = client.get(f"/models/{active.version}/").content.decode()
    started = timezone.now().strftime("%H:%M")
    assert re.search(r'data-evaluation="running">evaluating… \(started \d\d:\d\d\)', row)
    assert "evaluating… (started" in row and started[:2] in row
    assert "reloads itself" in page and "window.location.reload" in page
    assert 'data-evaluation="running"' in model_page
    assert "evaluat" not in registry_row()  # done (here: nothing stored, nothing to say)

    active.checkpoint = str(tmp_path / "gone.pt")  # an evaluation that cannot load the model
    active.save(update_fields=["checkpoint"])
    with pytest.raises(FileNotFoundError):
        call_command("model_evaluate", "--real", "4", "--bogus", "4", "--planet", "0")
    row = registry_row()
    assert 'data-evaluation="failed">evaluation failed at ' in row
    assert "CheckpointMissing" in row and "gone.pt" in row  # what is missing, and where
    assert "reloads itself" not in client.get("/models/").content.decode()  # nothing running

    # A killed evaluation (Ctrl-C of the demo) leaves no word: its process has gone.
    def killed() -> None:
        with evaluation_marked(active.version):
            os._exit(1)

    child = multiprocessing.get_context("fork").Process(target=killed)
    child.start()
    child.join()
    assert 'data-evaluation="stopped">evaluation stopped before it finished' in registry_row()


def test_the_models_page_says_a_retraining_would_wait_for_its_sets_being_made(
    active, settings, tmp_path
):
    """While `model_evaluate --retraining-sets` (the demo's background step) makes what a
    retraining reads, the Models page says so beside the button: a run started meanwhile makes
    what is missing itself and takes longer. Nothing once it is done; a failure says so."""
    from screening.registry.versions import retraining_sets_marked

    settings.VAR_DIR = tmp_path
    client = Client()
    client.force_login(make_user("boss", "admin"))

    def note() -> str:
        page = client.get("/models/").content.decode()
        if 'id="sets-preparing"' not in page:
            return ""
        start = page.index('id="sets-preparing"')
        return " ".join(page[start : page.index("</p>", start)].split())

    assert note() == ""
    with retraining_sets_marked(active.version):
        running = note()
    assert "being made in the background (since" in running
    assert "A retraining started before they are ready makes what is missing itself" in running
    assert note() == ""  # done: nothing to say
    with pytest.raises(RuntimeError), retraining_sets_marked(active.version):
        raise RuntimeError("disk full")
    assert "failed (RuntimeError: disk full)" in note()
    assert "a retraining makes them itself" in note()


def test_the_demo_makes_what_a_first_retraining_would_wait_for(active, settings, tmp_path):
    """`./run demo` runs `model_evaluate --if-missing --retraining-sets`: with the model's
    figures already there, it still simulates the retraining's tracklets and scores the model
    on the set a run compares its candidate on, kept so that the first run reads them."""
    from io import StringIO
    from pathlib import Path

    import numpy as np
    from django.core.management import call_command

    from classifier.evaluate import score_set
    from classifier.inference import load_model
    from classifier.retrain import EVALUATION_SEED, cached_tracklet_set, synthetic_evaluation
    from screening.registry.training import training_config

    settings.VAR_DIR = tmp_path
    settings.TRAINING_QUICK = True
    quiet = StringIO()
    call_command("model_evaluate", "--real", "8", "--bogus", "8", "--planet", "4", stdout=quiet)
    cache = tmp_path / "cache" / "evaluation"
    before = set(cache.glob(f"scores-{active.version[:32]}-*.npz"))

    out = StringIO()
    call_command("model_evaluate", "--if-missing", "--retraining-sets", stdout=out)
    assert "already has an evaluation" in out.getvalue()
    kept = set(cache.glob(f"scores-{active.version[:32]}-*.npz")) - before
    assert len(kept) == 1  # the retraining's evaluation set (the preset's sizes), scored once
    assert not list(cache.glob("retraining-sets-*"))  # done: the Models page says nothing more

    cfg = training_config()
    model = load_model(Path(active.checkpoint), device=cfg.device)
    evaluation = cached_tracklet_set(
        cache, EVALUATION_SEED, cfg.eval_real, cfg.eval_bogus, model.preprocessing,
        glare=True, planet_bogus=cfg.eval_planet,
    )  # fmt: skip
    _, scores = score_set(model, evaluation)
    with np.load(kept.pop()) as saved:
        np.testing.assert_allclose(saved["scores"], scores, atol=1e-6)
    figures = synthetic_evaluation(
        {"base": model}, cfg.eval_real, cfg.eval_bogus, planet_bogus=cfg.eval_planet,
        cache_dir=cache,
    )  # fmt: skip
    assert figures["base"]["tracklets"]["real"] == cfg.eval_real

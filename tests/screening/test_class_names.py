"""Stamp class names: a name a spreadsheet would run as a formula, or one holding a
bidirectional-text control, is refused where classes are made (the admin, any save, a
checkpoint's classes at `model_register`, a retraining run's labels); names are shown isolated
(`<bdi>`) on the pages, rows made before the check included."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from classifier.classes import class_name_problem
from screening.models import ModelVersion, StampClass
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "GL\u202eERA" shows as "GLARE"
BAD = {
    "formula-equals": ('=HYPERLINK("http://x.example")', "as a formula"),
    "formula-plus": ("+SUM(A1)", "as a formula"),
    "formula-minus": ("-CR", "as a formula"),
    "formula-at": ("@SUM(A1)", "as a formula"),
    "tab": ("\tCR", "as a formula"),
    "carriage-return": ("\rCR", "as a formula"),
    "rlo": (f"GL{RLO}ERA", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    "rli": ("\u2067GLARE", "U+2067 RIGHT-TO-LEFT ISOLATE"),
    "rlm": ("GLARE\u200f", "U+200F RIGHT-TO-LEFT MARK"),
    "space": ("GLARE CLASS", "ASCII letters, digits"),
    "cyrillic-look-alike": ("\u0410ST", "ASCII letters, digits"),
    "empty": ("", "non-empty"),
    "too-long": ("G" * 33, "longer than 32"),
}


@pytest.mark.parametrize(("name", "reason"), BAD.values(), ids=BAD.keys())
def test_a_bad_class_name_is_refused_with_the_reason(name, reason) -> None:
    assert reason in class_name_problem(name)
    with pytest.raises(ValidationError, match=re.escape(reason)) as refused:
        StampClass(name=name, is_real=False).full_clean()
    assert "name" in refused.value.message_dict
    with pytest.raises(ValidationError, match=re.escape(reason)):
        StampClass.objects.create(name=name, is_real=False)
    assert not StampClass.objects.filter(name=name).exists()


@pytest.mark.parametrize("name", ["GLARE", "SAT_TRAIL", "ghost-2", "CR.v2", "9X", "G" * 32])
def test_good_class_names_are_taken(name) -> None:
    assert class_name_problem(name) is None
    StampClass.objects.create(name=name, is_real=False)


@pytest.mark.parametrize("key", ["formula-equals", "rlo"])
def test_the_admin_refuses_a_bad_class_name_on_its_form(client, key) -> None:
    from django.contrib.auth.models import User

    name, reason = BAD[key]
    client.force_login(User.objects.create_superuser("root", password="a-long-test-password"))
    before = StampClass.objects.count()
    response = client.post("/admin/screening/stampclass/add/", {"name": name, "description": "bad"})
    assert response.status_code == 200  # the form again, with the reason at the name
    assert reason in response.content.decode() and 'class="errorlist' in response.content.decode()
    assert StampClass.objects.count() == before
    good = client.post("/admin/screening/stampclass/add/", {"name": "GLARE", "description": "ok"})
    assert good.status_code == 302 and StampClass.objects.filter(name="GLARE").exists()


def test_model_register_refuses_a_checkpoint_with_a_bad_class_name(tmp_path) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from classifier.checkpoint import CheckpointError
    from screening.registry.versions import model_register
    from tests.stamps import PAPER_CLASSES
    from tests.untrained_model import make_checkpoint

    classes = [f"GL{RLO}ERA" if c == "CR" else c for c in PAPER_CLASSES]
    path = make_checkpoint(tmp_path, seed=0, classes=classes)
    with pytest.raises(CheckpointError, match="U\\+202E"):
        model_register(path=path)
    with pytest.raises(CommandError, match="bidirectional-text control"):
        call_command("model_register", str(path))
    assert not ModelVersion.objects.exists()


def test_a_retraining_run_refuses_a_bad_class_name_before_it_trains(settings, tmp_path) -> None:
    from screening.models import JobStatus
    from screening.registry.training import training_run_execute, training_run_request
    from screening.registry.versions import model_activate_and_rescore, model_register
    from screening.review.verdicts import stamp_label_record
    from tests.conftest import make_user
    from tests.untrained_model import make_checkpoint

    settings.MODELS_DIR = tmp_path / "models"
    settings.TRAINING_QUICK = True
    settings.TRAINING_DEVICE = "cpu"
    active = model_register(path=make_checkpoint(tmp_path / "models", seed=0))
    model_activate_and_rescore(version=active.version)
    tracklet = ingest_tracklet("T1")
    reviewer = make_user("alice", "reviewer")
    stamp_label_record(
        detection_id=tracklet.detections.first().pk, reviewer=reviewer, class_name="CR"
    )
    StampClass.objects.filter(name="CR").update(name=f"C{RLO}R")  # a row older than the check
    run = training_run_request()
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "U+202E" in run.error and "rename the stamp class" in run.error
    assert ModelVersion.objects.count() == 1  # no candidate


def test_a_stamp_figure_isolates_the_class_and_the_label() -> None:
    from screening.review.queue import StampView
    from screening.web.rows import stamp_figure

    detection = ingest_tracklet("T1").detections.first()
    stamp = StampView(
        detection=detection,
        top_class=f"{RLO}AST",
        top_probability=0.9,
        probabilities=[(f"{RLO}AST", 0.9), ("CR", 0.1)],
        label=f"{RLO}CR",
        url="/stamps/1.png",
    )
    html = stamp_figure(stamp, 104)
    assert f'<span class="cls"><bdi>{RLO}AST</bdi> 0.90</span>' in html
    assert f"→ <bdi>{RLO}CR</bdi>" in html
    assert f'title="\u2068{RLO}AST\u2069 0.900, \u2068CR\u2069 0.100"' in html  # FSI ... PDI


def test_the_pages_show_class_names_isolated(client, reviewer) -> None:
    """Rows made before names were checked (a class, a model's classes, the class the model
    showed) render inside <bdi> on the queue, tracklet and model pages."""
    from screening.models import StampLabel
    from screening.review.verdicts import stamp_label_record, verdict_record

    model = model_version()
    tracklet = score_tracklet(ingest_tracklet("T9"), model, score=0.97)
    verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    stamp_label_record(
        detection_id=tracklet.detections.first().pk, reviewer=reviewer, class_name="STREAK"
    )
    bad = f"GL{RLO}ERA"
    StampClass.objects.filter(name="STREAK").update(name=bad)
    StampLabel.objects.update(class_shown=f"{RLO}AST")
    ModelVersion.objects.filter(pk=model.pk).update(classes=[*model.classes, bad])
    client.force_login(reviewer)
    queue = client.get(f"/nights/{NIGHT}/?status=all").content.decode()
    assert f"<bdi>{bad}</bdi>" in queue  # the class menu and the keys' help
    page = client.get(f"/tracklets/{tracklet.pk}/").content.decode()
    assert f"<td><bdi>{bad}</bdi></td><td><bdi>{RLO}AST</bdi> 0.90</td>" in page
    assert f"→ <bdi>{bad}</bdi>" in page  # the stamp's label under its figure
    model_page = client.get(f"/models/{model.version}/").content.decode()
    assert f"<bdi>COMET</bdi>, <bdi>{bad}</bdi>." in model_page

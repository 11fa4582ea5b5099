"""Retraining jobs and promotion: one run at a time, candidates never activate themselves,
failures are recorded and leave the active model alone, promotion keeps real recall."""

from __future__ import annotations

import re

import numpy as np
import pytest

from screening.models import (
    JobStatus,
    ModelActivation,
    ModelVersion,
    StampClass,
    Tracklet,
    TrainingRun,
)
from screening.registry.tasks import train_scheduled
from screening.registry.training import (
    TrainingBusy,
    labels_gather,
    training_run_execute,
    training_run_request,
    training_runs_reap,
)
from screening.registry.versions import (
    PromotionRefused,
    model_activate_and_rescore,
    model_promote,
    model_register,
)
from screening.review.verdicts import stamp_label_record, verdict_record
from tests.conftest import make_user
from tests.stamps import ingest_tracklet
from tests.untrained_model import make_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(settings, tmp_path) -> ModelVersion:
    settings.MODELS_DIR = tmp_path / "models"
    settings.TRAINING_QUICK = True
    settings.TRAINING_DEVICE = "cpu"
    model = model_register(path=make_checkpoint(tmp_path / "models", seed=0))
    return model_activate_and_rescore(version=model.version)


@pytest.fixture
def labelled(active):
    """An admin-added GLARE class, glare stamp labels, and agreed and disputed verdicts."""
    StampClass.objects.create(name="GLARE", is_real=False, description="planet glare")
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    tracklets = [ingest_tracklet(f"T{i}", seed=i) for i in range(12)]
    for i, tracklet in enumerate(tracklets):
        verdict_record(tracklet_id=tracklet.pk, reviewer=alice, value="real" if i < 4 else "bogus")
        if i >= 4:
            for detection in tracklet.detections.all():
                stamp_label_record(detection_id=detection.pk, reviewer=alice, class_name="GLARE")
    # bob disagrees on one: it waits for a decision and is left out
    verdict_record(tracklet_id=tracklets[0].pk, reviewer=bob, value="bogus")
    # a corrected label: the latest one counts
    first = tracklets[5].detections.order_by("index").first()
    stamp_label_record(detection_id=first.pk, reviewer=bob, class_name="CR")
    return tracklets


def test_labels_are_gathered_as_reviewers_left_them(labelled) -> None:
    labels = labels_gather()
    assert len(labels.tracklets) == 11  # 12 minus the disputed one
    assert sum(t.real for t in labels.tracklets) == 3
    assert len(labels.stamps) == 8 * 4
    classes = [s.stamp_class for s in labels.stamps]
    assert classes.count("CR") == 1 and classes.count("GLARE") == 31
    assert labels.real_classes["GLARE"] is False and labels.real_classes["AST"] is True
    assert labels.stamps[0].pixels.shape == (100, 100)
    # each agreed tracklet carries its detections' metadata, row for row with its stamps
    for labelled_tracklet in labels.tracklets:
        tracklet = Tracklet.objects.get(pk=int(labelled_tracklet.key))
        rows = tracklet.detections.order_by("index").values_list(
            "mjd", "ra", "dec", "mag", "x", "y", "fwhm_px"
        )
        assert labelled_tracklet.meta.shape == (len(labelled_tracklet.pixels), 7)
        expected = np.array(list(rows), dtype=np.float64)  # a seeing not sent is NaN
        assert np.allclose(labelled_tracklet.meta, expected, equal_nan=True)


def test_reviewers_can_be_weighted_by_their_accuracy_on_gold(active) -> None:
    """alice gets every gold tracklet right, bob half: their agreed verdicts weigh 1.0 and 0.5
    in retraining, a tracklet both judged the mean; no gold judged counts 1.0."""
    from screening.models import QueueAssignment
    from screening.reports.reviewer_quality import reviewer_weights_named

    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    carol = make_user("carol", "reviewer")
    gold = [ingest_tracklet(f"G{i}", seed=i) for i in range(4)]
    QueueAssignment.objects.bulk_create(
        [QueueAssignment(tracklet=t, kind="gold", truth="real", source="test") for t in gold]
    )
    for i, tracklet in enumerate(gold):
        verdict_record(tracklet_id=tracklet.pk, reviewer=alice, value="real")
        verdict_record(tracklet_id=tracklet.pk, reviewer=bob, value="real" if i < 2 else "bogus")
    own = {name: ingest_tracklet(f"T-{name}", seed=10 + k) for k, name in enumerate(("a", "b"))}
    shared = ingest_tracklet("T-shared", seed=20)
    by_carol = ingest_tracklet("T-carol", seed=21)
    verdict_record(tracklet_id=own["a"].pk, reviewer=alice, value="bogus")
    verdict_record(tracklet_id=own["b"].pk, reviewer=bob, value="bogus")
    verdict_record(tracklet_id=by_carol.pk, reviewer=carol, value="bogus")
    for reviewer in (alice, bob):
        verdict_record(tracklet_id=shared.pk, reviewer=reviewer, value="real")

    named = reviewer_weights_named()
    assert named[alice.pk] == ("alice", 1.0) and named[bob.pk] == ("bob", 0.5)
    assert named[carol.pk] == ("carol", 1.0)
    labels = labels_gather({pk: w for pk, (_, w) in named.items()})
    weight = {int(t.key): t.weight for t in labels.tracklets}
    assert weight[own["a"].pk] == 1.0 and weight[own["b"].pk] == 0.5
    assert weight[shared.pk] == 0.75 and weight[by_carol.pk] == 1.0
    assert all(t.weight == 1.0 for t in labels_gather().tracklets)  # unweighted by default


def test_a_run_trains_a_candidate_that_waits_for_promotion(labelled, active, settings) -> None:
    settings.TRAINING_WEIGHT_REVIEWERS = True
    admin = make_user("root", "admin")
    run = training_run_request(user=admin)
    assert run.status == JobStatus.QUEUED and run.is_live
    with pytest.raises(TrainingBusy, match=f"training run {run.pk} is queued"):
        training_run_request(user=admin)

    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.progress == 1.0 and run.is_live is None and run.finished_at
    assert "gathering labels" in run.log and "training the ICN" in run.log
    # no gold judged yet: every reviewer weighs 1.0, and the log says so
    assert "reviewer weights (accuracy on gold; 1.00 without gold): alice 1.00, bob 1.00" in (
        run.log
    )
    candidate = run.candidate
    assert candidate.classes[-1] == "GLARE" and not candidate.is_active
    assert run.metrics["base_version"] == active.version
    assert "candidate" in run.metrics["holdout"] and "base" in run.metrics["holdout"]
    assert ModelVersion.objects.get(is_active=True) == active  # nothing activated itself
    assert training_run_request(user=admin).pk != run.pk  # the next run may start

    training_run_execute(run_id=run.pk)  # delivered twice: nothing happens
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED


def test_a_run_reports_progress_through_each_epoch_and_logs_each(labelled, monkeypatch) -> None:
    """The stamp network's training is most of a run (20 minutes on a CPU): the bar moves on
    within and after each of its epochs, and each epoch of either network is a line of the log."""
    from screening.registry import training

    name, overrides = training.PRESETS["quick"]
    monkeypatch.setitem(training.PRESETS, "quick", (name, {**overrides, "icn_epochs": 2}))
    stored: list[tuple[float, str]] = []  # what the run's page could show, each time it changed
    record = training._progress

    def watched(run_id, fraction, step, **kwargs):
        record(run_id, fraction, step, **kwargs)
        run = TrainingRun.objects.get(pk=run_id)
        stored.append((run.progress, run.step))

    monkeypatch.setattr(training, "_progress", watched)
    run = training_run_request()
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error

    icn = [p for p, step in stored if step.startswith(("training the ICN", "ICN epoch"))]
    assert len(set(icn)) >= 5, stored
    assert all(a < b for a, b in zip(icn, icn[1:], strict=False)), icn  # strictly increasing
    assert icn[0] < 0.2 and icn[-1] > 0.5  # from the ICN's start to its end, not stuck at 17%
    within = [step for _, step in stored if step.startswith("training the ICN: epoch 1 of 2")]
    assert within and within[0] not in run.log  # ticks move the bar, they are no log lines
    epochs = [line for line in run.log.splitlines() if " ICN epoch " in line]
    assert len(epochs) == 2, run.log
    assert re.search(
        r"ICN epoch 2 of 2: train loss \d+\.\d{4}, val loss \d+\.\d{4}, "
        r"val accuracy \d+\.\d%, \d+\.\d s \(\d+\.\d s since the start\)",
        epochs[1],
    ), epochs
    tcn = [line for line in run.log.splitlines() if " TCN epoch " in line]
    assert len(tcn) == overrides["tcn_epochs"], run.log
    assert re.search(r"TCN epoch 1 of \d+: loss \d+\.\d{4}, training accuracy \d+\.\d%", tcn[0])
    tcn_bar = [p for p, step in stored if step.startswith("TCN epoch")]
    assert all(a < b for a, b in zip(tcn_bar, tcn_bar[1:], strict=False)) and tcn_bar[0] > icn[-1]


def test_a_failed_run_records_its_error_and_leaves_the_active_model(active) -> None:
    run = training_run_request()
    training_run_execute(run_id=run.pk)  # no labels at all
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.is_live is None
    assert "no stamp labels or verdicts" in run.error
    assert ModelVersion.objects.get(is_active=True) == active
    assert ModelVersion.objects.count() == 1


def test_a_run_whose_worker_was_lost_is_marked_failed(active) -> None:
    run = training_run_request()
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    training_run_execute(run_id=run.pk)  # redelivered after the worker died
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "lost" in run.error

    other = training_run_request()
    TrainingRun.objects.filter(pk=other.pk).update(
        status=JobStatus.RUNNING, heartbeat_at="2000-01-01T00:00:00Z"
    )
    assert training_runs_reap() == 1
    other.refresh_from_db()
    assert other.status == JobStatus.FAILED and "no heartbeat" in other.error


def test_the_schedule_retrains_only_when_there_are_new_labels(labelled) -> None:
    run_id = train_scheduled()
    run = TrainingRun.objects.get(pk=run_id)
    assert run.trigger == "scheduled"
    training_run_execute(run_id=run_id)
    assert train_scheduled() is None  # nothing new since that run


def candidate_with(
    active: ModelVersion, mine: float, theirs: float, n_real: int = 40, base: str | None = None
) -> ModelVersion:
    holdout = {"tracklets": {"real": n_real, "bogus": 100}}
    return ModelVersion.objects.create(
        version=f"c{mine}{theirs}{n_real}".replace(".", ""),
        checkpoint="/models/x.pt",
        classes=active.classes,
        metrics={"comparison": {
            "base_version": base or active.version,
            "holdout": {"candidate": {**holdout, "real_recall": mine},
                        "base": {**holdout, "real_recall": theirs}},
        }},
    )  # fmt: skip


def test_promotion_keeps_real_recall_or_is_forced_on_record(active) -> None:
    admin = make_user("root", "admin")
    worse = candidate_with(active, 0.975, 1.0)
    with pytest.raises(PromotionRefused, match="0.9750 is below the active model's 1.0000"):
        model_promote(version=worse.version, user=admin)
    assert ModelVersion.objects.get(is_active=True) == active

    stale = candidate_with(active, 1.0, 1.0, base="0" * 16)
    with pytest.raises(PromotionRefused, match="not with the active"):
        model_promote(version=stale.version, user=admin)
    with pytest.raises(PromotionRefused, match="no held-out real tracklets"):
        model_promote(version=candidate_with(active, 1.0, 1.0, n_real=0).version, user=admin)

    better = candidate_with(active, 1.0, 0.975)
    record = model_promote(version=better.version, user=admin)
    assert not record.forced and record.previous == active and "1.0000 >= 0.9750" in record.reason
    assert ModelVersion.objects.get(is_active=True) == better

    # rollback to the earlier model: allowed, recorded
    back = model_promote(version=active.version, user=admin)
    assert "rollback" in back.reason and ModelVersion.objects.get(is_active=True) == active

    forced = model_promote(version=worse.version, user=admin, force=True)
    assert forced.forced and "forced by an admin" in forced.reason and forced.by == admin
    assert ModelActivation.objects.count() == 3


def test_promotion_sees_one_real_tracklet_lost_in_a_thousand(active) -> None:
    """The held-out labels are few; the fixed synthetic set's 1,500 real tracklets are the same
    for both models, so a candidate that keeps one fewer of them is refused even when the
    held-out labels cannot tell the two apart."""
    admin = make_user("root", "admin")

    def with_paired(name: str, kept: int, base_kept: int, lost: int) -> ModelVersion:
        model = candidate_with(active, 1.0, 1.0)
        model.version = name
        model.metrics["comparison"]["synthetic"] = {"paired_real": {
            "real": 1500, "candidate_kept": kept, "base_kept": base_kept, "lost": lost,
            "gained": kept - base_kept + lost}}  # fmt: skip
        model.save()
        return model

    one_lost = with_paired("onelost", 1493, 1494, 3)
    with pytest.raises(PromotionRefused, match="keeps 1493 of the fixed synthetic set's 1500"):
        model_promote(version=one_lost.version, user=admin)
    assert ModelVersion.objects.get(is_active=True) == active
    even = with_paired("even", 1494, 1494, 2)
    record = model_promote(version=even.version, user=admin)
    assert "1494 >= 1494 of 1500 synthetic real tracklets (2 lost, 2 gained)" in record.reason
    assert "on 40 held-out real tracklets" in record.reason


def test_labelled_stamps_carry_their_exposures_seeing(labelled) -> None:
    """A model whose preprocessing reads the seeing (classifier.preprocess.normalise_seeing) is
    retrained on each labelled stamp as it scores it: with its own exposure's seeing, NaN where
    the survey sent none."""
    from screening.models import Detection

    mine = list(Detection.objects.filter(tracklet=labelled[6]).order_by("index"))
    for i, detection in enumerate(mine):
        detection.fwhm_px = 2.5 + i
        detection.save(update_fields=["fwhm_px"])
    labels = labels_gather()
    seeing = {s.key: [] for s in labels.stamps}
    for stamp in labels.stamps:
        seeing[stamp.key].append(stamp.fwhm)
    assert seeing[str(labelled[6].pk)] == [2.5 + i for i in range(len(mine))]
    others = [v for key, values in seeing.items() if key != str(labelled[6].pk) for v in values]
    assert others and all(np.isnan(v) for v in others)

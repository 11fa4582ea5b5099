"""Migrations that fill a new column from the rows stored before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def latest_schema_after():
    """Every test here moves the schema back; the tests after it need the latest one."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


BEFORE = [("screening", "0015_tracklet_file_night_counts")]
AFTER = [("screening", "0016_tracklet_stamp_classes")]


def test_the_class_filters_column_is_filled_for_tracklets_scored_before_it():
    """Each tracklet scored before the column holds its own model's top classes, each once;
    another model's predictions of its stamps and an unscored tracklet leave nothing."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Night, Tracklet = apps.get_model("screening", "Night"), apps.get_model("screening", "Tracklet")
    Detection = apps.get_model("screening", "Detection")
    ModelVersion = apps.get_model("screening", "ModelVersion")
    StampPrediction = apps.get_model("screening", "StampPrediction")
    night = Night.objects.create(date="2030-01-02")
    shown = ModelVersion.objects.create(version="a" * 64, checkpoint="-", threshold=0.5)
    older = ModelVersion.objects.create(version="b" * 64, checkpoint="-", threshold=0.5)
    tracklets = {}
    for name, model in (("scored", shown), ("unscored", None)):
        tracklets[name] = Tracklet.objects.create(
            night=night, survey_id=name, n_detections=3, rate_deg_per_day=0.1,
            position_angle_deg=0, model_version=model, score=0.9 if model else None,
        )  # fmt: skip
    for index, (now, before) in enumerate((("NOISE", "CR"), ("AST", "CR"), ("NOISE", "SPIKE"))):
        for tracklet in tracklets.values():
            detection = Detection.objects.create(
                tracklet=tracklet, index=index, mjd=60000 + index / 100, ra=1.0, dec=2.0,
                mag=19.0, x=10.0, y=10.0, stamp_width=100, stamp_height=100,
            )  # fmt: skip
            for model, top in ((shown, now), (older, before)):
                StampPrediction.objects.create(
                    detection=detection, model_version=model, probabilities={top: 0.9},
                    top_class=top, top_probability=0.9,
                )  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    Now = executor.loader.project_state(AFTER).apps.get_model("screening", "Tracklet")

    assert Now.objects.get(survey_id="scored").stamp_classes == " AST NOISE "
    assert Now.objects.get(survey_id="unscored").stamp_classes == ""

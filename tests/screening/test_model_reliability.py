"""The model page's calibration: the reliability diagram and ECE a checkpoint carries, and a plain
"not calibrated" where an older model has none."""

from __future__ import annotations

import pytest

from screening.models import ModelVersion
from tests.stamps import PAPER_CLASSES

pytestmark = pytest.mark.django_db

RELIABILITY = {
    "bins": [
        {"lo": 0.0, "hi": 0.1, "n": 2400, "mean_score": 0.012, "fraction_real": 0.010},
        {"lo": 0.4, "hi": 0.5, "n": 35, "mean_score": 0.46, "fraction_real": 0.49},
        {"lo": 0.9, "hi": 1.0, "n": 2300, "mean_score": 0.985, "fraction_real": 0.978},
    ],
    "ece": 0.0123,
}


def model(version: str, metrics: dict) -> ModelVersion:
    return ModelVersion.objects.create(
        version=version, checkpoint=f"/models/{version}.pt", classes=PAPER_CLASSES, metrics=metrics
    )


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


@pytest.mark.parametrize(
    "validation",
    [
        {"tcn_auc": 0.99, "reliability": RELIABILITY},  # trained from scratch
        {"icn": {}, "tcn": {"auc": 0.99, "reliability": RELIABILITY}},  # a retraining run
    ],
)
def test_it_shows_the_ece_and_the_reliability_plot_of_a_calibrated_model(
    reviewer_client, validation
):
    calibrated = model("d" * 16, {"validation": validation})
    page = reviewer_client.get(f"/models/{calibrated.version}/").content.decode()
    assert 'data-figure="ece">0.012<' in page and "4735 held-out validation tracklets" in page
    assert f"/models/{calibrated.version}/reliability.png" in page
    assert "Not calibrated" not in page
    png = reviewer_client.get(f"/models/{calibrated.version}/reliability.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"validation": {"tcn_auc": 0.97}},  # a format-1 checkpoint: no reliability table
        {"validation": {"reliability": {"bins": [{"lo": 0.0}], "ece": 0.1}}},  # not a table
        {"validation": {"reliability": {**RELIABILITY, "ece": None}}},
    ],
)
def test_a_model_without_reliability_data_says_so_instead_of_a_plot(reviewer_client, metrics):
    older = model("e" * 16, metrics)
    page = reviewer_client.get(f"/models/{older.version}/").content.decode()
    assert "Not calibrated / no reliability data" in page
    assert "reliability.png" not in page and 'data-figure="ece"' not in page
    png = reviewer_client.get(f"/models/{older.version}/reliability.png")  # asked for anyway
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_the_reliability_plot_is_for_reviewers_and_admins_only(client):
    from tests.conftest import make_user

    calibrated = model("f" * 16, {"validation": {"reliability": RELIABILITY}})
    client.force_login(make_user("pipe", "pipeline"))
    response = client.get(f"/models/{calibrated.version}/reliability.png")
    assert response.status_code == 403 and "reviewers and admins" in response.content.decode()

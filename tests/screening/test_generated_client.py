"""A client generated from the live schema by openapi-python-client, as an integrator would make
one, imports whole and does the pipeline's and reviewers' work over HTTP: verdicts, stamp labels,
an MPC report and the CSV export, each checked against what was stored."""

from __future__ import annotations

import csv
import importlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from rest_framework.authtoken.models import Token

from screening.models import MpcReport, StampLabel, Verdict
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def _generate(base_url: str, token: str, folder: Path):
    """Fetch the schema the server serves and generate a Python client package from it."""
    if not GENERATOR.exists() and shutil.which("openapi-python-client") is None:
        pytest.skip("needs openapi-python-client (in the test extras)")
    schema = httpx.get(
        f"{base_url}/api/v1/schema/", headers={"Authorization": f"Token {token}"}, timeout=30
    )
    assert schema.status_code == 200, schema.text[:300]
    (folder / "schema.yaml").write_bytes(schema.content)
    generated = subprocess.run(
        [
            str(GENERATOR if GENERATOR.exists() else "openapi-python-client"),
            "generate",
            "--path",
            str(folder / "schema.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(folder / "screening_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(folder))
    try:
        importlib.invalidate_caches()
        package = importlib.import_module("screening_client")
        # Every operation's module imports (a body offered in three media types did not).
        for module in sorted((folder / "screening_client" / "api").rglob("*.py")):
            name = ".".join(module.relative_to(folder).with_suffix("").parts)
            importlib.import_module(name.removesuffix(".__init__"))
        return package
    finally:
        sys.path.remove(str(folder))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_client_generated_from_the_schema_gives_verdicts_labels_a_report_and_the_csv(
    live_server, tmp_path
):
    reviewer = Token.objects.create(user=make_user("rita", "reviewer")).key
    admin = Token.objects.create(user=make_user("adam", "admin")).key
    model = model_version(threshold=0.5)
    tracklets = []
    for i, score in enumerate([0.95, 0.9, 0.2]):
        tracklets.append(ingest_tracklet(f"G{i}", seed=i))
        score_tracklet(tracklets[-1], model, score=score)

    client_package = _generate(live_server.url, admin, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        from screening_client import AuthenticatedClient
        from screening_client.api.detections import detections_label_create
        from screening_client.api.export import export_labels_csv, export_verdicts_csv
        from screening_client.api.reports import reports_create
        from screening_client.api.tracklets import tracklets_verdict_create
        from screening_client.models import (
            MpcReport as ReportAnswer,
        )
        from screening_client.models import (
            ReportCreate,
            StampLabelInput,
            VerdictInput,
            VerdictInputValueEnum,
        )
    finally:
        sys.path.remove(str(tmp_path))
    assert client_package.__name__ == "screening_client"

    def client(token: str):
        return AuthenticatedClient(base_url=live_server.url, token=token, prefix="Token")

    as_reviewer, as_admin = client(reviewer), client(admin)
    for tracklet, value in zip(tracklets[:2], ("real", "real"), strict=True):
        answer = tracklets_verdict_create.sync(
            id=tracklet.pk,
            client=as_reviewer,
            body=VerdictInput(value=VerdictInputValueEnum(value)),
        )
        assert answer.value.value == value, answer
    detection = tracklets[0].detections.order_by("index").first()
    label = detections_label_create.sync(
        id=detection.pk, client=as_reviewer, body=StampLabelInput(stamp_class="AST")
    )
    assert label.stamp_class == "AST", label
    stored = Verdict.objects.filter(reviewer__username="rita").order_by("tracklet__survey_id")
    assert [(v.tracklet.survey_id, v.value) for v in stored] == [("G0", "real"), ("G1", "real")]
    assert StampLabel.objects.get().detection_id == detection.pk

    import datetime

    report = reports_create.sync(
        client=as_admin, body=ReportCreate(night=datetime.date.fromisoformat(NIGHT))
    )
    assert isinstance(report, ReportAnswer), report
    assert report.n_tracklets == 2 and report.n_observations == 8
    assert MpcReport.objects.get().content_sha256 == report.content_sha256

    verdicts = export_verdicts_csv.sync(client=as_admin, night=datetime.date.fromisoformat(NIGHT))
    rows = list(csv.DictReader(io.StringIO(verdicts)))
    assert sorted((r["tracklet"], r["reviewer"], r["verdict"]) for r in rows) == [
        ("G0", "rita", "real"),
        ("G1", "rita", "real"),
    ]
    labels = list(csv.DictReader(io.StringIO(export_labels_csv.sync(client=as_admin))))
    assert [(r["tracklet"], r["stamp_class"]) for r in labels] == [("G0", "AST")]

"""The OpenAPI schema is what the server does: schemathesis fuzzes every operation of the live
schema (`/api/v1/schema/`, served by the WSGI application itself) with the token of each role,
on a database holding real tracklets, and runs its standard checks on every answer.

Checks: every default check of schemathesis 4 (not_a_server_error, status_code_conformance,
content_type_conformance, response_schema_conformance, response_headers_conformance,
negative_data_rejection, positive_data_acceptance, missing_required_header, ignored_auth,
unsupported_method, ...), with the phases that a pytest run has (examples, coverage, fuzzing).
Deterministic: a fixed seed, derandomized Hypothesis, no example database.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from django.db import transaction
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from screening.review.verdicts import stamp_label_record, verdict_record
from tests.conftest import make_user
from tests.stamps import ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db

SEED = 20261124
# The admin may do everything, so its requests go deepest: the coverage phase's boundary
# values and 25 fuzzed examples an operation. The other roles (whose requests mostly end at
# their permissions) get the schema's examples and 10 fuzzed examples an operation.
ADMIN = ["admin"]
OTHER_ROLES = ["reviewer", "pipeline", "consumer"]
ROLES = ADMIN + OTHER_ROLES


@pytest.fixture
def seeded(db) -> dict:
    """A few real objects, so that GETs by id find something (the ids are mapped onto them)."""
    from screening.models import BundleUpload, TrainingRun

    reviewer = make_user("alice", "reviewer")
    old = model_version("a" * 16, active=False)
    new = model_version("b" * 16)
    first = ingest_tracklet("T1")
    second = ingest_tracklet("T2", seed=1)
    score_tracklet(first, old, score=0.91)
    score_tracklet(second, new, score=0.12)
    verdict_record(tracklet_id=first.pk, reviewer=reviewer, value="real")
    detection = second.detections.order_by("index").first()
    stamp_label_record(detection_id=detection.pk, reviewer=reviewer, class_name="CR")
    upload = BundleUpload.objects.create(file="uploads/night.zip", original_name="night.zip")
    run = TrainingRun.objects.create(step="queued")
    return {
        "id": {
            "tracklets": [first.pk, second.pk],
            "detections": list(first.detections.values_list("pk", flat=True).order_by("pk")[:2]),
            "bundles": [upload.pk],
            "training-runs": [run.pk],
        },
        "version": [old.version, new.version],
    }


def _load_schema(*, max_examples: int, coverage: bool):
    from screening.wsgi import application

    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "phases": {"coverage": {"enabled": coverage}},
            "generation": {
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "operations": [
                {
                    # A valid tracklet needs stamp files whose content (FITS, PNG or NPY pixels)
                    # and the metadata's references to them agree: nothing a schema can state,
                    # so schema-valid generated uploads are rightly refused (400). Every other
                    # check runs on this operation.
                    "include-path": "/api/v1/tracklets/",
                    "include-method": "POST",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
                {
                    # The stamp classes are rows of the database (admins add them), not a fixed
                    # enum: an unknown class is rightly refused (400).
                    "include-path": "/api/v1/detections/{id}/label/",
                    "include-method": "POST",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
            ],
        }
    )
    return schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=config)


deep = _load_schema(max_examples=25, coverage=True)
wide = _load_schema(max_examples=10, coverage=False)
STORED: dict = {}
CALLS: Counter = Counter()  # (method path, role) -> requests sent


@pytest.fixture(scope="module", autouse=True)
def calls_summary(request):
    """At the end, one line: operations, requests sent in all and at most per operation."""
    yield
    if CALLS:
        operations = {label for label, _ in CALLS}
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        line = (
            f"schemathesis: {len(operations)} operations x {len(ROLES)} roles, "
            f"{sum(CALLS.values())} requests, {max(CALLS.values())} at most for one "
            f"operation and role"
        )
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter and capture:
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(line)


def map_path_parameters(context, path_parameters):
    """Small generated ids (Hypothesis draws many) become ids of stored objects."""
    if not path_parameters:
        return path_parameters
    path = context.operation.path
    value = path_parameters.get("id")
    if isinstance(value, int) and 0 <= value < 8:
        for prefix, ids in STORED.get("id", {}).items():
            if path.startswith(f"/api/v1/{prefix}/"):
                path_parameters["id"] = ids[value % len(ids)]
    version = path_parameters.get("version")
    if isinstance(version, str) and len(version) <= 1 and STORED:
        path_parameters["version"] = STORED["version"][ord(version or "a") % 2]
    return path_parameters


deep.hook(map_path_parameters)
wide.hook(map_path_parameters)


@pytest.fixture
def keep_connection():
    """Requests go through the WSGI application itself, whose end-of-request signal closes the
    database connection (and with it the test's transaction); keep it open, as Django's test
    client does."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(request, seeded, keep_connection) -> str:
    cache.clear()
    STORED.clear()
    STORED.update(seeded)
    user = make_user(f"fuzz-{request.param}", request.param)
    return Token.objects.create(user=user).key


def _call_and_check(case, token: str, role: str) -> None:
    CALLS[(case.operation.label, role)] += 1
    # Each request in its own savepoint, as in production each has its own transaction: a
    # database error in one must not abort the test's transaction for the ones that follow.
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Token {token}"})


@pytest.mark.parametrize("token", ADMIN, indirect=True)
@deep.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_server_does_what_the_schema_says_to_an_admin(case, token, request):
    _call_and_check(case, token, request.node.callspec.params["token"])


@pytest.mark.parametrize("token", OTHER_ROLES, indirect=True)
@wide.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_server_does_what_the_schema_says_to_the_other_roles(case, token, request):
    _call_and_check(case, token, request.node.callspec.params["token"])


# What the schema documents, asked directly (the fuzzing above checks it answer by answer).


def _client(role: str):
    from rest_framework.test import APIClient

    client = APIClient()
    token = Token.objects.create(user=make_user(f"direct-{role}", role))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_the_schema_documents_the_real_status_codes_and_media_types() -> None:
    from rest_framework.test import APIClient

    paths = APIClient().get("/api/v1/schema/?format=json").json()["paths"]
    codes = {
        ("/api/v1/bundles/", "post"): {"202", "400", "401", "403", "413", "415", "429"},
        ("/api/v1/training-runs/", "post"): {"202", "401", "403", "409", "429"},
        ("/api/v1/tracklets/{id}/verdict/", "post"): {"201", "400", "401", "403", "404", "429"},
        ("/api/v1/detections/{id}/label/", "post"): {"201", "400", "401", "403", "404", "429"},
        ("/api/v1/tracklets/", "post"): {"200", "201", "400", "409", "413", "415"},
        ("/api/v1/tracklets/", "get"): {"200", "400", "401", "404", "429"},
        ("/api/v1/models/{version}/activate/", "post"): {"200", "404", "409"},
    }
    for (path, method), expected in codes.items():
        assert expected <= set(paths[path][method]["responses"]), (path, method)
    assert "201" not in paths["/api/v1/bundles/"]["post"]["responses"]
    assert "403" not in paths["/api/v1/tracklets/"]["get"]["responses"]
    upload = paths["/api/v1/tracklets/"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    rejected = upload["responses"]["400"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/IngestError"} in rejected
    display = paths["/api/v1/detections/{id}/display.png"]["get"]["responses"]
    assert display["200"]["content"] == {
        "image/png": {"schema": {"type": "string", "format": "binary"}}
    }
    export = paths["/api/v1/export/labels/"]["get"]["responses"]["200"]["content"]
    assert export["text/csv"]["schema"] == {"type": "string"}
    paging = {p["name"]: p["schema"] for p in paths["/api/v1/tracklets/"]["get"]["parameters"]}
    assert paging["page_size"] == {"type": "integer", "minimum": 1, "maximum": 500}


def test_lists_take_a_bounded_page_size_and_refuse_bad_paging(seeded) -> None:
    client = _client("consumer")
    assert client.get("/api/v1/tracklets/").json()["count"] == 2
    page = client.get("/api/v1/tracklets/?page_size=1&page=2").json()
    assert len(page["results"]) == 1 and page["next"] is None and page["previous"]
    for bad in ("page=", "page=abc", "page=0", "page_size=0", "page_size=501", "page_size="):
        response = client.get(f"/api/v1/tracklets/?{bad}")
        assert response.status_code == 400, bad
        assert list(response.json()) == [bad.split("=")[0]]
    assert client.get("/api/v1/tracklets/?page=3&page_size=1").status_code == 404
    assert client.get("/api/v1/nights/?page_size=500").status_code == 200
    assert client.get("/api/v1/export/verdicts/?page_size=10001").status_code == 400
    csv = client.get("/api/v1/export/verdicts/?format=csv&page_size=x")
    assert csv.status_code == 400 and csv["Content-Type"] == "application/json"
    assert client.get("/api/v1/tracklets/not-an-id/").json() == {"detail": "Not found."}
    assert client.get("/api/v1/models/%00/").status_code == 404
    assert client.post("/api/v1/detections/x/label/").json() == {
        "detail": "no API operation at /api/v1/detections/x/label/"
    }
    # a path that is not there is a 404 whatever format it asks for (not a 400 on ?format)
    for path in ("/api/v1/detections/-334/display.png?format=png", "/api/v1/nope/?format=csv"):
        missing = client.get(path, HTTP_ACCEPT="image/png")
        assert missing.status_code == 404, path
        assert missing.json()["detail"].startswith("no API operation at /api/v1/")
    assert client.options("/api/v1/nope/").status_code == 404


def test_activating_the_active_model_changes_nothing(seeded) -> None:
    from screening.models import ModelActivation, ModelVersion

    admin = _client("admin")
    active = ModelVersion.objects.get(is_active=True)
    for _ in range(3):
        again = admin.post(f"/api/v1/models/{active.version}/activate/", {}, format="json")
        assert again.status_code == 200
        assert again.json()["already_active"] is True
        assert again.json()["model_version"] == active.version
    assert not ModelActivation.objects.exists()
    other = seeded["version"][0]
    forced = admin.post(f"/api/v1/models/{other}/activate/", {"force": True}, format="json")
    assert forced.status_code == 200 and forced.json()["already_active"] is False
    assert ModelActivation.objects.count() == 1


def test_a_token_client_gets_the_display_png_that_display_url_names(seeded) -> None:
    from rest_framework.test import APIClient

    client = _client("consumer")
    tracklet_id = seeded["id"]["tracklets"][0]
    detection = client.get(f"/api/v1/tracklets/{tracklet_id}/").json()["detections"][0]
    url = detection["display_url"]
    assert url.startswith("/api/v1/detections/") and url.endswith("/display.png")
    image = client.get(url, HTTP_ACCEPT="image/png")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")
    anonymous = APIClient().get(url, HTTP_ACCEPT="image/png")
    assert anonymous.status_code == 401 and anonymous["Content-Type"] == "application/json"
    missing = client.get("/api/v1/detections/999999/display.png", HTTP_ACCEPT="image/png")
    assert missing.status_code == 404 and "detail" in missing.json()


# Every enumerated query parameter (an enum or a boolean in the schema) takes only its values:
# any other is a 400 naming the parameter and the values, never a silent default or a 404.
ENUMS = {
    ("/api/v1/nights/{date}/queue/", "order"): ["desc", "asc", "informative", "neo"],
    ("/api/v1/nights/{date}/queue/", "claim"): ["true", "false"],
    ("/api/v1/tracklets/", "status"): ["pending", "scored", "reviewed"],
    ("/api/v1/tracklets/", "neo_candidate"): ["true", "false"],
    ("/api/v1/tracklets/", "unlike_training"): ["true", "false"],
    ("/api/v1/tracklets/", "not_moving"): ["true", "false"],
    ("/api/v1/tracklets/", "ordering"): ["id", "-digest2_neo"],
    ("/api/v1/export/verdicts/", "verdict"): ["real", "bogus", "withdrawn"],
    ("/api/v1/export/verdicts.csv", "verdict"): ["real", "bogus", "withdrawn"],
    ("/api/v1/export/verdicts/", "format"): ["json", "csv"],
    ("/api/v1/export/labels/", "format"): ["json", "csv"],
    ("/api/v1/detections/{id}/display.png", "format"): ["json", "png"],
}


def test_the_schema_declares_the_enumerated_query_parameters() -> None:
    from rest_framework.test import APIClient

    paths = APIClient().get("/api/v1/schema/?format=json").json()["paths"]
    declared = {}
    for path, operations in paths.items():
        for parameter in operations.get("get", {}).get("parameters", []):
            schema = parameter["schema"]
            if parameter["in"] == "query" and ("enum" in schema or schema["type"] == "boolean"):
                values = schema.get("enum", ["true", "false"])
                declared[(path, parameter["name"])] = sorted(str(v) for v in values if v)
    assert declared == {key: sorted(values) for key, values in ENUMS.items()}


@pytest.mark.parametrize("value", ["AAA", "x"])
@pytest.mark.parametrize(("path", "name"), list(ENUMS), ids=[f"{p} {n}" for p, n in ENUMS])
def test_an_enumerated_query_parameter_refuses_any_other_value(seeded, path, name, value) -> None:
    from tests.stamps import NIGHT

    client = _client("admin")
    url = path.replace("{date}", NIGHT).replace("{id}", str(seeded["id"]["detections"][0]))
    allowed = ENUMS[(path, name)]
    for good in allowed:
        answer = client.get(url, {name: good})
        assert answer.status_code == 200, (good, answer.content[:300])
    for bad in (value, allowed[0] + value, allowed[0].upper()):
        answer = client.get(url, {name: bad})
        assert answer.status_code == 400, (bad, answer.status_code)
        assert answer["Content-Type"] == "application/json"
        (reason,) = answer.json()[name]
        assert reason.startswith("must be one of ") and reason.endswith(f"got {bad!r}"), reason
        assert all(v in reason for v in allowed), reason

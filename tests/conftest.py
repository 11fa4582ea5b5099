"""Shared fixtures: isolated media storage, API clients per role, a real Celery worker."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings

from tests import processes
from tests.processes import stop_process

ROOT = Path(__file__).resolve().parent.parent
ZTF_DIR = ROOT / "tests" / "data" / "ztf-alert-cutouts"


def close_dead_connections() -> None:
    """Close the database connections of the current context that a PostgreSQL restart
    (tests/screening/test_ingest_faults.py) cut, so a later test does not inherit a dead one
    (as a request's start does in the product: `close_old_connections`). Django keeps one set
    per context: the browser tests' Playwright greenlet has its own (tests/browser.py)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            conn.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    """Before any fixture, in the main context."""
    close_dead_connections()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def no_blind_rows(settings):
    """No audit draw, no second screening, scores shown: the to-review queue is the passing
    tracklets, as before auditing. Tests of auditing turn it on with `blind_rows`; the demo's
    and docker's processes run with the product's defaults (auditing on)."""
    settings.AUDIT_RATE = 0.0
    settings.AUDIT_MIN_PER_NIGHT = 0
    settings.SECOND_SCREENING_RATE = 0.0
    settings.SCREENING_BLIND = False


@pytest.fixture
def blind_rows(settings):
    """Auditing as the product ships it (the defaults of screening/settings.py)."""
    settings.AUDIT_RATE = 0.02
    settings.AUDIT_MIN_PER_NIGHT = 50
    settings.SECOND_SCREENING_RATE = 0.05
    settings.SCREENING_BLIND = True
    settings.AUDIT_TARGET_LOSS = 0.02
    settings.AUDIT_CONFIDENCE = 0.95


@pytest.fixture
def s3_media(settings, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """MEDIA_STORAGE=s3 on a bucket of its own in the S3 server `./run test` starts (moto, on
    loopback). Yields `env` (what a worker process needs for the same bucket) and `keys()` (the
    bucket's object names). MEDIA_ROOT stays an empty folder: nothing may land on a disk."""
    import uuid

    import boto3

    endpoint = os.environ.get("TEST_S3_ENDPOINT_URL")
    if not endpoint:
        pytest.skip("needs the S3 server that ./run test starts (TEST_S3_ENDPOINT_URL)")
    env = {
        "MEDIA_STORAGE": "s3",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET": f"test-{uuid.uuid4().hex[:12]}",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["S3_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=env["S3_BUCKET"])
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **django_settings.STORAGES.get("default", {}).get("OPTIONS", {}),
                "bucket_name": env["S3_BUCKET"],
                "endpoint_url": endpoint,
                "region_name": env["S3_REGION"],
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "file_overwrite": False,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    yield SimpleNamespace(
        env=env, keys=lambda: sorted(o["Key"] for o in bucket_objects(client, env["S3_BUCKET"]))
    )
    keys = [o["Key"] for o in bucket_objects(client, env["S3_BUCKET"])]
    for start in range(0, len(keys), 1000):
        client.delete_objects(
            Bucket=env["S3_BUCKET"],
            Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]},
        )
    client.delete_bucket(Bucket=env["S3_BUCKET"])


def bucket_objects(client, bucket: str) -> list[dict]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o for page in pages for o in page.get("Contents", [])]


def stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def make_user(username: str, role: str):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password="a-long-test-password")
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def pipeline_client(db):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token = Token.objects.create(user=make_user("pipeline", "pipeline"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def reviewer(db):
    return make_user("reviewer", "reviewer")


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def start_worker(transactional_db, media_root: Path) -> Iterator:
    """Start real workers on the test database and the Redis of `./run test`.

    Call it with a role of screening/ops/workers.py ("cpu", "training"; the same commands as the
    demo and docker-compose) and extra environment variables; every worker is stopped at the end.
    """
    if (
        not os.environ.get("REDIS_URL")
        or "postgresql" not in django_settings.DATABASES["default"]["ENGINE"]
    ):
        pytest.skip("needs the PostgreSQL and Redis that ./run test starts")
    workers: list[subprocess.Popen] = []

    def start(role: str = "cpu", **extra: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "MEDIA_ROOT": str(media_root),
            **extra,
        }
        log = media_root.parent / f"worker-{len(workers)}-{role}.log"
        worker = start_celery_worker(env, log, role)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            stop_process(worker)


@pytest.fixture
def celery_worker(start_worker) -> subprocess.Popen:
    """One real `cpu` worker (default and inference queues), as the demo starts it."""
    return start_worker()


def start_celery_worker(env: dict[str, str], log: Path, role: str = "cpu") -> subprocess.Popen:
    """Start a worker of a role with this environment; return once it is ready."""
    try:
        return processes.start_celery_worker(env, log, role)
    except RuntimeError as error:
        pytest.fail(str(error))

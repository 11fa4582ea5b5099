"""The embedded default of the demo: SQLite and the filesystem broker with a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, start_celery_worker, stop_process
from tests.screening.test_bundles import zip_folder
from tests.stamps import write_bundle

pytestmark = pytest.mark.slow


def embedded_env(tmp_path) -> dict[str, str]:
    """The demo's settings: SQLite and the filesystem broker, nothing else running."""
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        DEBUG="1",
        MEDIA_ROOT=str(tmp_path / "media"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_DATA_DIR=str(tmp_path / "celery"),
        MODELS_DIR=str(tmp_path / "models"),
    )
    return env


def manager(env: dict[str, str]):
    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return manage


def test_the_demo_stack_ingests_an_uploaded_bundle_without_any_server(tmp_path):
    env = embedded_env(tmp_path)
    manage = manager(env)

    manage("migrate", "--no-input", "-v", "0")
    manage("demo_users", "--password", "demo-password-123")
    archive = zip_folder(write_bundle(tmp_path / "night", ["A", "B"]), tmp_path / "night.zip")
    worker = start_celery_worker(env, tmp_path / "worker.log")
    try:
        script = (
            "from django.contrib.auth.models import User\n"
            "from django.core.files.uploadedfile import SimpleUploadedFile\n"
            "from screening.uploads import bundle_upload_create\n"
            f"data = open({str(archive)!r}, 'rb').read()\n"
            "up = bundle_upload_create(file=SimpleUploadedFile('night.zip', data),"
            " user=User.objects.get(username='pipeline'))\n"
            "print(up.pk)\n"
        )
        upload_id = manage("shell", "-v", "0", "-c", script).strip()
        deadline = time.monotonic() + 90
        status = ""
        while time.monotonic() < deadline:
            status = manage(
                "shell",
                "-v",
                "0",
                "-c",
                "from screening.models import BundleUpload as B; "
                f"print(B.objects.get(pk={upload_id}).status)",
            ).strip()
            if status in ("succeeded", "failed"):
                break
            time.sleep(1)
        assert status == "succeeded"
        count = manage(
            "shell",
            "-v",
            "0",
            "-c",
            "from screening.models import Tracklet; print(Tracklet.objects.count())",
        ).strip()
        assert count == "2"
    finally:
        stop_process(worker)


def test_the_demo_night_is_simulated_ingested_and_scored_without_any_server(tmp_path):
    from tests.untrained_model import make_checkpoint

    env = embedded_env(tmp_path)
    manage = manager(env)
    make_checkpoint(tmp_path / "models", seed=3)
    manage("migrate", "--no-input", "-v", "0")
    demo = ("demo_night", "--tracklets", "6", "--night", "2026-01-02", "--seed", "5",
            "--glare-tracklets", "5", "--planet-fraction", "1")  # fmt: skip
    out = manage(*demo)
    assert "6 tracklets: 6 created" in out and "active" in out
    # the night before is the planet-glare night: every tracklet in a field near a planet
    assert "planet-glare night" in out and "5 tracklets: 5 created" in out
    glare = (
        "from screening.models import Night; "
        "print(Night.objects.get(date='2026-01-01').tracklets.count())"
    )
    assert manage("shell", "-v", "0", "-c", glare).strip() == "5"
    worker = start_celery_worker(env, tmp_path / "worker.log")
    try:
        count = (
            "from screening.models import Tracklet; "
            "print(Tracklet.objects.filter(status='scored').count())"
        )
        deadline = time.monotonic() + 120
        while manage("shell", "-v", "0", "-c", count).strip() != "11":
            assert time.monotonic() < deadline, "the demo night was not scored"
            time.sleep(1)
    finally:
        stop_process(worker)
    again = manage(*demo)
    assert "night 2026-01-02 is already ingested" in again
    assert "planet-glare night 2026-01-01 is already ingested" in again

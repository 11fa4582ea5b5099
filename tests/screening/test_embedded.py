"""The embedded default of the demo: SQLite and the filesystem broker with a real worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from screening.ops.demo_env import demo_environment
from tests.conftest import ROOT, start_celery_worker, stop_process
from tests.screening.test_bundles import zip_folder
from tests.stamps import write_bundle

pytestmark = pytest.mark.slow


def embedded_env(tmp_path) -> dict[str, str]:
    """The demo's settings (`./run demo`'s, from screening/ops/demo_env.py): SQLite and the
    filesystem broker, nothing else running."""
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(demo_environment(tmp_path / "var", environ={}))
    env.update(
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
            "from screening.ingest.uploads import bundle_upload_create\n"
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


def get(url: str) -> tuple[int, str, str]:
    """(status, final URL, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, url, error.read().decode()


def test_an_unknown_address_in_the_demo_shows_the_sites_page_not_the_url_patterns(tmp_path):
    """The demo's web server as `./run demo` starts it: an unknown address answers the site's
    own 404 page (DEBUG is off), not Django's debug page listing every URL pattern; pages and
    static files are served over plain HTTP on loopback."""
    env = embedded_env(tmp_path)
    assert env["DEBUG"] == "0"
    manage = manager(env)
    manage("migrate", "--no-input", "-v", "0")
    manage("collectstatic", "--no-input", "-v", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, url, login = get(f"{base}/accounts/login/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo's web server did not start"
                time.sleep(0.3)
        assert status == 200 and url.startswith("http://")  # no redirect to HTTPS
        status, _, page = get(f"{base}/no/such/page/")
        assert status == 404
        assert "<h1>Not found</h1>" in page and "Back to the nights" in page
        assert "There is nothing at this address" in page and "Resolver404" not in page
        assert "URLconf" not in page and "DEBUG = True" not in page
        assert "nights/&lt;str:date&gt;/" not in page and "api/v1/" not in page
        # the page's style sheet, by its content-hashed name, from WhiteNoise
        css = re.search(r'href="(/static/screening/screening\.[0-9a-f]+\.css)"', login)
        assert css, login
        status, _, sheet = get(base + css.group(1))
        assert status == 200 and ".qrow" in sheet
    finally:
        stop_process(server)

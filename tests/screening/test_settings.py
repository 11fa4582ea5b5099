"""Settings come from the environment, fail loudly on bad values, and pass `check --deploy`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-the-deploy-check-0123456789",
    "ALLOWED_HOSTS": "screening.example.org",
    "DATABASE_URL": "postgres://screening@db.example.org:5432/screening",
    "REDIS_URL": "redis://redis.example.org:6379/0",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DEBUG",
            "SECRET_KEY",
            "SECURE_SSL_REDIRECT",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "DATABASE_URL",
            "REDIS_URL",
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "environment variable SECRET_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("STAMP_MAX_BYTES", "lots", "STAMP_MAX_BYTES='lots' is not an integer"),
        ("STAMP_MAX_SIDE", "10", "STAMP_MAX_SIDE=10 is below its minimum 100"),
        ("API_THROTTLE_USER", "lots", "API_THROTTLE_USER='lots' is not a rate like 100/minute"),
        ("INFERENCE_PRECISION", "fp8", "INFERENCE_PRECISION='fp8' is not one of auto, fp32, bf16"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(name, value, message):
    result = manage("check", **{**PRODUCTION, name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_every_setting_read_from_the_environment_is_listed_in_env_example():
    import re

    source = (ROOT / "screening" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z_]+)"', source))
    listed = {
        line.split("=")[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def _compose() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(_compose() is None, reason="needs docker compose (./run test installs it)")
def test_the_compose_file_is_valid():
    services = _compose_services()  # `config` validates the file
    assert {
        "postgres",
        "redis",
        "minio",
        "web",
        "worker",
        "training-worker",
        "gpu-worker",
        "beat",
    } <= set(services)
    unchecked = [name for name, service in services.items() if "healthcheck" not in service]
    assert not unchecked, f"services without a health check: {unchecked}"
    # media go to MinIO: no service mounts a media volume, every app service waits for MinIO
    for name, service in services.items():
        if service.get("image", "").startswith("tracklet-screening"):
            assert service["environment"]["MEDIA_STORAGE"] == "s3", name
            assert "minio" in service["depends_on"], name
            assert not any("media" in str(v) for v in service.get("volumes", [])), name


def _compose_services() -> dict:
    import yaml

    result = subprocess.run(
        [*_compose(), "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "SECRET_KEY": PRODUCTION["SECRET_KEY"],
            "POSTGRES_PASSWORD": "x",
            "MINIO_ROOT_PASSWORD": "y" * 12,
        },
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.mark.skipif(_compose() is None, reason="needs docker compose (./run test installs it)")
def test_compose_the_demo_and_the_tests_start_the_workers_from_one_definition():
    """Every worker is `python -m screening.ops.workers ROLE`: compose, ./run demo and the tests
    (tests/processes.py) read pool, queues and concurrency from screening/ops/workers.py."""
    from screening.ops.workers import ROLES

    services = _compose_services()
    commands = {name: s.get("command") for name, s in services.items()}
    workers = {n: c for n, c in commands.items() if c and "worker" in " ".join(c)}
    assert workers, commands
    for name, command in workers.items():
        assert command[:3] == ["python", "-m", "screening.ops.workers"], (name, command)
        assert command[3] in ROLES and len(command) == 4, (name, command)
        assert services[name]["environment"]["WORKER_ROLE"] == command[3]
    compose_roles = {c[3] for c in workers.values()}
    assert compose_roles == set(ROLES)  # every role runs in production
    demo = (ROOT / "run").read_text()
    demo_roles = set(re.findall(r"-m screening\.ops\.workers (\w+)", demo))
    assert demo_roles == {"cpu", "training"} and 'celery" -A' not in demo
    assert "screening.ops.workers" in (ROOT / "tests" / "processes.py").read_text()

"""Settings come from the environment, fail loudly on bad values, and pass `check --deploy`."""

from __future__ import annotations

import os
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


# docker-compose.yml's settings (every variable of .env reaching the services, the TLS proxy, the
# deploy check of what the web gets) are tested in tests/screening/test_compose.py.

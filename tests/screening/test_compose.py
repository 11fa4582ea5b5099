"""docker-compose.yml, the Dockerfile and the proxy's configuration as an operator's `.env` makes
them: `docker compose config` in a folder holding the compose file and a `.env`, as after
`cp .env.example .env` (no container runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

APP_IMAGES = ("tracklet-screening-web", "tracklet-screening-worker")
APP_SERVICES = {"web", "worker", "training-worker", "gpu-worker", "beat"}
# What compose sets itself, whatever .env says: its own services' addresses, the images' folders.
COMPOSE_SETS = {
    "DATABASE_URL": "postgres://screening:{POSTGRES_PASSWORD}@postgres:5432/screening",
    "REDIS_URL": "redis://redis:6379/0",
    "MEDIA_STORAGE": "s3",
    "MEDIA_ROOT": "/data/media",
    "STATIC_ROOT": "/data/static",
    "VAR_DIR": "/data/var",
    "MODELS_DIR": "/data/models",
    "CELERY_DATA_DIR": "/data/var/celery",
}
# What an operator must fill in after `cp .env.example .env`.
REQUIRED = {
    "SECRET_KEY": "k" * 20 + "-production-secret-for-the-deploy-check-0123456789",
    "POSTGRES_PASSWORD": "pg-secret",
    "S3_SECRET_ACCESS_KEY": "s3-secret",
}


def _compose() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


needs_compose = pytest.mark.skipif(
    _compose() is None, reason="needs docker compose (./run test installs it)"
)


def env_example() -> dict[str, str]:
    """The variables .env.example sets (its lines NAME=value), as a copy of it sets them."""
    found = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found[match[1]] = match[2]
    return found


def settings_read() -> set[str]:
    """The variables screening/settings.py reads."""
    source = (ROOT / "screening" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|float|list|choice|rate)\("([A-Z_]+)"', source))


def compose_config(dotenv: dict[str, str], folder: Path, *, profiles=("gpu",)) -> dict:
    """The services of `docker compose config` with this .env (and these profiles: all of them
    unless told), in a folder of their own, with no variable of the shell's (./run test exports
    SECRET_KEY, DATABASE_URL...): as on a server."""
    import yaml

    folder.mkdir(parents=True)
    shutil.copy(ROOT / "docker-compose.yml", folder)
    shutil.copytree(ROOT / "deploy", folder / "deploy")
    (folder / ".env").write_text("".join(f"{name}={value}\n" for name, value in dotenv.items()))
    result = subprocess.run(
        [*_compose(), *(f"--profile={profile}" for profile in profiles), "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(folder))},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def app_services(services: dict) -> dict:
    return {n: s for n, s in services.items() if s.get("image", "").startswith(APP_IMAGES)}


def mounts(service: dict) -> dict[str, str]:
    """A service's mounts, target -> source (compose v1 prints "source:target:mode", v2 maps)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target = str(volume).split(":")[:2]
            found[target] = source
    return found


@needs_compose
def test_every_setting_in_env_example_reaches_every_service_that_reads_it(tmp_path):
    """Compose interpolates only the variables it names; the rest of .env reaches the app's
    services through env_file. Each variable set to a value of its own must show in each."""
    names = list(env_example())
    dotenv = {name: f"{name.lower()}-from-dotenv" for name in names}
    dotenv["WEB_PORT"] = "18123"
    services = compose_config(dotenv, tmp_path / "project")
    app = app_services(services)
    assert set(app) == APP_SERVICES
    read = settings_read() & set(names)
    assert len(read) > 60 and not set(COMPOSE_SETS) - read
    for name, service in app.items():
        env = service["environment"]
        for var in sorted(read):
            expected = COMPOSE_SETS[var].format(**dotenv) if var in COMPOSE_SETS else dotenv[var]
            assert env.get(var) == expected, (name, var)
    # the other services get what they read, and none of the app's secrets
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    assert services["s3"]["environment"] == {
        "AWS_ACCESS_KEY_ID": dotenv["S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": dotenv["S3_SECRET_ACCESS_KEY"],
    }
    assert services["proxy"]["environment"] == {
        "STAMP_MAX_BYTES": dotenv["STAMP_MAX_BYTES"],
        "BUNDLE_MAX_BYTES": dotenv["BUNDLE_MAX_BYTES"],
    }
    assert "18123" in str(services["proxy"]["ports"])
    for name in set(services) - set(app):
        assert "SECRET_KEY" not in (services[name].get("environment") or {}), name


@needs_compose
def test_a_copy_of_env_example_gives_a_web_behind_a_tls_proxy_that_passes_the_deploy_check(
    tmp_path,
):
    """.env.example and compose agree on BEHIND_TLS_PROXY=1 (with 0 in .env, SSL redirects behind
    a TLS proxy loop), and the settings the web gets from a copy of .env.example load and pass
    `check --deploy`."""
    example = {**env_example(), **REQUIRED}
    assert example["BEHIND_TLS_PROXY"] == "1"
    unset = {k: v for k, v in example.items() if k != "BEHIND_TLS_PROXY"}
    copied = compose_config(example, tmp_path / "copied")
    for services in (copied, compose_config(unset, tmp_path / "unset")):
        for name, service in app_services(services).items():
            assert service["environment"]["BEHIND_TLS_PROXY"] == "1", name
    web = {k: str(v) for k, v in copied["web"]["environment"].items()}
    assert web["S3_ENDPOINT_URL"] == "http://s3:8333" and web["S3_ACCESS_KEY_ID"] == "screening"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **web},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@needs_compose
def test_the_compose_file_is_valid_and_every_service_is_checked(tmp_path):
    services = compose_config({**env_example(), **REQUIRED}, tmp_path / "project")
    assert {"postgres", "redis", "s3", "proxy", *APP_SERVICES} <= set(services)
    unchecked = [name for name, service in services.items() if "healthcheck" not in service]
    assert not unchecked, f"services without a health check: {unchecked}"
    # media go to the object store: no service mounts a media volume, every app service waits
    for name, service in app_services(services).items():
        assert service["environment"]["MEDIA_STORAGE"] == "s3", name
        assert "s3" in service["depends_on"], name
        assert not any("media" in f"{s}:{t}" for t, s in mounts(service).items()), name
    # images from elsewhere are pinned to a version
    for name, service in services.items():
        if name not in APP_SERVICES:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image
    assert not services["s3"]["image"].startswith("minio/")
    # the public port is nginx's: gunicorn is reached only through it
    assert "ports" not in services["web"] and services["proxy"]["ports"]


@needs_compose
def test_the_gpu_worker_is_optional_a_compose_profile(tmp_path):
    """`docker compose up` works on a host without the NVIDIA runtime; `--profile gpu` adds it."""
    services = compose_config({**env_example(), **REQUIRED}, tmp_path / "gpu")
    assert services["gpu-worker"]["profiles"] == ["gpu"]
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    for name, service in services.items():
        if name != "gpu-worker":
            assert not service.get("profiles"), name  # everything else starts by default
            assert "gpu-worker" not in (service.get("depends_on") or {}), name
    # without the profile (compose v2 leaves the service out; v1 lists it with its profile)
    plain = compose_config({**env_example(), **REQUIRED}, tmp_path / "plain", profiles=())
    assert set(plain) - {"gpu-worker"} == set(services) - {"gpu-worker"}
    assert plain.get("gpu-worker", {"profiles": ["gpu"]})["profiles"] == ["gpu"]


@needs_compose
def test_web_and_beat_run_the_image_without_torch_and_the_workers_the_one_with_it(tmp_path):
    services = compose_config({**env_example(), **REQUIRED}, tmp_path / "project")
    targets = {name: s["build"]["target"] for name, s in app_services(services).items()}
    assert targets == {
        "web": "web",
        "beat": "web",
        "worker": "worker",
        "training-worker": "worker",
        "gpu-worker": "worker",
    }
    stages = dockerfile_stages()
    assert "[ml]" not in stage_chain(stages, "web")
    assert "-e '.[ml]'" in stage_chain(stages, "worker")
    for line in re.findall(r"pip install[^\n]*", (ROOT / "Dockerfile").read_text()):
        assert "--constraint constraints.txt" in line, line
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("torch")]
    assert {d.split(">")[0] for d in project["optional-dependencies"]["ml"]} == {
        "torch",
        "torchvision",
    }
    # ./run installs '.[test]': everything, the ml extra included
    assert "tracklet-screening[ml]" in project["optional-dependencies"]["test"]
    assert "-e '.[test]'" in (ROOT / "run").read_text()
    pinned = (ROOT / "constraints.txt").read_text()
    for package in ("django", "torch", "gunicorn", "celery", "numpy"):
        assert re.search(rf"(?im)^{package}==\S+$", pinned), package


@needs_compose
def test_retraining_can_write_its_candidates_to_the_models_volume(tmp_path):
    """MODELS_DIR is the `models` volume in every worker, and the image makes it (and VAR_DIR,
    where retraining keeps its evaluation sets) the app user's."""
    services = compose_config({**env_example(), **REQUIRED}, tmp_path / "project")
    for name, service in app_services(services).items():
        env = service["environment"]
        mounted = mounts(service)
        assert mounted.get(env["VAR_DIR"]) == "var", name
        if service["build"]["target"] == "worker":
            assert mounted.get(env["MODELS_DIR"]) == "models", name
        else:
            assert "models" not in mounted.values(), name  # the web never loads a checkpoint
    stages = dockerfile_stages()
    worker = stage_chain(stages, "worker")
    assert "MODELS_DIR=/data/models" in worker and "VAR_DIR=/data/var" in worker
    chown = re.search(r"chown app ([^\n]*)", stages["worker"][1])[1].split()
    assert {"/data/models", "/data/models/candidates", "/data/var"} <= set(chown)
    assert "USER app" in stages["worker"][1] and "USER app" in stages["web"][1]
    assert "VAR_DIR=/data/var" in stage_chain(stages, "web")


def dockerfile_stages() -> dict[str, tuple[str, str]]:
    """The Dockerfile's stages: name -> (the stage it is FROM, its text)."""
    stages = {}
    text = (ROOT / "Dockerfile").read_text()
    for block in re.split(r"(?m)^(?=FROM )", text)[1:]:
        base, name = re.match(r"FROM (\S+) AS (\S+)", block).groups()
        stages[name] = (base, block)
    return stages


def stage_chain(stages: dict[str, tuple[str, str]], name: str) -> str:
    """A stage's text with the texts of the stages it is built from."""
    texts = []
    while name in stages:
        name, text = stages[name]
        texts.append(text)
    return "\n".join(texts)


@pytest.mark.parametrize(
    ("stamp_max", "bundle_max"), [(None, None), (1024 * 1024, 10 * 1024**3), (4096, 2048)]
)
def test_the_proxy_refuses_bodies_only_over_the_apps_own_limits(settings, stamp_max, bundle_max):
    """nginx's client_max_body_size on each path is the request size the app accepts there
    (screening/ingest/limits.py), for the defaults and for other STAMP_MAX_BYTES and
    BUNDLE_MAX_BYTES in .env."""
    from screening.ingest.limits import BUNDLES_PATH, MULTIPART_OVERHEAD, TRACKLETS_PATH, _limits

    env = {"PATH": os.environ["PATH"]}
    if stamp_max is not None:
        env |= {"STAMP_MAX_BYTES": str(stamp_max), "BUNDLE_MAX_BYTES": str(bundle_max)}
        settings.STAMP_MAX_BYTES, settings.BUNDLE_MAX_BYTES = stamp_max, bundle_max
    else:
        assert (settings.STAMP_MAX_BYTES, settings.BUNDLE_MAX_BYTES) == (4194304, 8589934592)
    script = ROOT / "deploy" / "nginx" / "body-limits.envsh"
    assert os.access(script, os.X_OK)  # the nginx image sources only executable .envsh files
    shown = subprocess.run(
        ["sh", "-ec", f'. "{script}"; env'], env=env, capture_output=True, text=True, check=True
    ).stdout
    sizes = dict(line.split("=", 1) for line in shown.splitlines() if line.startswith("PROXY_"))
    assert int(sizes["PROXY_BODY_TRACKLET"]) == _limits(TRACKLETS_PATH, "POST").request_bytes
    assert int(sizes["PROXY_BODY_BUNDLE"]) == _limits(BUNDLES_PATH, "POST").request_bytes
    assert int(sizes["PROXY_BODY_DEFAULT"]) == (
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MULTIPART_OVERHEAD
    )
    template = (ROOT / "deploy" / "nginx" / "default.conf.template").read_text()
    for path, size in ((TRACKLETS_PATH, "TRACKLET"), (BUNDLES_PATH, "BUNDLE")):
        block = template[template.index(f"location = {path} {{") :]
        block = block[: block.index("\n    }")]
        assert f"client_max_body_size ${{PROXY_BODY_{size}}};" in block, path
    assert "client_max_body_size ${PROXY_BODY_DEFAULT};" in template
    assert "proxy_request_buffering on;" in template


@needs_compose
def test_compose_the_demo_and_the_tests_start_the_workers_from_one_definition(tmp_path):
    """Every worker is `python -m screening.ops.workers ROLE`: compose, ./run demo and the tests
    (tests/processes.py) read pool, queues and concurrency from screening/ops/workers.py."""
    from screening.ops.workers import ROLES

    services = compose_config({**env_example(), **REQUIRED}, tmp_path / "project")
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

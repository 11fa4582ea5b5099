"""Slow clients against the web service as docker compose runs it: gunicorn started with the
compose command (`gunicorn screening.wsgi`, gunicorn.conf.py) behind Debian's nginx with the
compose proxy's own configuration (deploy/nginx/, its body limits from body-limits.envsh).

160 form posts that send their headers and a few bytes of body, then stall, hold nginx
connections only: a health check and a page answer at once. (Sent to gunicorn directly they may
hold its threads, 4 workers x 4; how many workers they reach varies, so that is not asserted.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, _test_database_url
from tests.processes import stop_process

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SLOW_CLIENTS = 160  # enough that every one of the 4 gunicorn workers takes 4 or more


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing listens on {port} after {timeout} s: {log.read_text()[-2000:]}")


def _nginx_conf(folder: Path, listen: int, upstream: int) -> Path:
    """The compose proxy's server block, filled in as the nginx image's entrypoint does
    (body-limits.envsh, then envsubst), pointed at loopback ports, in a main config of its own."""
    names = "${PROXY_BODY_DEFAULT} ${PROXY_BODY_TRACKLET} ${PROXY_BODY_BUNDLE}"
    server = subprocess.run(
        ["sh", "-c", f". ./deploy/nginx/body-limits.envsh && envsubst '{names}' "
                     "< deploy/nginx/default.conf.template"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "server web:8000;" in server and "listen 80 default_server;" in server
    server = server.replace("server web:8000;", f"server 127.0.0.1:{upstream};")
    server = server.replace("listen 80 default_server;", f"listen 127.0.0.1:{listen};")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(parents=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log;\nevents {{ worker_connections 512; }}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n"
        f"{server}\n}}\n"
    )
    return conf


def _stall(port: int) -> list[socket.socket]:
    """Form posts that send headers and 100 of 200,000 bytes, then nothing. The login page's
    CSRF check reads the form (a well-formed csrftoken cookie, no header token), so a server
    that got one holds a thread on it, whoever the client is."""
    held = []
    cookie = "a" * 32
    for _ in range(SLOW_CLIENTS):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
            + f"Cookie: csrftoken={cookie}\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 200000\r\n\r\nusername=" + b"x" * 91
        )
        held.append(s)
    return held


def _answer_seconds(port: int, path: str, limit: float) -> float | None:
    """Seconds until `path` answers 200 (None: not within `limit`)."""
    start = time.monotonic()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=limit) as answer:
            assert answer.status == 200
    except (TimeoutError, OSError):
        return None
    return time.monotonic() - start


@pytest.mark.services
@pytest.mark.slow
def test_stalled_uploads_do_not_starve_the_web_service_behind_the_compose_proxy(
    transactional_db, media_root, tmp_path
):
    if NGINX is None:
        pytest.skip("needs Debian's nginx (./run test installs it)")
    if not _test_database_url().startswith("postgres"):
        pytest.skip("needs the PostgreSQL that ./run test starts")
    web_port, proxy_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "MEDIA_ROOT": str(media_root),
        "ALLOWED_HOSTS": "localhost",
        "DEBUG": "0",
        "BEHIND_TLS_PROXY": "0",
    }
    web_log = tmp_path / "gunicorn.log"
    # the compose web command's server (gunicorn.conf.py from the working directory), on loopback
    web = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "screening.wsgi",
         "--bind", f"127.0.0.1:{web_port}"],
        cwd=ROOT, env=env, stdout=web_log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    proxy_log = tmp_path / "nginx.log"
    proxy = subprocess.Popen(
        [NGINX, "-c", str(_nginx_conf(tmp_path / "nginx", proxy_port, web_port)), "-e",
         str(proxy_log)],
        stdout=proxy_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    held: list[socket.socket] = []
    try:
        _wait_port(web_port, web, web_log)
        _wait_port(proxy_port, proxy, proxy_log)
        assert _answer_seconds(proxy_port, "/healthz", 30) is not None  # warm
        assert _answer_seconds(web_port, "/healthz", 30) is not None

        held = _stall(proxy_port)
        time.sleep(1)
        through_proxy = _answer_seconds(proxy_port, "/healthz", 5)
        page = _answer_seconds(proxy_port, "/accounts/login/", 5)
        for s in held:
            s.close()
        held = []
        assert through_proxy is not None and through_proxy < 2, through_proxy
        assert page is not None and page < 3, page

    finally:
        for s in held:
            s.close()
        stop_process(proxy)
        stop_process(web)

"""/healthz and /metrics whatever the Host header names.

Health checks and Prometheus reach the web process by an internal name (`web:8000` inside docker
compose, `127.0.0.1:8000` from the container's own health check, a pod's address), which is not
in ALLOWED_HOSTS: the public name is. Django's CommonMiddleware would refuse them with a 400.
`ProbesMiddleware` comes before it and answers a GET or HEAD of these two paths itself, with the
same views; neither builds a URL from the Host, so answering any Host poisons nothing. Every
other path keeps Django's host check. /metrics still asks for METRICS_TOKEN when it is set.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

PROBE_PATHS = ("/healthz", "/metrics")


class ProbesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from screening.web import views

        self.get_response = get_response
        self.views = {"/healthz": views.healthz, "/metrics": views.metrics}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)

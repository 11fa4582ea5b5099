"""WSGI entry point for gunicorn and `manage.py runserver` (WSGI_APPLICATION)."""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")
application = get_wsgi_application()


def _freeze_loaded() -> None:
    """Load every view's modules now, then leave what loading made out of garbage collection.

    The views import NumPy, matplotlib and astropy: about 200,000 objects that live as long as
    the process. A full collection walked them all, about 90 ms, in the middle of whichever
    request crossed the collector's threshold (the queue page's p95 jumped from 30 to 80 ms in
    bench/queue_page.py). Frozen (`gc.freeze`), collections walk only what requests make."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()


_freeze_loaded()

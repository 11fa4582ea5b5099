"""The screening web app: Django project and app in one package."""

from __future__ import annotations

from screening.celery import app as celery_app

__all__ = ("celery_app",)

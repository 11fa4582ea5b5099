from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ScreeningConfig(AppConfig):
    name = "screening"
    verbose_name = "Tracklet screening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import screening.lookups  # noqa: F401 - registers `__any_of`
        from screening.ops.setup_data import setup_data_ensure

        post_migrate.connect(setup_data_ensure, sender=self)

"""The authentication backend (settings.AUTHENTICATION_BACKENDS)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from screening.ops.roles import roles_and_permissions_load


class RolesBackend(ModelBackend):
    """Django's ModelBackend, with a user's groups and permissions read in one query a request
    instead of three (the pages' role check, the user's own permissions, their groups')."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache") and not user_obj.is_superuser:
            if not hasattr(user_obj, "_roles_permissions"):
                roles_and_permissions_load(user_obj)
            user_obj._perm_cache = user_obj._roles_permissions
        return super().get_all_permissions(user_obj, obj)

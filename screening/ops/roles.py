"""The roles (Django groups) and their permissions, made sure of after every migrate."""

from __future__ import annotations

REVIEWER = "reviewer"
ADMIN = "admin"
PIPELINE = "pipeline"
CONSUMER = "consumer"  # read-only tokens for scientists taking the labels out

_VIEW = [
    "night",
    "tracklet",
    "detection",
    "stampclass",
    "modelversion",
    "stampprediction",
    "trackletscore",
    "verdict",
    "stamplabel",
    "trainingrun",
    "bundleupload",
    "modelactivation",
    "mpcreport",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: [f"view_{m}" for m in _VIEW] + ["add_verdict", "add_stamplabel"],
    PIPELINE: [
        "view_night",
        "view_tracklet",
        "view_detection",
        "add_tracklet",
        "add_bundleupload",
        "view_bundleupload",
    ],
    CONSUMER: [
        "view_night",
        "view_tracklet",
        "view_detection",
        "view_stampclass",
        "view_modelversion",
        "view_verdict",
        "view_stamplabel",
    ],
    ADMIN: ["*"],
}


def roles_ensure() -> None:
    """Create the role groups and give them their permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    screening = Permission.objects.filter(content_type__app_label="screening")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        if codenames == ["*"]:
            admin_perms = Permission.objects.filter(
                content_type__app_label__in=["screening", "auth", "authtoken"]
            )
            group.permissions.set(admin_perms)
        else:
            group.permissions.set(screening.filter(codename__in=codenames))


# The web pages (queue, tracklet, summary, models) are for reviewers and admins; pipeline and
# consumer accounts work through the API.
PAGE_ROLES = (REVIEWER, ADMIN)


def page_access(user) -> bool:
    """Whether a logged-in user may open the screening pages."""
    if not user.is_active:
        return False
    return bool(user.is_superuser or user_roles(user) & set(PAGE_ROLES))


def user_roles(user) -> set[str]:
    """The names of the user's roles (groups), read with their permissions (RolesBackend)."""
    if not hasattr(user, "_roles_cache"):
        roles_and_permissions_load(user)
    return user._roles_cache


def roles_and_permissions_load(user) -> None:
    """The user's groups and every permission they hold (their own and their groups'), in one
    query, cached on the user object for the request as ModelBackend caches permissions
    (`screening.ops.backends.RolesBackend` reads them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    quote = connection.ops.quote_name
    user_model = get_user_model()
    member = quote(user_model.groups.through._meta.db_table)
    own = quote(user_model.user_permissions.through._meta.db_table)
    granted = quote(Group.permissions.through._meta.db_table)
    group, permission = quote(Group._meta.db_table), quote(Permission._meta.db_table)
    kinds = quote(ContentType._meta.db_table)
    sql = (
        f"SELECT g.name, NULL, NULL FROM {group} g JOIN {member} m ON m.group_id = g.id "  # noqa: S608 - table names only
        "WHERE m.user_id = %s "
        f"UNION ALL SELECT NULL, c.app_label, p.codename FROM {permission} p "
        f"JOIN {kinds} c ON c.id = p.content_type_id JOIN {own} o ON o.permission_id = p.id "
        "WHERE o.user_id = %s "
        f"UNION ALL SELECT NULL, c.app_label, p.codename FROM {permission} p "
        f"JOIN {kinds} c ON c.id = p.content_type_id JOIN {granted} gp ON gp.permission_id = p.id "
        f"JOIN {member} m ON m.group_id = gp.group_id WHERE m.user_id = %s"
    )
    roles, permissions = set(), set()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk] * 3)
        for name, app, codename in cursor.fetchall():
            if name is not None:
                roles.add(name)
            else:
                permissions.add(f"{app}.{codename}")
    user._roles_cache = roles
    user._roles_permissions = permissions


def pages_for_reviewers(view):
    """Page decorator: log in first; then only reviewers and admins (403 for other roles)."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login
    from django.core.exceptions import PermissionDenied

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not page_access(request.user):
            raise PermissionDenied(
                "These pages are for reviewers and admins; this account's role works through "
                "the API (/api/v1/docs/)."
            )
        return view(request, *args, **kwargs)

    return wrapped

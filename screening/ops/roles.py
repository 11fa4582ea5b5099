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
    return bool(
        user.is_active and (user.is_superuser or user.groups.filter(name__in=PAGE_ROLES).exists())
    )


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

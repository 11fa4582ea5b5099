"""API errors as JSON: DRF's handler, plus the request-size refusals Django raises while the
body is read (413 for a too large form, 400 for too many fields or files) instead of Django's
HTML error page; renderers of other media types (CSV, PNG) answer errors in JSON too."""

from __future__ import annotations

import json

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "the request's form fields are too large (stamps go as file fields)"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class JSONErrorsRenderer(BaseRenderer):
    """A renderer whose successful answers the view streams itself (CSV rows, a PNG); the only
    data it renders are errors, which it writes as JSON with an application/json content type."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        if data is None:
            return b""
        return json.dumps(data).encode()


@extend_schema(exclude=True)
@api_view(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([])
@throttle_classes([])
def api_not_found(request, *args, **kwargs):
    """Any path under the API that names no operation (or a malformed id): a JSON 404."""
    raise NotFound(f"no API operation at {request.path}")

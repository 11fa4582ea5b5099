"""API errors as JSON: DRF's handler, plus the request-size refusals Django raises while the
body is read (413 for a too large form, 400 for too many fields or files) instead of Django's
HTML error page; renderers of other media types (CSV, PNG) answer errors in JSON too."""

from __future__ import annotations

import json

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
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


class _JSONWhateverAsked(BaseContentNegotiation):
    """A path that is not there is a 404 in JSON, whatever `?format=` or Accept asked for (the
    operation it resembles might have taken `?format=png`; this one takes nothing)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _NotFound(APIView):
    permission_classes: list = []
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONWhateverAsked

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound(f"no API operation at {request.path}")

    def options(self, request, *args, **kwargs):  # not the metadata answer: it is not there
        raise NotFound(f"no API operation at {request.path}")


# Any path under the API that names no operation (or a malformed id): a JSON 404.
api_not_found = extend_schema(exclude=True)(_NotFound).as_view()

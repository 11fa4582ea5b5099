"""A detection's display PNG for token clients (the page view `/stamps/<pk>.png` needs a
session login): `GET /api/v1/detections/{id}/display.png`, any login, like reading a tracklet."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from screening.api.errors import JSONErrorsRenderer
from screening.api.filters import FormatNegotiation
from screening.api.schema import detail
from screening.models import Detection
from screening.web.views import stamp_display_response


class PNGRenderer(JSONErrorsRenderer):
    """Lets `Accept: image/png` through content negotiation; errors are answered in JSON."""

    media_type = "image/png"
    format = "png"


class DetectionDisplay(generics.GenericAPIView):
    """The display PNG of one detection's stamp (what the review pages show)."""

    queryset = Detection.objects.all()
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer, PNGRenderer]
    content_negotiation_class = FormatNegotiation  # ?format= json or png; else a 400
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The PNG."),
            404: detail("No such detection (or its image is missing)."),
        },
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        detection = self.get_object()
        try:
            return stamp_display_response(detection)
        except (FileNotFoundError, ValueError):
            raise NotFound(f"detection {pk} has no display image") from None

"""MPC report endpoints: build a night's ADES report, read it as PSV or XML, send it."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from screening.api.errors import JSONErrorsRenderer
from screening.api.filters import NightField
from screening.api.schema import bad_request, detail
from screening.models import MpcReport, Night
from screening.reports.ades import AdesError, report_build, report_send


class MpcReportSerializer(serializers.ModelSerializer):
    night = serializers.DateField(source="night.date")
    created_by = serializers.CharField(source="created_by.username", default=None)
    psv_url = serializers.SerializerMethodField()
    xml_url = serializers.SerializerMethodField()

    class Meta:
        model = MpcReport
        fields = [
            "id",
            "night",
            "status",
            "content_sha256",
            "n_tracklets",
            "n_observations",
            "auto_accepted",
            "first_detection_mjd",
            "latency_seconds",
            "created_by",
            "created_at",
            "sent_at",
            "send_log",
            "psv_url",
            "xml_url",
        ]

    def get_psv_url(self, report: MpcReport) -> str:
        return reverse("mpcreport-psv", args=[report.pk])

    def get_xml_url(self, report: MpcReport) -> str:
        return reverse("mpcreport-xml", args=[report.pk])


class ReportCreateSerializer(serializers.Serializer):
    night = NightField(help_text="The night to report (YYYY-MM-DD).")


class PlainTextRenderer(JSONErrorsRenderer):
    """Declares text/plain; the view answers the PSV itself, errors are JSON."""

    media_type = "text/plain"
    format = "psv"


class XMLRenderer(JSONErrorsRenderer):
    """Declares application/xml; the view answers the XML itself, errors are JSON."""

    media_type = "application/xml"
    format = "xml"


class CanReport(permissions.BasePermission):
    """Reading needs the view permission; making a report add, sending it change."""

    def has_permission(self, request: Request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return request.user.has_perm("screening.view_mpcreport")
        if getattr(view, "action", "") == "send":
            return request.user.has_perm("screening.change_mpcreport")
        return request.user.has_perm("screening.add_mpcreport")


class MpcReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A night's ADES reports to the MPC: list, read, make one, get its PSV or XML, send it."""

    queryset = MpcReport.objects.select_related("night", "created_by").order_by("-created_at")
    serializer_class = MpcReportSerializer
    permission_classes = [permissions.IsAuthenticated, CanReport]

    @extend_schema(
        request=ReportCreateSerializer,
        responses={
            201: OpenApiResponse(MpcReportSerializer, description="Made and validated."),
            200: OpenApiResponse(
                MpcReportSerializer, description="Nothing new: the latest report, unchanged."
            ),
            400: bad_request(description="A field the MPC cannot take, or nothing to report."),
            404: detail("No such night."),
        },
    )
    def create(self, request: Request) -> Response:
        form = ReportCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        night = get_object_or_404(Night, date=form.validated_data["night"])
        try:
            result = report_build(night=night, user=request.user)
        except AdesError as exc:
            return Response({"detail": str(exc)}, status=400)
        if result.report is None:
            return Response(
                {"detail": f"nothing to report: no tracklet of {night.date} is judged real"},
                status=400,
            )
        return Response(
            MpcReportSerializer(result.report).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(responses={(200, "text/plain"): str})
    @action(detail=True, renderer_classes=[PlainTextRenderer], url_path="psv")
    def psv(self, request: Request, pk: str) -> Response:
        """The report as ADES PSV."""
        return HttpResponse(self.get_object().psv, content_type="text/plain; charset=utf-8")

    @extend_schema(responses={(200, "application/xml"): str})
    @action(detail=True, renderer_classes=[XMLRenderer], url_path="xml")
    def xml(self, request: Request, pk: str) -> Response:
        """The report as ADES XML (what is sent)."""
        return HttpResponse(self.get_object().xml, content_type="application/xml")

    @extend_schema(
        request=None,
        responses={200: MpcReportSerializer, 400: bad_request(description="Not valid.")},
    )
    @action(detail=True, methods=["post"])
    def send(self, request: Request, pk: str) -> Response:
        """Send with the configured sender (a dry run by default)."""
        try:
            report = report_send(report=self.get_object())
        except AdesError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(MpcReportSerializer(report).data)

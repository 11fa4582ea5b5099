"""Label export endpoints: verdicts and stamp labels as JSON pages or one streamed CSV.

`GET /api/export/verdicts/` and `GET /api/export/labels/`, token or session authentication;
`?format=csv` (or `Accept: text/csv`) streams every matching row as CSV; otherwise JSON pages of
up to `page_size` rows (default 1000, at most 10000; outside that range: 400) with
`next`/`previous` cursor links; any other `format`: 400. Text cells a spreadsheet would read as
a formula are quoted (`screening.reports.label_export`).
Filters: `night`, `since`/`until` (ISO date-time of the label), `reviewer` (username),
`model_version` (the version shown to the reviewer); `verdict` for verdicts, `stamp_class` for
labels. Readers need the view permission of the model (reviewers, admins and the read-only
`consumer` role have it).
"""

from __future__ import annotations

from django.db.models import Q
from django.http import StreamingHttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request

from screening.api.errors import JSONErrorsRenderer
from screening.api.filters import (
    EnumFilter,
    FormatNegotiation,
    NightFilter,
    UTCIsoDateTimeFilter,
)
from screening.api.pagination import BoundedCursorPagination
from screening.models import StampLabel, Verdict
from screening.reports.label_export import LABEL_COLUMNS, VERDICT_COLUMNS, csv_chunks, row_dicts
from screening.review.blind import blind_q


class CSVRenderer(JSONErrorsRenderer):
    """Declares text/csv for content negotiation; the views stream the rows themselves, and
    errors (400, 401, 403, 404, 429) are answered in JSON."""

    media_type = "text/csv"
    format = "csv"


class ExportPagination(BoundedCursorPagination):
    ordering = "id"
    page_size = 1000
    max_page_size = 10000


class CanView(permissions.BasePermission):
    """A reader holding the view permission of the exported model."""

    def has_permission(self, request: Request, view) -> bool:
        model = view.queryset.model
        return request.user.has_perm(f"screening.view_{model._meta.model_name}")


class _LabelFilter(filters.FilterSet):
    since = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    reviewer = filters.CharFilter(field_name="reviewer__username")
    model_version = filters.CharFilter(field_name="model_version_shown__version")


class VerdictExportFilter(_LabelFilter):
    night = NightFilter(field_name="tracklet__night__date")
    verdict = EnumFilter(field_name="value", choices=Verdict.Value.choices)

    class Meta:
        model = Verdict
        fields = ["night", "since", "until", "reviewer", "model_version", "verdict"]


class StampLabelExportFilter(_LabelFilter):
    night = NightFilter(field_name="detection__tracklet__night__date")
    stamp_class = filters.CharFilter(field_name="stamp_class__name")

    class Meta:
        model = StampLabel
        fields = ["night", "since", "until", "reviewer", "model_version", "stamp_class"]


class VerdictRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    night = serializers.DateField()
    tracklet = serializers.CharField(help_text="The survey's tracklet id.")
    tracklet_id = serializers.IntegerField()
    tracklet_digest2_neo = serializers.FloatField(
        allow_null=True, help_text="digest2's NEO score of the tracklet (null: none)."
    )
    reviewer = serializers.CharField()
    verdict = serializers.ChoiceField(choices=Verdict.Value.choices)
    score_shown = serializers.FloatField(allow_null=True, help_text="Null when blind.")
    model_version_shown = serializers.CharField(allow_null=True)
    blind = serializers.BooleanField(help_text="The row was blind: no score was shown.")
    created_at = serializers.DateTimeField()


class StampLabelRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    night = serializers.DateField()
    tracklet = serializers.CharField(help_text="The survey's tracklet id.")
    tracklet_id = serializers.IntegerField()
    detection_index = serializers.IntegerField()
    detection_id = serializers.IntegerField()
    reviewer = serializers.CharField()
    stamp_class = serializers.CharField()
    class_is_real = serializers.BooleanField()
    class_shown = serializers.CharField(allow_blank=True)
    probability_shown = serializers.FloatField(allow_null=True)
    model_version_shown = serializers.CharField(allow_null=True)
    blind = serializers.BooleanField(help_text="The stamp was shown blind: no class shown.")
    created_at = serializers.DateTimeField()


FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="`csv`: every matching row, streamed as text/csv (also `Accept: text/csv`); "
    "`json` or empty: JSON cursor pages. Any other value: 400.",
    allow_blank=True,
)


@extend_schema(parameters=[FORMAT])
class _Export(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated, CanView]
    pagination_class = ExportPagination
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    content_negotiation_class = FormatNegotiation
    columns: dict = {}
    filename = ""

    tracklet_path = "tracklet__"  # how a row reaches its tracklet

    def get_queryset(self):
        """Not, for a reviewer who screens blind, others' labels on the rows still blind for
        them (second screening, gold): others' opinions are hidden until their own verdict."""
        queryset = super().get_queryset()
        blind = blind_q(self.request.user, self.tracklet_path)
        if blind is not None:
            queryset = queryset.exclude(blind & ~Q(reviewer=self.request.user))
        return queryset

    def list(self, request: Request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        self.paginator.get_page_size(request)  # a bad page_size is a 400 in either form
        if request.accepted_renderer.format == "csv":
            response = StreamingHttpResponse(
                csv_chunks(queryset, self.columns), content_type="text/csv"
            )
            response["Content-Disposition"] = f'attachment; filename="{self.filename}"'
            return response
        page = self.paginate_queryset(queryset)
        data = row_dicts(queryset.model.objects.filter(pk__in=[r.pk for r in page]), self.columns)
        return self.get_paginated_response(self.get_serializer(data, many=True).data)


class VerdictExport(_Export):
    """Every verdict (full history, undo rows included) with the score and model shown."""

    queryset = Verdict.objects.all()
    serializer_class = VerdictRowSerializer
    filterset_class = VerdictExportFilter
    columns = VERDICT_COLUMNS
    filename = "verdicts.csv"


class StampLabelExport(_Export):
    """Every stamp label (full history) with the class and model shown to the reviewer."""

    queryset = StampLabel.objects.all()
    tracklet_path = "detection__tracklet__"
    serializer_class = StampLabelRowSerializer
    filterset_class = StampLabelExportFilter
    columns = LABEL_COLUMNS
    filename = "stamp-labels.csv"


class _CsvExport:
    """The same rows as one CSV stream, an operation of its own (`verdicts.csv`, `labels.csv`):
    a client generated from the schema gets text here and JSON pages from the list."""

    renderer_classes = [CSVRenderer]
    pagination_class = None

    def list(self, request: Request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(
            csv_chunks(queryset, self.columns), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="{self.filename}"'
        return response


@extend_schema_view(
    get=extend_schema(
        operation_id="export_verdicts_csv",
        parameters=[OpenApiParameter("format", exclude=True)],
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
)
class VerdictCsvExport(_CsvExport, VerdictExport):
    """Every verdict as CSV (the columns of the JSON rows), streamed."""


@extend_schema_view(
    get=extend_schema(
        operation_id="export_labels_csv",
        parameters=[OpenApiParameter("format", exclude=True)],
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
)
class StampLabelCsvExport(_CsvExport, StampLabelExport):
    """Every stamp label as CSV (the columns of the JSON rows), streamed."""

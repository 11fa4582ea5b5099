"""Audit, reviewer-queue and reviewer-quality endpoints."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from screening.api.filters import query_choice
from screening.api.schema import detail
from screening.models import ModelVersion, QueueAssignment
from screening.nights import night_or_404
from screening.reports.ades import night_latency
from screening.reports.reviewer_quality import reviewer_quality
from screening.review.audit import AUDIT_STATUSES, model_estimates, night_estimates
from screening.review.queue import (
    ORDERS,
    CursorError,
    QueueFilters,
    claims_take,
    cursor_of,
    queue_page,
    queue_rows,
    queue_tracklets,
)


class HasPerm(permissions.BasePermission):
    """The user holds the view's `required_permission`."""

    def has_permission(self, request: Request, view) -> bool:
        return request.user.has_perm(view.required_permission)


class AuditEstimateSerializer(serializers.Serializer):
    rejected = serializers.IntegerField(help_text="Tracklets auto-rejected (the population).")
    drawn = serializers.IntegerField(help_text="Audit rows drawn from them.")
    judged = serializers.IntegerField(help_text="Audit rows with a verdict.")
    real = serializers.IntegerField(help_text="Of which judged real.")
    rate = serializers.FloatField(allow_null=True, help_text="real / judged.")
    low = serializers.FloatField(help_text="Lower bound of the exact binomial interval.")
    high = serializers.FloatField(help_text="Upper bound: what the alarm watches.")
    lost = serializers.FloatField(allow_null=True, help_text="rate x rejected.")
    lost_high = serializers.FloatField(help_text="high x rejected.")
    confidence = serializers.FloatField()
    target = serializers.FloatField(help_text="AUDIT_TARGET_LOSS.")
    needed = serializers.IntegerField(help_text="Judged audits needed, none real, for ok.")
    status = serializers.ChoiceField(choices=AUDIT_STATUSES)


class ModelAuditSerializer(AuditEstimateSerializer):
    model_version = serializers.CharField()
    is_active = serializers.BooleanField()


class NightAuditSerializer(serializers.Serializer):
    night = serializers.DateField()
    alarm = serializers.BooleanField(help_text="True when any model's estimate is in alarm.")
    models = ModelAuditSerializer(many=True)
    reports = serializers.IntegerField()
    report_latency_seconds = serializers.FloatField(
        allow_null=True, help_text="From the first detection to the first valid MPC report."
    )


class NightAudit(generics.GenericAPIView):
    """A night's audit of auto-rejection: the lost-real estimate per model, and the alarm."""

    serializer_class = NightAuditSerializer
    permission_classes = [permissions.IsAuthenticated, HasPerm]
    pagination_class = None
    filter_backends: list = []
    required_permission = "screening.view_tracklet"

    @extend_schema(responses={200: NightAuditSerializer, 404: detail("No such night.")})
    def get(self, request: Request, date: str) -> Response:
        night = night_or_404(date)
        rows = [
            {
                "model_version": model.version,
                "is_active": model.is_active,
                **estimate.as_dict(),
            }
            for model, estimate in night_estimates(night)
        ]
        latency = night_latency(night)
        body = {
            "night": night.date,
            "alarm": any(r["status"] == "alarm" for r in rows),
            "models": rows,
            "reports": latency["reports"],
            "report_latency_seconds": latency["latency_seconds"],
        }
        return Response(NightAuditSerializer(body).data)


class ModelAuditBodySerializer(serializers.Serializer):
    model_version = serializers.CharField()
    alarm = serializers.BooleanField()
    overall = AuditEstimateSerializer()
    window = AuditEstimateSerializer()
    window_nights = serializers.IntegerField()


class ModelAudit(generics.GenericAPIView):
    """A model's audit over all its nights and over the rolling window."""

    serializer_class = ModelAuditBodySerializer
    permission_classes = [permissions.IsAuthenticated, HasPerm]
    pagination_class = None
    filter_backends: list = []
    required_permission = "screening.view_modelversion"

    @extend_schema(responses={200: ModelAuditBodySerializer, 404: detail("No such model.")})
    def get(self, request: Request, version: str) -> Response:
        model = get_object_or_404(ModelVersion, version=version)
        result = model_estimates(model)
        body = {
            "model_version": model.version,
            "alarm": "alarm" in (result["overall"].status, result["window"].status),
            "overall": result["overall"].as_dict(),
            "window": result["window"].as_dict(),
            "window_nights": result["window_nights"],
        }
        return Response(ModelAuditBodySerializer(body).data)


class QueueStampSerializer(serializers.Serializer):
    detection = serializers.IntegerField()
    index = serializers.IntegerField()
    image = serializers.CharField(help_text="The display PNG's URL.")
    top_class = serializers.CharField(allow_blank=True, help_text="Empty while blind.")
    top_probability = serializers.FloatField(allow_null=True)


class QueueRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tracklet = serializers.CharField()
    score = serializers.FloatField(allow_null=True, help_text="Null while blind.")
    status = serializers.CharField(help_text='"to review" for every blind row.')
    my_verdict = serializers.CharField(allow_null=True)
    rate_deg_per_day = serializers.FloatField()
    position_angle_deg = serializers.FloatField()
    mean_mag = serializers.FloatField(allow_null=True)
    n_detections = serializers.IntegerField()
    stamps = QueueStampSerializer(many=True)


class QueuePageSerializer(serializers.Serializer):
    night = serializers.DateField()
    page = serializers.IntegerField()
    has_next = serializers.BooleanField()
    next = serializers.CharField(
        allow_null=True, help_text="Pass as `after` for the rows after this page's last."
    )
    blind = serializers.BooleanField()
    rows = QueueRowSerializer(many=True)


CLAIM_VALUES = ("true", "false")  # a boolean in the schema


class ReviewerQueue(generics.GenericAPIView):
    """The caller's to-review queue of a night, as the queue page shows it (blind rows: no
    score, class or status until the caller's verdict)."""

    serializer_class = QueuePageSerializer
    permission_classes = [permissions.IsAuthenticated, HasPerm]
    pagination_class = None
    filter_backends: list = []
    required_permission = "screening.add_verdict"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "order",
                str,
                enum=list(ORDERS),
                description="Queue order (default `desc`); any other value: 400.",
            ),
            OpenApiParameter("page", int, description="Page, from 1 (50 rows a page)."),
            OpenApiParameter(
                "claim",
                bool,
                description="Claim the page's rows for you (as the queue page does, for "
                "5 minutes) and leave out rows other reviewers hold: several scripted "
                "reviewers on one night then get different rows. `true` or `false` (default); "
                "any other value: 400.",
            ),
            OpenApiParameter(
                "after",
                str,
                description="The `next` of the page before: the rows after its last, whatever "
                "was judged meanwhile (stable paging; prefer it to `page`).",
            ),
        ],
        responses={200: QueuePageSerializer, 404: detail("No such night.")},
    )
    def get(self, request: Request, date: str) -> Response:
        order = query_choice(request, "order", tuple(ORDERS), default="desc")
        claim = query_choice(request, "claim", CLAIM_VALUES, default="false") == "true"
        night = night_or_404(date)
        filters = QueueFilters.from_query({"order": order})
        after = request.query_params.get("after", "")
        try:
            number = max(1, min(100_000, int(request.query_params.get("page", 1))))
        except ValueError:
            return Response({"page": ["page must be an integer"]}, status=400)
        tracklets = queue_tracklets(
            night=night, reviewer=request.user, filters=filters, claims=claim
        )
        try:
            if after:
                page = queue_page(tracklets, filters=filters, size=50, after=after, number=number)
            else:  # by number: rows judged meanwhile move the later pages (use `after`)
                rows_before = (number - 1) * 50
                first = list(tracklets[max(0, rows_before - 1) : rows_before]) if number > 1 else []
                page = queue_page(
                    tracklets,
                    filters=filters,
                    size=50,
                    after=cursor_of(first[0], filters) if first else "",
                    number=number,
                )
        except CursorError as exc:
            return Response({"after": [str(exc)]}, status=400)
        if claim:
            claims_take(reviewer=request.user, tracklet_ids=[t.pk for t in page.tracklets])
        rows = []
        for row in queue_rows(page.tracklets, reviewer=request.user):
            t = row.tracklet
            rows.append(
                {
                    "id": t.pk,
                    "tracklet": t.survey_id,
                    "score": None if row.blind else t.score,
                    "status": "to review"
                    if row.blind
                    else ("auto-rejected" if row.auto_rejected else t.status),
                    "my_verdict": row.my_verdict,
                    "rate_deg_per_day": t.rate_deg_per_day,
                    "position_angle_deg": t.position_angle_deg,
                    "mean_mag": t.mean_mag,
                    "n_detections": t.n_detections,
                    "stamps": [
                        {
                            "detection": s.detection.pk,
                            "index": s.detection.index,
                            "image": reverse("api-detection-display", args=[s.detection.pk]),
                            "top_class": s.top_class,
                            "top_probability": s.top_probability,
                        }
                        for s in row.stamps
                    ],
                }
            )
        body = {
            "night": night.date,
            "page": page.number,
            "has_next": page.has_next,
            "next": page.next_cursor,
            "blind": filters.blind,
            "rows": rows,
        }
        return Response(QueuePageSerializer(body).data)


class ReviewerQualitySerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    verdicts = serializers.IntegerField()
    gold_judged = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    gold_accuracy_low = serializers.FloatField(allow_null=True)
    shared = serializers.IntegerField(help_text="Tracklets also judged by another reviewer.")
    kappa = serializers.FloatField(allow_null=True, help_text="Cohen's kappa with the others.")
    verdicts_per_hour = serializers.FloatField(allow_null=True)


class ReviewerQuality(generics.GenericAPIView):
    """Each reviewer's accuracy on gold, agreement with others (kappa) and pace (admins)."""

    serializer_class = ReviewerQualitySerializer
    queryset = QueueAssignment.objects.none()
    permission_classes = [permissions.IsAuthenticated, HasPerm]
    pagination_class = None
    filter_backends: list = []
    required_permission = "screening.view_queueassignment"

    @extend_schema(responses={200: ReviewerQualitySerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = [q.as_dict() for q in reviewer_quality()]
        return Response(ReviewerQualitySerializer(rows, many=True).data)

"""REST API views: parse the request, call one service, serialise the result."""

from __future__ import annotations

from django.conf import settings
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Prefetch, Q, When
from django.db.models.functions import Coalesce
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from screening.api.filters import EnumFilter, NightFilter, UTCIsoDateTimeFilter
from screening.api.schema import (
    TRACKLET_UPLOAD_REQUEST,
    IngestErrorSerializer,
    bad_request,
    detail,
    too_large,
)
from screening.api.serializers import (
    BundleUploadCreateSerializer,
    BundleUploadListSerializer,
    BundleUploadSerializer,
    NightSerializer,
    StampLabelInputSerializer,
    StampLabelSerializer,
    TrackletDetailSerializer,
    TrackletSerializer,
    TrackletUploadSerializer,
    VerdictInputSerializer,
    VerdictSerializer,
)
from screening.ingest.tracklets import IngestRejected, StampSource, TrackletInput, tracklet_ingest
from screening.ingest.uploads import bundle_upload_create
from screening.models import BundleChunk, BundleUpload, Detection, Night, Tracklet
from screening.review.blind import blind_q
from screening.review.verdicts import ReviewError, stamp_label_record, verdict_record


class CanIngest(permissions.BasePermission):
    """Reading needs a login; sending tracklets or bundles needs the add-tracklet permission."""

    allows_reading = True  # for the schema: no 403 on reads

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return request.user.has_perm("screening.add_tracklet")


class TrackletFilter(filters.FilterSet):
    """For a reviewer who screens blind, the rows of their to-review queue are filtered by what
    they show: no status, no score (a blind row's place in the queue stands for it)."""

    night = NightFilter(field_name="night__date")
    tracklet = filters.CharFilter(field_name="survey_id")
    status = EnumFilter(choices=Tracklet.Status.choices, method="filter_status")
    score_min = filters.NumberFilter(method="filter_score", lookup_expr="gte")
    score_max = filters.NumberFilter(method="filter_score", lookup_expr="lte")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    neo_candidate = EnumFilter(
        choices=[("true", "digest2's NEO score at least DIGEST2_NEO_CANDIDATE"),
                 ("false", "below it, or no digest2 score")],
        method="filter_neo_candidate",
    )  # fmt: skip
    unlike_training = EnumFilter(
        choices=[("true", "unlike the model's training data (never auto-rejected)"),
                 ("false", "like it, or not scored")],
        method="filter_unlike_training",
    )  # fmt: skip
    not_moving = EnumFilter(
        choices=[("true", "capped below the threshold as a source that does not move"),
                 ("false", "not capped by the motion rule, or not scored")],
        method="filter_not_moving",
    )  # fmt: skip
    ordering = EnumFilter(
        choices=[("id", "by id"), ("-digest2_neo", "NEO candidates first (digest2, highest "
                 "first, unscored last)")],
        method="filter_ordering",
    )  # fmt: skip

    class Meta:
        model = Tracklet
        fields = ["night", "tracklet", "status", "score_min", "score_max", "created_after",
                  "neo_candidate", "unlike_training", "not_moving", "ordering"]  # fmt: skip

    def filter_unlike_training(self, queryset, name, value):
        unlike = ~Q(unlike_training="")
        return queryset.filter(unlike) if value == "true" else queryset.exclude(unlike)

    def filter_not_moving(self, queryset, name, value):
        still = ~Q(not_moving="")
        return queryset.filter(still) if value == "true" else queryset.exclude(still)

    def filter_neo_candidate(self, queryset, name, value):
        candidate = Q(digest2_neo__gte=settings.DIGEST2_NEO_CANDIDATE)
        return queryset.filter(candidate) if value == "true" else queryset.exclude(candidate)

    def filter_ordering(self, queryset, name, value):
        if value == "-digest2_neo":
            return queryset.order_by(F("digest2_neo").desc(nulls_last=True), "id")
        return queryset.order_by("id")

    def _blind(self):
        return blind_q(self.request.user) if self.request is not None else None

    def filter_status(self, queryset, name, value):
        queryset = queryset.filter(status=value)
        blind = self._blind()
        return queryset.exclude(blind) if blind is not None else queryset

    def filter_score(self, queryset, name, value):
        lookup = self.filters[name].lookup_expr
        if self._blind() is None:
            return queryset.filter(**{f"score__{lookup}": value})
        shown = Case(
            When(is_blind=True, then=Coalesce(F("queue_score"), F("score"))), default=F("score")
        )
        return queryset.alias(shown_score=shown).filter(**{f"shown_score__{lookup}": value})


class TrackletViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tracklets: list with filters, read one with its detections, send one as multipart."""

    queryset = Tracklet.objects.select_related("night", "model_version").order_by("id")
    filterset_class = TrackletFilter
    parser_classes = [MultiPartParser]
    permission_classes = [permissions.IsAuthenticated, CanIngest]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return TrackletDetailSerializer
        if self.action == "create":
            return TrackletUploadSerializer
        return TrackletSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        blind = blind_q(self.request.user)
        if blind is not None:
            queryset = queryset.annotate(
                is_blind=ExpressionWrapper(blind, output_field=BooleanField())
            )
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("detections")
        return queryset

    @extend_schema(
        request=TRACKLET_UPLOAD_REQUEST,
        responses={
            201: OpenApiResponse(TrackletDetailSerializer, description="Stored."),
            200: OpenApiResponse(
                TrackletDetailSerializer, description="Sent before, identical: nothing changed."
            ),
            400: bad_request(IngestErrorSerializer, description="Invalid metadata or stamps."),
            409: OpenApiResponse(
                IngestErrorSerializer, description="Conflicts with the stored tracklet."
            ),
            413: too_large(),
        },
    )
    def create(self, request: Request) -> Response:
        upload = TrackletUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        metadata = upload.validated_data["metadata"]
        several = [name for name, files in request.FILES.lists() if len(files) > 1]
        if several:
            return Response({"detail": f"file field {several[0]!r} holds more than one file"}, 400)

        def read_from_start(file, limit: int) -> bytes:
            file.seek(0)
            return file.read(limit + 1)

        stamps = {
            name: StampSource(name=file.name, read=lambda limit, f=file: read_from_start(f, limit))
            for name, file in request.FILES.items()
        }
        tracklet = TrackletInput(
            night=metadata.get("night"),
            survey_id=metadata.get("tracklet"),
            detections=metadata["detections"],
            stamps=stamps,
        )
        try:
            result = tracklet_ingest(tracklet=tracklet)
        except IngestRejected as exc:
            return Response(exc.as_dict(), status=exc.status)
        body = TrackletDetailSerializer(result.tracklet).data
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class NightList(generics.ListAPIView):
    """Nights with their number of tracklets, newest first."""

    serializer_class = NightSerializer
    queryset = Night.objects.order_by("-date")  # its counts are kept on its row


class BundleUploadViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Upload a .zip or .tar.gz night bundle; it is ingested by a worker, poll it for results."""

    queryset = BundleUpload.objects.prefetch_related("chunks").order_by("-created_at")
    parser_classes = [MultiPartParser]
    permission_classes = [permissions.IsAuthenticated, CanIngest]

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        # The list never reads the per-tracklet results (megabytes for a large night).
        chunks = Prefetch("chunks", queryset=BundleChunk.objects.defer("results"))
        return (
            BundleUpload.objects.defer("results").prefetch_related(chunks).order_by("-created_at")
        )

    def get_serializer_class(self):
        if self.action == "create":
            return BundleUploadCreateSerializer
        return BundleUploadListSerializer if self.action == "list" else BundleUploadSerializer

    @extend_schema(
        responses={
            202: OpenApiResponse(BundleUploadSerializer, description="Stored, queued for ingest."),
            413: too_large(),
        },
    )
    def create(self, request: Request) -> Response:
        form = BundleUploadCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = bundle_upload_create(file=form.validated_data["file"], user=request.user)
        return Response(BundleUploadSerializer(upload).data, status=status.HTTP_202_ACCEPTED)


class HasModelPermission(permissions.BasePermission):
    """Allow a user holding `permission` (a Django model permission)."""

    permission = ""

    def has_permission(self, request: Request, view: object) -> bool:
        return request.user.has_perm(self.permission)


class CanGiveVerdicts(HasModelPermission):
    permission = "screening.add_verdict"


class CanLabelStamps(HasModelPermission):
    permission = "screening.add_stamplabel"


class VerdictCreate(generics.GenericAPIView):
    """Record the caller's verdict on a tracklet: real, bogus, or withdrawn (an undo)."""

    serializer_class = VerdictInputSerializer
    permission_classes = [permissions.IsAuthenticated, CanGiveVerdicts]

    @extend_schema(
        responses={
            201: VerdictSerializer,
            400: bad_request(description="Invalid verdict."),
            404: detail("No such tracklet."),
        }
    )
    def post(self, request: Request, pk: int) -> Response:
        form = VerdictInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            verdict = verdict_record(
                tracklet_id=pk,
                reviewer=request.user,
                value=form.validated_data["value"],
                blind=form.validated_data.get("blind"),
            )
        except Tracklet.DoesNotExist:
            return Response({"detail": f"tracklet {pk} does not exist"}, status=404)
        except ReviewError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(VerdictSerializer(verdict).data, status=status.HTTP_201_CREATED)


class StampLabelCreate(generics.GenericAPIView):
    """Record the caller's class for one stamp (a correction of the model's class)."""

    serializer_class = StampLabelInputSerializer
    permission_classes = [permissions.IsAuthenticated, CanLabelStamps]

    @extend_schema(
        responses={
            201: StampLabelSerializer,
            400: bad_request(description="Invalid, or not a stamp class of the database."),
            404: detail("No such detection."),
        }
    )
    def post(self, request: Request, pk: int) -> Response:
        form = StampLabelInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            label = stamp_label_record(
                detection_id=pk,
                reviewer=request.user,
                class_name=form.validated_data["stamp_class"],
                blind=form.validated_data.get("blind"),
            )
        except Detection.DoesNotExist:
            return Response({"detail": f"detection {pk} does not exist"}, status=404)
        except ReviewError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(StampLabelSerializer(label).data, status=status.HTTP_201_CREATED)

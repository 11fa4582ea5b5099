"""Model registry and training runs over the API: list and read; admins start runs and promote.

- `GET /api/v1/models/`, `GET /api/v1/models/{version}/`: versions with their metrics.
- `POST /api/v1/models/{version}/activate/` `{"force": false}`: promotion by the rule (409 with
  the reason when refused); `force` overrides it and is recorded. Rollback is activating an
  earlier version. Activating the active model is a no-op: 200 with `"already_active": true`
  and no activation recorded.
- `GET /api/v1/training-runs/`, `GET /api/v1/training-runs/{id}/`: status, progress, step, log.
- `POST /api/v1/training-runs/`: start a run (202; 409 while another is queued or running).
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from screening.api.schema import detail
from screening.models import ModelActivation, ModelVersion, TrainingRun
from screening.registry.training import TrainingBusy, training_run_request
from screening.registry.versions import PromotionRefused, model_promote


class ModelPermission(permissions.BasePermission):
    """Reading needs the model's view permission; writing the permission named by the view."""

    def has_permission(self, request: Request, view) -> bool:
        model = view.queryset.model._meta.model_name
        if request.method in permissions.SAFE_METHODS:
            return request.user.has_perm(f"screening.view_{model}")
        return request.user.has_perm(f"screening.{view.write_permission}")


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "classes",
            "threshold",
            "is_active",
            "created_at",
            "activated_at",
            "metrics",
        ]


class ActivationSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.version")
    previous = serializers.CharField(source="previous.version", allow_null=True)
    by = serializers.CharField(source="by.username", allow_null=True)
    already_active = serializers.SerializerMethodField()

    class Meta:
        model = ModelActivation
        fields = [
            "model_version",
            "previous",
            "by",
            "forced",
            "reason",
            "created_at",
            "already_active",
        ]

    def get_already_active(self, obj: ModelActivation) -> bool:
        """Always false here: a new activation was recorded."""
        return False


AlreadyActiveSerializer = inline_serializer(
    "AlreadyActive",
    {
        "model_version": serializers.CharField(),
        "already_active": serializers.BooleanField(help_text="Always true: nothing changed."),
        "detail": serializers.CharField(),
    },
)


class ActivateInputSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)


class TrainingRunSerializer(serializers.ModelSerializer):
    candidate = serializers.CharField(source="candidate.version", allow_null=True, read_only=True)
    started_by = serializers.CharField(
        source="started_by.username", allow_null=True, read_only=True
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "trigger",
            "progress",
            "step",
            "log",
            "error",
            "metrics",
            "candidate",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class ModelVersionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = ModelVersion.objects.order_by("-created_at")
    serializer_class = ModelVersionSerializer
    lookup_field = "version"
    lookup_value_regex = "[^/.\x00]+"  # a NUL is no version: the API's JSON 404
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    write_permission = "change_modelversion"

    @extend_schema(
        request=ActivateInputSerializer,
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="ActivationResult",
                    serializers=[ActivationSerializer, AlreadyActiveSerializer],
                    resource_type_field_name=None,
                ),
                description="Activated (the activation recorded), or already the active model: "
                '`{"model_version", "already_active": true, "detail"}`, nothing recorded.',
            ),
            409: detail("Refused by the promotion rule (the reason given); `force` overrides."),
        },
    )
    @action(detail=True, methods=["post"], serializer_class=ActivateInputSerializer)
    def activate(self, request: Request, version: str) -> Response:
        """Make this version active: by the promotion rule, or forced (recorded). The active
        model itself: nothing changes, `already_active` true."""
        model = self.get_object()
        form = ActivateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            record = model_promote(
                version=model.version, user=request.user, force=form.validated_data["force"]
            )
        except PromotionRefused as refusal:
            return Response({"detail": str(refusal)}, status=status.HTTP_409_CONFLICT)
        if record.pk is None:
            return Response(
                {
                    "model_version": model.version,
                    "already_active": True,
                    "detail": f"model {model.version} is already the active model; nothing changed",
                }
            )
        return Response(ActivationSerializer(record).data)


class TrainingRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = TrainingRun.objects.select_related("candidate", "started_by").order_by("-id")
    serializer_class = TrainingRunSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    write_permission = "add_trainingrun"

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(TrainingRunSerializer, description="Queued for a worker."),
            409: detail("A run is already queued or running (runs go one at a time)."),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Start a training run from the active model on the labels given so far."""
        try:
            run = training_run_request(user=request.user)
        except TrainingBusy as busy:
            return Response({"detail": str(busy)}, status=status.HTTP_409_CONFLICT)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

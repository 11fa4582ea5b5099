from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from screening.api import errors, export, images, registry, reports, review, views

router = DefaultRouter()
router.register("tracklets", views.TrackletViewSet, basename="tracklet")
router.register("bundles", views.BundleUploadViewSet, basename="bundle")
router.register("models", registry.ModelVersionViewSet, basename="modelversion")
router.register("training-runs", registry.TrainingRunViewSet, basename="training-run")
router.register("reports", reports.MpcReportViewSet, basename="mpcreport")

urlpatterns = [
    path("nights/", views.NightList.as_view(), name="night-list"),
    path("nights/<str:date>/audit/", review.NightAudit.as_view(), name="night-audit"),
    path("nights/<str:date>/queue/", review.ReviewerQueue.as_view(), name="reviewer-queue"),
    path("models/<str:version>/audit/", review.ModelAudit.as_view(), name="model-audit"),
    path("reviewers/", review.ReviewerQuality.as_view(), name="reviewer-quality"),
    path("tracklets/<int:pk>/verdict/", views.VerdictCreate.as_view(), name="verdict-create"),
    path("detections/<int:pk>/label/", views.StampLabelCreate.as_view(), name="label-create"),
    path(
        "detections/<int:pk>/display.png",
        images.DetectionDisplay.as_view(),
        name="api-detection-display",
    ),
    path("export/verdicts/", export.VerdictExport.as_view(), name="export-verdicts"),
    path("export/labels/", export.StampLabelExport.as_view(), name="export-labels"),
    path("export/verdicts.csv", export.VerdictCsvExport.as_view(), name="export-verdicts-csv"),
    path("export/labels.csv", export.StampLabelCsvExport.as_view(), name="export-labels-csv"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    *router.urls,
    # Anything else under the API (a malformed id, an unknown path) is a JSON 404, not the
    # site's HTML page; paths without the trailing slash still get Django's redirect.
    re_path(r"^.*(/|\.png)$", errors.api_not_found, name="api-not-found"),
]

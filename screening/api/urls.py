from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from screening.api import views

router = DefaultRouter()
router.register("tracklets", views.TrackletViewSet, basename="tracklet")
router.register("bundles", views.BundleUploadViewSet, basename="bundle")

urlpatterns = [
    path("nights/", views.NightList.as_view(), name="night-list"),
    path("tracklets/<int:pk>/verdict/", views.VerdictCreate.as_view(), name="verdict-create"),
    path("detections/<int:pk>/label/", views.StampLabelCreate.as_view(), name="label-create"),
    *router.urls,
]

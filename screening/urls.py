"""URL configuration."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from screening.web import registry_views, views


class FaviconRedirect(RedirectView):
    """/favicon.ico, which browsers and tools ask for whatever the page says: the SVG icon.

    Not permanent: the static file's name carries a content hash that changes with the icon.
    """

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("screening/favicon.svg")


urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", FaviconRedirect.as_view(), name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("nights/<str:date>/", views.queue, name="queue"),
    path("nights/<str:date>/summary/", views.night_summary, name="night-summary"),
    path("nights/<str:date>/undo/", views.verdict_undo, name="verdict-undo"),
    path("nights/<str:date>/presence/", views.queue_presence, name="queue-presence"),
    path("nights/<str:date>/prepare/", views.queue_prepare, name="queue-prepare"),
    path("nights/<str:date>/report/", views.report_create, name="report-create"),
    path("reports/<int:pk>/", views.report_page, name="report-page"),
    path("reports/<int:pk>/send/", views.report_send_page, name="report-send"),
    path("reports/<int:pk>/again/", views.report_again_page, name="report-again"),
    path("reports/<int:pk>/ades.<str:kind>", views.report_file, name="report-file"),
    path("reviewers/", views.reviewers_page, name="reviewers"),
    path("nights/<str:date>/histogram.png", views.night_histogram, name="night-histogram"),
    path("tracklets/<int:pk>/", views.tracklet_detail, name="tracklet-page"),
    path("tracklets/<int:pk>/verdict/", views.verdict_save, name="verdict-save"),
    path("tracklets/<int:pk>/cues.png", views.tracklet_cues_plot, name="tracklet-cues"),
    path("stamps/<int:pk>.png", views.stamp_display, name="stamp-display"),
    path("models/", registry_views.models_page, name="models"),
    path("models/train/", registry_views.training_start, name="training-start"),
    path("models/<str:version>/", registry_views.model_page, name="model-page"),
    path(
        "models/<str:version>/activate/", registry_views.model_activate_page, name="model-activate"
    ),
    path("models/<str:version>/<str:kind>.png", registry_views.model_plot, name="model-plot"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("screening.api.urls")),
]

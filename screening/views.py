"""Web pages: the nights list, a night's tracklets, and stamp images (login required)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import http_date
from django.views.decorators.http import condition

from screening.models import Detection, Night, Tracklet

STAMP_CACHE_SECONDS = 7 * 24 * 3600


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for containers and load balancers: the database answers."""
    Night.objects.exists()
    return HttpResponse("ok", content_type="text/plain")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    nights = Night.objects.annotate(
        n_tracklets=Count("tracklets"),
        n_pending=Count("tracklets", filter=Q(tracklets__status=Tracklet.Status.PENDING)),
        n_reviewed=Count("tracklets", filter=Q(tracklets__status=Tracklet.Status.REVIEWED)),
    ).order_by("-date")
    return render(request, "screening/home.html", {"nights": nights})


@login_required
def night_detail(request: HttpRequest, date: str) -> HttpResponse:
    night = get_object_or_404(Night, date=date)
    tracklets = (
        Tracklet.objects.filter(night=night)
        .select_related("model_version")
        .prefetch_related(Prefetch("detections", queryset=Detection.objects.order_by("index")))
        .order_by("-score", "survey_id")
    )
    page = Paginator(tracklets, 50).get_page(request.GET.get("page"))
    return render(request, "screening/night.html", {"night": night, "page": page})


def _stamp_etag(request: HttpRequest, pk: int) -> str | None:
    sha = Detection.objects.filter(pk=pk).values_list("stamp_sha256", flat=True).first()
    return f"display-{sha}" if sha else None


@login_required
@condition(etag_func=_stamp_etag)
def stamp_display(request: HttpRequest, pk: int) -> HttpResponse:
    """A stamp's display PNG; immutable for a detection, so browsers may keep it."""
    detection = get_object_or_404(Detection, pk=pk)
    response = FileResponse(detection.display.open("rb"), content_type="image/png")
    response["Cache-Control"] = f"private, max-age={STAMP_CACHE_SECONDS}, immutable"
    response["Last-Modified"] = http_date(detection.tracklet.created_at.timestamp())
    return response

"""Web pages: the nights list, a night's tracklets, and stamp images (reviewers and admins)."""

from __future__ import annotations

import json
import re
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import http_date
from django.views.decorators.http import condition, require_POST

from screening.models import (
    Detection,
    MpcReport,
    Night,
    StampClass,
    StampLabel,
    StampPrediction,
    Tracklet,
)
from screening.nights import night_or_404
from screening.ops.roles import page_access, pages_for_reviewers
from screening.reports.ades import (
    AdesError,
    night_latency,
    report_again,
    report_build,
    report_candidates,
    report_send,
    trk_sub,
)
from screening.reports.night_summary import (
    neo_candidates,
    night_summary_counts,
    score_histogram_png,
)
from screening.reports.reviewer_quality import reviewer_quality
from screening.review.audit import night_estimates
from screening.review.blind import blind_applies
from screening.review.cues import tracklet_cues, tracklet_cues_png
from screening.review.displays import display_name, displays_make
from screening.review.queue import (
    ORDERS,
    STATUS_FILTERS,
    CursorError,
    QueueFilters,
    claims_release,
    claims_take,
    queue_page,
    queue_rows,
    queue_tracklets,
    rows_taken,
)
from screening.review.verdicts import (
    ReviewError,
    current_verdicts,
    verdict_record,
    verdict_undo_last,
)
from screening.scoring.digest2 import neo_candidate
from screening.web.rows import queue_row

STAMP_CACHE_SECONDS = 7 * 24 * 3600


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for containers and load balancers: the database answers."""
    Night.objects.exists()
    return HttpResponse("ok", content_type="text/plain")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (screening/ops/metrics.py); a bearer token when METRICS_TOKEN is set."""
    import hmac

    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from screening.ops.metrics import ScreeningCollector

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse(
                "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
                status=401,
                content_type="text/plain",
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScreeningCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@pages_for_reviewers
def home(request: HttpRequest) -> HttpResponse:
    # counts kept on each night's row (screening.nights.night_counts_*): flat in the tracklets
    nights = Night.objects.order_by("-date")
    return render(request, "screening/home.html", {"nights": nights})


@pages_for_reviewers
def queue(request: HttpRequest, date: str) -> HttpResponse:
    """A night's tracklets as rows of stamp strips, sorted by score, screened from the keyboard.

    Paged by the last row shown (`after`) or the first (`before`), never by an offset: rows
    judged meanwhile leave the view without sliding unseen ones behind the reviewer. In the
    to-review view the page's rows are claimed for the reviewer, and other reviewers' claims
    are left out (`screening.review.queue.claims_take`).
    """
    # the menu (its dates only: 60 rows of every column cost a page about a millisecond); the
    # page's night among them
    nights = list(Night.objects.order_by("-date").only("id", "date")[:60])
    night = night_or_404(date, nights)
    if night not in nights:  # an older night: in the menu too, where its date sorts
        nights = sorted([*nights, night], key=lambda n: n.date, reverse=True)
    # the menu's dates formatted here, not by the template's date filter twice a night
    night_menu = [(n.date.isoformat(), n.pk == night.pk) for n in nights]
    filters = QueueFilters.from_query(request.GET)
    screening = filters.to_review and request.user.has_perm("screening.add_verdict")
    tracklets = queue_tracklets(
        night=night, reviewer=request.user, filters=filters, claims=screening
    )
    query = request.GET.copy()
    for name in ("page", "after", "before"):
        query.pop(name, None)
    try:
        page = queue_page(
            tracklets,
            filters=filters,
            size=_int_param(request, "per_page", 50, 10, 200),
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
            number=_int_param(request, "page", 1, 1, 1_000_000),
        )
    except CursorError as exc:
        messages.error(request, f"{exc}: showing the first page")
        return redirect(f"{request.path}?{query.urlencode()}")
    ids = [t.pk for t in page.tracklets]
    taken: dict[int, str] = {}
    verdicts = current_verdicts(ids)  # read once, for the rows and for who took them
    if screening:
        claimed = claims_take(reviewer=request.user, tracklet_ids=ids)
        taken = rows_taken(
            reviewer=request.user, rows=page.tracklets, verdicts=verdicts, claimed=claimed
        )
    # display images drawn before the page is shown, not as black squares after
    rows = queue_rows(page.tracklets, reviewer=request.user, verdicts=verdicts, draw=True)
    for row in rows:
        row.taken = taken.get(row.tracklet.pk, "")
    remaining = None
    if filters.to_review and not page.has_next:
        # the end of this pass: what is still to review (skipped, returned, arrived meanwhile)
        remaining = (
            queue_tracklets(night=night, reviewer=request.user, filters=QueueFilters())
            .exclude(pk__in=ids)
            .count()
        )
    blind_on = blind_applies(request.user)
    return render(
        request,
        "screening/queue.html",
        {
            "night": night,
            "night_menu": night_menu,
            "page": page,
            "rows": rows,
            "filters": filters,
            "orders": ORDERS,
            "neo_candidate": f"{settings.DIGEST2_NEO_CANDIDATE:g}",
            "status_filters": STATUS_FILTERS,
            "classes": list(StampClass.objects.values_list("name", "is_real")),
            "class_filter_blind": blind_on and filters.to_review,
            "query": query.urlencode(),
            "screening": screening,
            "remaining": remaining,
        },
    )


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


class _BadRequest(ValueError):
    pass


def _page_json(view):
    """A page's JSON endpoint: POST, logged in as a reviewer or admin, errors as {detail}."""
    from functools import wraps

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return JsonResponse({"detail": "use POST"}, status=405)
        if not request.user.is_authenticated or not page_access(request.user):
            return JsonResponse({"detail": "log in as a reviewer"}, status=403)
        if not request.user.has_perm("screening.add_verdict"):
            return JsonResponse({"detail": "this account does not give verdicts"}, status=403)
        try:
            return view(request, *args, **kwargs)
        except (_BadRequest, ReviewError) as exc:
            return JsonResponse({"detail": str(exc)}, status=400)

    return wrapped


def _save_delay() -> None:
    """SCREENING_SAVE_DELAY_SECONDS before a save: tests of typing faster than the server."""
    if settings.SCREENING_SAVE_DELAY_SECONDS:
        time.sleep(settings.SCREENING_SAVE_DELAY_SECONDS)


def _row_html(tracklet_id: int, user) -> str:
    tracklet = Tracklet.objects.select_related("model_version").get(pk=tracklet_id)
    return queue_row(queue_rows([tracklet], reviewer=user)[0])


@_page_json
def verdict_save(request: HttpRequest, pk: int) -> HttpResponse:
    """The queue's and the tracklet page's verdict: stored with what the row showed, answered
    with the row as it shows now (the score and classes revealed after a verdict)."""
    body = _json_body(request)
    _save_delay()
    blind = body.get("blind")
    if blind is not None and not isinstance(blind, bool):
        raise _BadRequest("blind must be true or false")
    try:
        verdict = verdict_record(
            tracklet_id=pk, reviewer=request.user, value=str(body.get("value", "")), blind=blind
        )
    except Tracklet.DoesNotExist:
        return JsonResponse({"detail": f"tracklet {pk} does not exist"}, status=404)
    return JsonResponse(
        {
            "verdict": verdict.pk,
            "tracklet": pk,
            "value": verdict.value,
            "blind": verdict.blind,
            "row": _row_html(pk, request.user),
        },
        status=201,
    )


@_page_json
def verdict_undo(request: HttpRequest, date: str) -> HttpResponse:
    """Undo: withdraw this reviewer's latest standing verdict of the night, on any page."""
    night = night_or_404(date)
    _save_delay()
    verdict = verdict_undo_last(reviewer=request.user, night_id=night.pk)
    tracklet = verdict.tracklet
    return JsonResponse(
        {
            "tracklet": tracklet.pk,
            "survey_id": tracklet.survey_id,
            "row": _row_html(tracklet.pk, request.user),
        }
    )


@_page_json
def queue_presence(request: HttpRequest, date: str) -> HttpResponse:
    """The to-review page's short poll (every few seconds): renew this reviewer's claims on the
    page's open rows and say which of them another reviewer has judged or got first; or, with
    `release`, give the rows back (the page is left)."""
    night = night_or_404(date)
    body = _json_body(request)
    ids = _ids(body.get("tracklets", []))
    ids = list(Tracklet.objects.filter(night=night, pk__in=ids).values_list("pk", flat=True))
    if body.get("release"):
        claims_release(reviewer=request.user, tracklet_ids=ids)
        return JsonResponse({"released": len(ids)})
    claimed = claims_take(reviewer=request.user, tracklet_ids=ids)
    taken = rows_taken(reviewer=request.user, tracklet_ids=ids, claimed=claimed)
    return JsonResponse({"taken": {str(k): v for k, v in taken.items()}})


@_page_json
def queue_prepare(request: HttpRequest, date: str) -> HttpResponse:
    """Draw the display images of the page after this one, while this one is being screened."""
    night = night_or_404(date)
    body = _json_body(request)
    filters = QueueFilters.from_query(QueryDict(str(body.get("query", ""))))
    try:
        page = queue_page(
            queue_tracklets(night=night, reviewer=request.user, filters=filters),
            filters=filters,
            size=max(10, min(200, int(body.get("per_page", 50)))),
            after=str(body.get("after", "")),
        )
    except (CursorError, ValueError) as exc:
        raise _BadRequest(str(exc)) from None
    return JsonResponse({"drawn": displays_make([t.pk for t in page.tracklets])})


def _ids(value) -> list[int]:
    if not isinstance(value, list) or len(value) > 500:
        raise _BadRequest("tracklets must be a list of at most 500 ids")
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise _BadRequest("tracklets must be a list of ids") from None


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.GET.get(name, default))))
    except ValueError:
        return default


@pages_for_reviewers
def tracklet_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One tracklet: large stamps, blink view, detections, their motion and magnitude cues,
    prediction and review history."""
    tracklet = get_object_or_404(Tracklet.objects.select_related("night", "model_version"), pk=pk)
    # Blind while it is in the reviewer's to-review queue, as its row is in every view.
    row = queue_rows([tracklet], reviewer=request.user, full_detections=True)[0]
    displays_make([tracklet.pk])
    scores = tracklet.scores.select_related("model_version").order_by("-created_at")
    predictions: dict[int, dict[int, str]] = {}
    for p in StampPrediction.objects.filter(detection__tracklet=tracklet).select_related(
        "detection"
    ):
        predictions.setdefault(p.model_version_id, {})[p.detection.index] = (
            f"{p.top_class} {p.top_probability:.2f}"
        )
    indexes = [stamp.detection.index for stamp in row.stamps]
    history = [
        {
            "score": s,
            "stamps": [predictions.get(s.model_version_id, {}).get(i, "") for i in indexes],
        }
        for s in scores
    ]
    return render(
        request,
        "screening/tracklet.html",
        {
            "tracklet": tracklet,
            "row": row,
            "history": history,
            "verdicts": tracklet.verdicts.select_related("reviewer", "model_version_shown"),
            "labels": StampLabel.objects.filter(detection__tracklet=tracklet).select_related(
                "reviewer", "stamp_class", "detection"
            ),
            "classes": list(StampClass.objects.values_list("name", "is_real")),
            "cues": tracklet_cues(tracklet),
            "can_judge": request.user.has_perm("screening.add_verdict"),
            "digest2": _digest2_rows(tracklet),
            "neo_candidate": f"{settings.DIGEST2_NEO_CANDIDATE:g}",
            "is_neo_candidate": neo_candidate(tracklet.digest2_neo),
            "repeats": {
                d.pk: d
                for d in Detection.objects.filter(
                    pk__in=[s.detection.duplicate_of_id for s in row.stamps]
                ).select_related("tracklet__night")
            },
        },
    )


def _digest2_rows(tracklet: Tracklet) -> list[tuple[str, float, float | None]]:
    """digest2's classes as its package orders them: (class, no-ID score, raw score)."""
    noid = tracklet.digest2_scores.get("noid", {})
    raw = tracklet.digest2_scores.get("raw", {})
    return [(name, min(value, 100.0), raw.get(name)) for name, value in noid.items()]


@pages_for_reviewers
def tracklet_cues_plot(request: HttpRequest, pk: int) -> HttpResponse:
    """The tracklet's residuals against its fitted motion and its magnitudes (a PNG)."""
    tracklet = get_object_or_404(Tracklet, pk=pk)
    response = HttpResponse(tracklet_cues_png(tracklet), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


@pages_for_reviewers
def night_summary(request: HttpRequest, date: str) -> HttpResponse:
    """What happened to a night: in, scored, auto-rejected, reviewed, real found; the audit of
    auto-rejection; the MPC reports and their latency."""
    night = night_or_404(date)
    ready, auto_ready = report_candidates(night)
    return render(
        request,
        "screening/summary.html",
        {
            "night": night,
            "summary": night_summary_counts(night),
            "audits": night_estimates(night),
            "audit_rate": settings.AUDIT_RATE,
            "audit_min": settings.AUDIT_MIN_PER_NIGHT,
            "audit_confidence": settings.AUDIT_CONFIDENCE,
            "audit_target_pct": f"{100 * settings.AUDIT_TARGET_LOSS:g}",
            "reports": night.reports.all(),
            "latency": night_latency(night),
            "neo": neo_candidates(night, viewer=request.user),
            "neo_candidate": f"{settings.DIGEST2_NEO_CANDIDATE:g}",
            "ready": len(ready),
            "auto_ready": auto_ready,
            "can_report": request.user.has_perm("screening.add_mpcreport"),
        },
    )


@require_POST
@pages_for_reviewers
@permission_required("screening.add_mpcreport", raise_exception=True)
def report_create(request: HttpRequest, date: str) -> HttpResponse:
    """Make the night's ADES report of what is not reported yet (validated first)."""
    night = night_or_404(date)
    try:
        result = report_build(night=night, user=request.user)
    except AdesError as exc:
        messages.error(request, f"no report made: {exc}")
        return redirect("night-summary", date=date)
    for item in result.linked:  # sent once already: never in two reports
        messages.warning(request, str(item))
    if result.report is None:
        messages.info(request, "nothing to report: no tracklet of this night is judged real")
        return redirect("night-summary", date=date)
    if not result.created:
        messages.info(request, f"nothing new to report since report {result.report.pk}")
    else:
        messages.success(request, f"report {result.report.pk} made and validated with iau-ades")
    return redirect("report-page", pk=result.report.pk)


@pages_for_reviewers
def report_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A report: its tracklets (with digest2's NEO score), files, sending, and for an admin a
    deliberate re-report of some of its tracklets."""
    report = get_object_or_404(MpcReport.objects.select_related("night", "created_by"), pk=pk)
    tracklets = list(report.again.all()) if report.again_reason else list(report.tracklets.all())
    observations = dict(
        Detection.objects.filter(tracklet__in=tracklets)
        .values_list("tracklet_id")
        .annotate(n=Count("id"))
    )
    rows = [
        {
            "tracklet": t,
            "trk_sub": trk_sub(t.pk),
            "observations": observations.get(t.pk, 0),
            "neo_candidate": neo_candidate(t.digest2_neo),
            "reported_in": t.report_id,
        }
        for t in sorted(tracklets, key=lambda t: (-(t.digest2_neo or -1.0), t.pk))
    ]
    return render(
        request,
        "screening/report.html",
        {
            "report": report,
            "rows": rows,
            "stations": sorted(set(re.findall(r"^! mpcCode (\S+)$", report.psv, re.M))),
            "sender": settings.MPC_SENDER.rsplit(".", 1)[-1],
            "can_send": request.user.has_perm("screening.change_mpcreport"),
            "can_report_again": request.user.has_perm("screening.change_mpcreport"),
        },
    )


@require_POST
@pages_for_reviewers
@permission_required("screening.change_mpcreport", raise_exception=True)
def report_again_page(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin re-reports tracklets of a report on purpose (a new report, with the reason)."""
    report = get_object_or_404(MpcReport, pk=pk)
    chosen = Tracklet.objects.filter(
        pk__in=[int(v) for v in request.POST.getlist("tracklet")[:500] if v.isdigit()],
        night=report.night,
    ).select_related("night")
    try:
        again = report_again(
            tracklets=list(chosen), reason=request.POST.get("reason", ""), user=request.user
        )
    except AdesError as exc:
        messages.error(request, f"no re-report made: {exc}")
        return redirect("report-page", pk=pk)
    messages.success(
        request, f"report {again.pk} re-reports {again.n_tracklets} tracklet(s), validated"
    )
    return redirect("report-page", pk=again.pk)


@pages_for_reviewers
def report_file(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """A report's ADES file, PSV or XML, as a download."""
    report = get_object_or_404(MpcReport, pk=pk)
    return ades_file_response(report, kind)


def ades_file_response(report: MpcReport, kind: str) -> HttpResponse:
    if kind not in ("psv", "xml"):
        raise Http404("ADES files are psv or xml")
    content_type = "application/xml" if kind == "xml" else "text/plain; charset=utf-8"
    response = HttpResponse(getattr(report, kind), content_type=content_type)
    name = f"ades-{report.night.date.isoformat()}-{report.pk}.{kind}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["ETag"] = f'"{report.content_sha256}"'
    return response


@require_POST
@pages_for_reviewers
@permission_required("screening.change_mpcreport", raise_exception=True)
def report_send_page(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(MpcReport, pk=pk)
    try:
        report = report_send(report=report)
        messages.success(request, report.send_log.splitlines()[-1])
    except AdesError as exc:
        messages.error(request, f"not sent: {exc}")
    return redirect("report-page", pk=pk)


@pages_for_reviewers
def night_histogram(request: HttpRequest, date: str) -> HttpResponse:
    """The night's score histogram, split by the tracklets' current verdict (a PNG)."""
    night = night_or_404(date)
    response = HttpResponse(score_histogram_png(night), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


def _stamp_etag(request: HttpRequest, pk: int) -> str | None:
    sha = Detection.objects.filter(pk=pk).values_list("stamp_sha256", flat=True).first()
    return f"display-{sha}" if sha else None


@pages_for_reviewers
@condition(etag_func=_stamp_etag)
def stamp_display(request: HttpRequest, pk: int) -> HttpResponse:
    """A stamp's display PNG; immutable for a detection, so browsers may keep it."""
    return stamp_display_response(get_object_or_404(Detection, pk=pk))


def stamp_display_response(detection: Detection) -> FileResponse:
    """A detection's display PNG with its caching headers (the page and the API serve this)."""
    name = display_name(detection)
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    response["Cache-Control"] = f"private, max-age={STAMP_CACHE_SECONDS}, immutable"
    response["ETag"] = f'"display-{detection.stamp_sha256}"'
    response["Last-Modified"] = http_date(detection.tracklet.created_at.timestamp())
    return response


@pages_for_reviewers
@permission_required("screening.view_queueassignment", raise_exception=True)
def reviewers_page(request: HttpRequest) -> HttpResponse:
    """Reviewer quality (admins): accuracy on gold, agreement (kappa), verdicts per hour."""
    return render(request, "screening/reviewers.html", {"reviewers": reviewer_quality()})

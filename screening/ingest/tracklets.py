"""Tracklet ingest: the one service every entry point (REST, bundles, the command) goes through.

A tracklet is validated whole first (every field, every stamp decoded and rendered), then written
in one transaction, or rejected with every reason and nothing written. Re-sending the same content
is a no-op; the same night and id with other content is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from classifier.stamp_io import StampError, fit_to_input, read_stamp
from screening import queueing, tracklet_files
from screening.ingest.json_input import short, type_name
from screening.models import Detection, Night, Tracklet
from screening.nights import night_counts_created, night_parse

logger = logging.getLogger(__name__)

MIN_DETECTIONS = 3
MAX_DETECTIONS = 16
SURVEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}")
DETECTION_FIELDS = ("index", "mjd", "ra", "dec", "mag", "x", "y", "stamp")
# What a report to the MPC needs per detection, when the survey sends it: station (MPC code;
# else MPC_STATION), band (else MPC_PHOTOMETRY_BAND), exposure (seconds), time_ref ("mid": mjd is
# mid-exposure, the default; "start": mjd is the exposure's start, which needs exposure), and
# uncertainties rms_ra, rms_dec (arcseconds, RA's on the sky) and rms_mag (magnitudes). And, for
# the model, the exposure's seeing fwhm_px: the PSF's FWHM in the stamp's pixels.
OPTIONAL_DETECTION_FIELDS = ("station", "band", "exposure", "time_ref", "rms_ra", "rms_dec",
                             "rms_mag", "fwhm_px")  # fmt: skip
_BAND = re.compile(r"[.A-Za-z0-9_]{1,3}")  # the ADES schema's BandType
# A magnitude no pipeline measured: the field left out, null or an empty CSV cell, or a sentinel
# (99, 99.9, 999, -99: "no positive flux"): |mag| at least this. Such a detection is accepted,
# its magnitude stored as unknown (null) with `mag_flag` saying why, and left out of the
# magnitude cues and the report; a real mover with one unmeasurable magnitude is still screened.
MAG_SENTINEL_ABS = 50.0
MAX_STAMP_NAME = 255
_STAMP_SUFFIXES = (".fits.gz", ".fit.gz", ".fits", ".fit", ".fts", ".png", ".npy", ".gz")


@dataclass(frozen=True)
class StampSource:
    """A stamp file to ingest: its name (for messages and the stored suffix) and how to read it."""

    name: str
    read: Callable[[int], bytes]  # read(limit) returns at most limit + 1 bytes


def stamp_from_bytes(name: str, data: bytes) -> StampSource:
    return StampSource(name=name, read=lambda limit: data[: limit + 1])


@dataclass(frozen=True)
class TrackletInput:
    """A tracklet as it arrives: raw metadata (as parsed from JSON or CSV) and its stamp files."""

    night: Any
    survey_id: Any
    detections: Sequence[Mapping[str, Any]]
    stamps: Mapping[str, StampSource]  # keyed by each detection's "stamp" value
    origin: str = ""  # where the rows came from, e.g. "manifest.jsonl lines 3-6"
    text_values: bool = False  # numbers arrive as text (CSV); JSON sources must send numbers


@dataclass(frozen=True)
class IngestProblem:
    reason: str
    field: str | None = None
    file: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"reason": self.reason}
        if self.field:
            out["field"] = self.field
        if self.file:
            out["file"] = self.file
        return out


class IngestRejected(Exception):
    """The tracklet was not written: it is invalid (400) or conflicts with a stored one (409)."""

    def __init__(self, *, night: Any, survey_id: Any, problems: list[IngestProblem], status=400):
        self.night = str(night) if night is not None else None
        self.survey_id = str(survey_id) if survey_id is not None else None
        self.problems = problems
        self.status = status
        super().__init__("; ".join(p.reason for p in problems))

    def as_dict(self) -> dict[str, Any]:
        return {
            "night": self.night,
            "tracklet": self.survey_id,
            "errors": [p.as_dict() for p in self.problems],
        }


@dataclass
class IngestResult:
    tracklet: Tracklet
    created: bool


@dataclass
class _PreparedDetection:
    values: dict[str, float | int]
    stamp_name: str
    stamp_bytes: bytes
    stamp_format: str
    stamp_sha256: str
    width: int
    height: int
    pixels: np.ndarray


@dataclass
class _PreparedTracklet:
    night: date
    survey_id: str
    detections: list[_PreparedDetection]
    content_sha256: str
    motion: dict[str, float] = field(default_factory=dict)


def tracklet_ingest(*, tracklet: TrackletInput, request_scoring: bool = True) -> IngestResult:
    """Validate a tracklet whole, then store it in one transaction; raise IngestRejected if not.

    Once stored, scoring is queued (unless the caller queues it for many tracklets at once).
    """
    (outcome,) = tracklets_ingest([tracklet], request_scoring=request_scoring)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


Outcome = IngestResult | IngestRejected


def tracklets_ingest(
    tracklets: Sequence[TrackletInput], *, request_scoring: bool = True
) -> list[Outcome]:
    """Ingest a batch: each tracklet validated whole, then every valid new one stored in one
    transaction with bulk inserts (one file each). Returns one outcome per input, in order: the
    stored (or already stored) row, or the IngestRejected that says why it was not written.

    A tracklet's outcome is the same as if it had been ingested alone: re-sending the same
    content is a no-op, other content under a stored night and id a conflict (409), and a
    repeat of the same tracklet later in the batch is treated as a re-send of the first.
    Should the batch's write fail (another worker stored one of them first, or anything else),
    its tracklets are written one by one, so one tracklet never takes the others down.
    """
    outcomes: list[Outcome | None] = [None] * len(tracklets)
    pending: list[tuple[int, _PreparedTracklet]] = []
    for i, tracklet in enumerate(tracklets):
        try:
            pending.append((i, _prepare(tracklet)))
        except IngestRejected as exc:
            outcomes[i] = exc
    new = _resolve_existing(pending, outcomes)
    if new:
        try:
            stored = _store(new, request_scoring=request_scoring)
        except IntegrityError:
            # Another upload committed one of them first: one by one, each finds its row.
            stored = []
            for item in new:
                stored += _store_alone(item, request_scoring=request_scoring)
        for (i, _), row in zip(new, stored, strict=True):
            outcomes[i] = row
    prepared = dict(pending)
    for i, first in _repeats_in_batch(pending):
        outcomes[i] = _same_as(outcomes[first], prepared[i])
    return outcomes  # type: ignore[return-value]


def _store_alone(item: tuple[int, _PreparedTracklet], *, request_scoring: bool) -> list[Outcome]:
    try:
        return _store([item], request_scoring=request_scoring)
    except IntegrityError:
        outcomes: list[Outcome | None] = [None]
        if _resolve_existing([(0, item[1])], outcomes):
            raise
        return outcomes  # type: ignore[return-value]


def _key(prepared: _PreparedTracklet) -> tuple[date, str]:
    return prepared.night, prepared.survey_id


def _repeats_in_batch(pending: list[tuple[int, _PreparedTracklet]]) -> list[tuple[int, int]]:
    """(position, position of the first) for each tracklet sent again later in the batch."""
    first: dict[tuple[date, str], int] = {}
    out = []
    for i, prepared in pending:
        if _key(prepared) in first:
            out.append((i, first[_key(prepared)]))
        else:
            first[_key(prepared)] = i
    return out


def _same_as(outcome: Outcome | None, prepared: _PreparedTracklet) -> Outcome:
    """The outcome of a tracklet sent twice in one batch, given the first one's."""
    if isinstance(outcome, IngestResult):
        if outcome.tracklet.content_sha256 != prepared.content_sha256:
            return _conflict(prepared)
        return IngestResult(tracklet=outcome.tracklet, created=False)
    assert outcome is not None
    return outcome


def _conflict(prepared: _PreparedTracklet) -> IngestRejected:
    return IngestRejected(
        night=prepared.night,
        survey_id=prepared.survey_id,
        status=409,
        problems=[
            IngestProblem(
                reason="a tracklet with this night and id is already stored with other "
                "content; send it under a new id",
                field="tracklet",
            )
        ],
    )


def _resolve_existing(
    pending: list[tuple[int, _PreparedTracklet]], outcomes: list[Outcome | None]
) -> list[tuple[int, _PreparedTracklet]]:
    """Fill the outcomes of tracklets already stored (unchanged, or a conflict); return the
    new ones (the first of each night and id in the batch)."""
    if not pending:
        return []
    nights = {p.night for _, p in pending}
    ids = {p.survey_id for _, p in pending}
    rows = Tracklet.objects.filter(night__date__in=nights, survey_id__in=ids)
    stored = {(row.night.date, row.survey_id): row for row in rows.select_related("night")}
    new, seen = [], set()
    for i, prepared in pending:
        row = stored.get(_key(prepared))
        if row is not None:
            outcomes[i] = (
                IngestResult(tracklet=row, created=False)
                if row.content_sha256 == prepared.content_sha256
                else _conflict(prepared)
            )
        elif _key(prepared) not in seen:
            seen.add(_key(prepared))
            new.append((i, prepared))
    return new


def _store(items: list[tuple[int, _PreparedTracklet]], *, request_scoring: bool) -> list[Outcome]:
    """Write new tracklets: one file each, then their rows in one transaction (bulk inserts).
    Files are named by the tracklet's content hash, so a row is written once, with its file."""
    written: list[str] = []
    try:
        files = [
            _save(f"tracklets/{_stem(p)}{tracklet_files.SUFFIX}", _tracklet_file(p), written)
            for _, p in items
        ]
        with transaction.atomic():
            nights = {night: _night_row(night) for night in {p.night for _, p in items}}
            rows = Tracklet.objects.bulk_create(
                [
                    Tracklet(
                        night=nights[p.night],
                        survey_id=p.survey_id,
                        content_sha256=p.content_sha256,
                        n_detections=len(p.detections),
                        pixels=name,
                        **p.motion,
                    )
                    for (_, p), name in zip(items, files, strict=True)
                ]
            )
            detections = [
                [_detection_row(row, name, det) for det in p.detections]
                for (_, p), row, name in zip(items, rows, files, strict=True)
            ]
            _link_repeats([p.detections for _, p in items], detections)
            for night, row in nights.items():
                night_counts_created(row.pk, sum(1 for _, p in items if p.night == night))
            if request_scoring:
                transaction.on_commit(queueing.request_scoring)
    except BaseException:
        _delete_files(written)
        raise
    return [IngestResult(tracklet=row, created=True) for row in rows]


def _stem(prepared: _PreparedTracklet) -> str:
    return f"{prepared.night.isoformat()}/{prepared.content_sha256[:32]}"


def _tracklet_file(prepared: _PreparedTracklet) -> bytes:
    return tracklet_files.tracklet_file_bytes(
        np.stack([d.pixels for d in prepared.detections]),
        [(d.values["index"], _stamp_suffix(d), d.stamp_bytes) for d in prepared.detections],
    )


def _night_row(night: date) -> Night:
    found = Night.objects.filter(date=night).first()
    return found if found is not None else Night.objects.get_or_create(date=night)[0]


def _detection_row(tracklet: Tracklet, name: str, det: _PreparedDetection) -> Detection:
    """A detection's row; its stamp as received is in the tracklet's file. The display PNG is
    made on first view (`screening.review.displays.display_name`)."""
    return Detection(
        tracklet=tracklet,
        stamp_format=det.stamp_format,
        stamp_sha256=det.stamp_sha256,
        stamp_width=det.width,
        stamp_height=det.height,
        stamp=name,
        **det.values,
    )


def _link_repeats(prepared: list[list[_PreparedDetection]], rows: list[list[Detection]]) -> None:
    """Insert the detection rows, each repeat of an observation already stored (or earlier in
    this batch) linked to the first stored one, and log the repeats."""
    links = stored_repeats([d for dets in prepared for d in dets])
    flat = [row for tracklet in rows for row in tracklet]
    for position, stored_id in links.items():
        flat[position].duplicate_of_id = stored_id
    earlier = _batch_repeats(prepared)
    Detection.objects.bulk_create(flat)
    later = []
    for position, first in earlier.items():
        if position in links:
            continue
        flat[position].duplicate_of_id = flat[first].duplicate_of_id or flat[first].pk
        later.append(flat[position])
    if later:
        Detection.objects.bulk_update(later, ["duplicate_of"])
    for tracklet in rows:
        repeated = [r.index for r in tracklet if r.duplicate_of_id is not None]
        if repeated:
            logger.info(
                "tracklet %s/%s: detection(s) %s repeat stored ones, linked to them",
                tracklet[0].tracklet.night.date, tracklet[0].tracklet.survey_id, repeated,
            )  # fmt: skip


# One observation sent twice (in two tracklets): the same station, within half a second and one
# arcsecond, or the very same stamp file.
SAME_DETECTION_SECONDS = 0.5
SAME_DETECTION_ARCSEC = 1.0
_WINDOW_DAYS = SAME_DETECTION_SECONDS / 86400.0
_DEC_SLACK_DEG = 2 * SAME_DETECTION_ARCSEC / 3600.0  # a declination band wider than the match


def same_place(ra_a: float, dec_a: float, ra_b: float, dec_b: float) -> bool:
    """Whether two positions (degrees) are within SAME_DETECTION_ARCSEC on the sky
    (astropy.coordinates' great-circle separation: RA wraps, the poles are no special case)."""
    return _separation_and_angle(ra_a, dec_a, ra_b, dec_b)[0] * 3600.0 <= SAME_DETECTION_ARCSEC


def _separation_and_angle(ra1: float, dec1: float, ra2: float, dec2: float) -> tuple[float, float]:
    """(great-circle separation, position angle east of north), degrees, of two positions in
    degrees: Vincenty's formula and the angle as astropy's `angular_separation` and
    `position_angle` compute them, in plain floats (astropy's units cost a millisecond)."""
    ra1, dec1, ra2, dec2 = (math.radians(float(v)) for v in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    across = math.cos(dec2) * math.sin(dra)
    along = math.cos(dec1) * math.sin(dec2) - math.sin(dec1) * math.cos(dec2) * math.cos(dra)
    towards = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(dra)
    separation = math.degrees(math.atan2(math.hypot(across, along), towards))
    return separation, math.degrees(math.atan2(across, along))


def _same_detection(a: _PreparedDetection, b_values: Mapping[str, Any], b_sha: str) -> bool:
    if a.stamp_sha256 == b_sha:
        return True
    station = a.values.get("station") or settings.MPC_STATION
    return (
        (b_values.get("station") or settings.MPC_STATION) == station
        and abs(float(b_values["mjd"]) - float(a.values["mjd"])) <= _WINDOW_DAYS
        and abs(float(b_values["dec"]) - float(a.values["dec"])) <= _DEC_SLACK_DEG
        and same_place(a.values["ra"], a.values["dec"], b_values["ra"], b_values["dec"])
    )


def stored_repeats(detections: list[_PreparedDetection]) -> dict[int, int]:
    """{position: id of the stored detection it repeats} for detections already stored in
    another tracklet (the earliest stored one): they are linked to it, and reported once.

    Two queries: the same stamp files, and a box around each detection (its time window and a
    declination band, joined on the (dec, mjd) index, which finds them without reading the rest
    of their exposure); then the station and the great-circle separation decide."""
    from django.db import connection

    if not detections:
        return {}
    columns = ("id", "duplicate_of_id", "station", "mjd", "ra", "dec", "stamp_sha256")
    found = dict.fromkeys(
        Detection.objects.filter(stamp_sha256__in=[d.stamp_sha256 for d in detections]).values_list(
            *columns
        )
    )
    table = Detection._meta.db_table
    for start in range(0, len(detections), 400):  # keep each statement's parameters few
        part = detections[start : start + 400]
        boxes = ", ".join(["(%s, %s)"] * len(part))
        params: list[float] = []
        for det in part:
            params += [float(det.values["mjd"]), float(det.values["dec"])]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH box(mjd, dec) AS (VALUES {boxes}) "  # noqa: S608 - no input in the text
                f"SELECT DISTINCT {', '.join('d.' + c for c in columns)} FROM {table} d "
                "JOIN box ON d.dec BETWEEN box.dec - %s AND box.dec + %s "
                "AND d.mjd BETWEEN box.mjd - %s AND box.mjd + %s",
                [*params, _DEC_SLACK_DEG, _DEC_SLACK_DEG, _WINDOW_DAYS, _WINDOW_DAYS],
            )
            found.update(dict.fromkeys(tuple(row) for row in cursor.fetchall()))
    stored = [dict(zip(columns, row, strict=True)) for row in sorted(found)]  # by id
    links: dict[int, int] = {}
    for position, det in enumerate(detections):
        for row in stored:
            if _same_detection(det, row, row["stamp_sha256"]):
                links[position] = row["duplicate_of_id"] or row["id"]
                break
    return links


def _batch_repeats(prepared: list[list[_PreparedDetection]]) -> dict[int, int]:
    """{position: position of the first} for detections that repeat one of an earlier tracklet
    in the same batch (positions over the batch's detections, tracklet after tracklet)."""
    flat = [(t, d) for t, dets in enumerate(prepared) for d in dets]
    mjds = np.array([float(d.values["mjd"]) for _, d in flat])
    decs = np.array([float(d.values["dec"]) for _, d in flat])
    order = np.argsort(mjds, kind="stable")
    starts = np.searchsorted(mjds[order], mjds - _WINDOW_DAYS, side="left")
    ends = np.searchsorted(mjds[order], mjds + _WINDOW_DAYS, side="right")
    by_sha: dict[str, int] = {}
    for k, (_, det) in enumerate(flat):
        by_sha.setdefault(det.stamp_sha256, k)
    out: dict[int, int] = {}
    for position, (tracklet, det) in enumerate(flat):
        if flat[by_sha[det.stamp_sha256]][0] < tracklet:
            out[position] = by_sha[det.stamp_sha256]
            continue
        near = order[starts[position] : ends[position]]
        near = near[np.abs(decs[near] - decs[position]) <= _DEC_SLACK_DEG]
        for k in sorted(int(k) for k in near):
            other_tracklet, other = flat[k]
            if other_tracklet < tracklet and _same_detection(det, other.values, other.stamp_sha256):
                out[position] = k
                break
    return out


def _save(name: str, data: bytes, written: list[str]) -> str:
    stored = default_storage.save(name, ContentFile(data))
    written.append(stored)
    return stored


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _stamp_suffix(det: _PreparedDetection) -> str:
    lower = det.stamp_name.lower()
    for suffix in _STAMP_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    return {"fits": ".fits", "png": ".png", "npy": ".npy"}[det.stamp_format]


# --- validation ---------------------------------------------------------------------------


def _prepare(tracklet: TrackletInput) -> _PreparedTracklet:
    problems: list[IngestProblem] = []
    night = _parse_night(tracklet.night, problems)
    survey_id = _parse_survey_id(tracklet.survey_id, problems)
    if isinstance(tracklet.detections, list | tuple):
        rows = list(tracklet.detections)
    else:
        problems.append(
            IngestProblem(
                field="detections",
                reason="detections must be a list of detection objects, "
                f"got {type_name(tracklet.detections)}",
            )
        )
        rows = []
    if rows and not MIN_DETECTIONS <= len(rows) <= MAX_DETECTIONS or not rows and not problems:
        problems.append(
            IngestProblem(
                field="detections",
                reason=f"a tracklet needs {MIN_DETECTIONS} to {MAX_DETECTIONS} detections, "
                f"got {len(rows)}",
            )
        )
    rows = rows[: MAX_DETECTIONS + 1]  # more are refused above; do not decode them all
    values = [
        _parse_detection(i, row, problems, text_values=tracklet.text_values)
        for i, row in enumerate(rows)
    ]
    _check_order(values, problems)
    if night is not None:
        _check_night(night, values, problems)
    duplicates = _check_duplicate_stamps(values, problems)
    _check_unnamed_files(values, tracklet.stamps, problems)
    detections: list[_PreparedDetection] = []
    for i, (row, parsed) in enumerate(zip(rows, values, strict=True)):
        if parsed is None or i in duplicates:
            continue
        try:
            prepared = _prepare_stamp(i, row, parsed, tracklet.stamps, problems)
        except Exception as exc:  # a decoder's surprise is this stamp's problem, not a 500
            logger.exception("stamp %r of tracklet %r failed", parsed["stamp"], tracklet.survey_id)
            problems.append(
                IngestProblem(
                    field=f"detections[{i}].stamp",
                    file=parsed["stamp"],
                    reason=f"stamp cannot be processed ({type(exc).__name__}: {exc})",
                )
            )
            continue
        if prepared is not None:
            detections.append(prepared)
    if problems or night is None or survey_id is None:
        raise IngestRejected(night=tracklet.night, survey_id=tracklet.survey_id, problems=problems)
    detections.sort(key=lambda d: d.values["index"])
    return _PreparedTracklet(
        night=night,
        survey_id=survey_id,
        detections=detections,
        content_sha256=_content_hash(night, survey_id, detections),
        motion=_motion(detections),
    )


def _parse_night(raw: Any, problems: list[IngestProblem]) -> date | None:
    if raw is None or raw == "":
        problems.append(IngestProblem(field="night", reason="night is missing"))
        return None
    try:
        return night_parse(raw)
    except ValueError as exc:
        problems.append(IngestProblem(field="night", reason=str(exc)))
        return None


def _parse_survey_id(raw: Any, problems: list[IngestProblem]) -> str | None:
    if raw is None or raw == "":
        problems.append(IngestProblem(field="tracklet", reason="tracklet id is missing"))
        return None
    if not isinstance(raw, str):
        problems.append(
            IngestProblem(
                field="tracklet",
                reason=f"tracklet id must be a string, got {type_name(raw)} {short(raw)}",
            )
        )
        return None
    value = raw.strip()
    if not SURVEY_ID_PATTERN.fullmatch(value):
        problems.append(
            IngestProblem(
                field="tracklet",
                reason=f"tracklet id {short(value, 80)} must be 1-64 characters of letters, "
                "digits "
                "and _ . : + - (starting with a letter or digit)",
            )
        )
        return None
    return value


_RANGES: dict[str, tuple[float, float]] = {
    "mjd": (30000.0, 100000.0),
    "ra": (0.0, 360.0),
    "dec": (-90.0, 90.0),
    "mag": (-30.0, 40.0),
    "x": (-1e6, 1e6),
    "y": (-1e6, 1e6),
    "exposure": (0.0, 3600.0),  # seconds
    "rms_ra": (0.0, 3600.0),  # arcseconds
    "rms_dec": (0.0, 3600.0),
    "rms_mag": (0.0, 10.0),
    "fwhm_px": (0.0, 100.0),  # the stamp's pixels
}


_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _parse_detection(
    position: int, row: Any, problems: list[IngestProblem], *, text_values: bool = False
) -> dict[str, Any] | None:
    where = f"detections[{position}]"
    if not isinstance(row, Mapping):
        problems.append(
            IngestProblem(
                field=where, reason=f"a detection must be an object, got {type_name(row)}"
            )
        )
        return None
    out: dict[str, Any] = {}
    ok = True
    unknown = [
        key for key in row if key not in DETECTION_FIELDS and key not in OPTIONAL_DETECTION_FIELDS
    ]
    for key in unknown[:5]:
        problems.append(
            IngestProblem(
                field=f"{where}.{key}" if isinstance(key, str) and len(key) <= 40 else where,
                reason=f"unknown field {short(key)} (a detection has the fields "
                f"{', '.join(DETECTION_FIELDS)} and optionally "
                f"{', '.join(OPTIONAL_DETECTION_FIELDS)})",
            )
        )
        ok = False
    for name in OPTIONAL_DETECTION_FIELDS:
        raw = row.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue  # not sent (or an empty CSV cell)
        try:
            out[name] = _as_optional(name, raw, text_values=text_values)
        except ValueError as exc:
            problems.append(IngestProblem(field=f"{where}.{name}", reason=str(exc)))
            ok = False
    if out.get("time_ref") == "start" and "exposure" not in out:
        problems.append(
            IngestProblem(
                field=f"{where}.exposure",
                reason="time_ref 'start' needs the exposure time (seconds) to give the "
                "mid-exposure time a report must carry",
            )
        )
        ok = False
    for name in DETECTION_FIELDS:
        raw = row.get(name)
        if name == "mag":
            try:
                out["mag"], flag = _as_magnitude(raw, text_values=text_values)
                if flag:  # only then: a measured magnitude's tracklet hashes as before
                    out["mag_flag"] = flag
            except ValueError as exc:
                problems.append(IngestProblem(field=f"{where}.mag", reason=str(exc)))
                ok = False
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append(IngestProblem(field=f"{where}.{name}", reason=f"{name} is missing"))
            ok = False
            continue
        try:
            if name == "stamp":
                out[name] = _as_stamp_name(raw)
            elif name == "index":
                out[name] = _as_index(raw, text_values=text_values)
            else:
                out[name] = _as_number(name, raw, text_values=text_values)
        except ValueError as exc:
            problems.append(IngestProblem(field=f"{where}.{name}", reason=str(exc)))
            ok = False
    return out if ok else None


def _as_optional(name: str, raw: Any, *, text_values: bool) -> str | float:
    if name in ("station", "band", "time_ref"):
        if not isinstance(raw, str):
            raise ValueError(f"{name} must be a string, got {type_name(raw)}")
        value = raw.strip()
        if name == "station":
            from screening.ingest.stations import station_problem

            problem = station_problem(value)
            if problem:
                raise ValueError(problem)
        elif name == "band" and not _BAND.fullmatch(value):
            raise ValueError(f"band {short(value)} must be 1 to 3 letters or digits (ADES band)")
        elif name == "time_ref" and value not in ("mid", "start"):
            raise ValueError(f"time_ref must be 'mid' or 'start', got {short(value)}")
        return value
    value = _as_number(name, raw, text_values=text_values)
    if value <= 0:
        raise ValueError(f"{name} {value!r} must be above 0")
    return value


def _as_magnitude(raw: Any, *, text_values: bool) -> tuple[float | None, str]:
    """A detection's magnitude and its flag: (value, "") when measured; (None, "missing") or
    (None, "sentinel 99") when none was (MAG_SENTINEL_ABS); ValueError for anything else that
    is not a magnitude."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "missing"
    if (
        isinstance(raw, int | float)
        and not isinstance(raw, bool)
        or (isinstance(raw, str) and text_values and _DECIMAL.fullmatch(raw.strip()))
    ):
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (OverflowError, ValueError):
            value = math.inf
        if math.isfinite(value) and abs(value) >= MAG_SENTINEL_ABS:
            return None, f"sentinel {value:g}"
    return _as_number("mag", raw, text_values=text_values), ""


def _as_stamp_name(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"stamp must be a file path (a string), got {type_name(raw)}")
    if len(raw) > MAX_STAMP_NAME:
        raise ValueError(f"stamp name is longer than {MAX_STAMP_NAME} characters")
    if _CONTROL.search(raw):
        raise ValueError(f"stamp name {short(raw)} holds control characters")
    return raw


def _as_index(raw: Any, *, text_values: bool) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"index must be an integer, got {type_name(raw)}")
    if isinstance(raw, str):
        if not text_values:
            raise ValueError(f"index {short(raw)} is not an integer (send a JSON number)")
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,6}", text):
            raise ValueError(f"index {short(raw)} is not an integer")
        value = int(text)
    elif isinstance(raw, float):
        if not (math.isfinite(raw) and raw.is_integer()):
            raise ValueError(f"index {short(raw)} is not an integer")
        value = int(raw)
    else:
        value = raw
    if not 0 <= value < MAX_DETECTIONS:
        raise ValueError(f"index {short(value)} is outside 0..{MAX_DETECTIONS - 1}")
    return value


def _as_number(name: str, raw: Any, *, text_values: bool) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{name} must be a number, got {type_name(raw)}")
    if isinstance(raw, str):
        if not text_values:
            raise ValueError(f"{name} {short(raw)} is not a number (send a JSON number)")
        if not _DECIMAL.fullmatch(raw.strip()):
            raise ValueError(f"{name} {short(raw)} is not a number")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (OverflowError, ValueError):
        value = math.inf
    low, high = _RANGES[name]
    if not (math.isfinite(value) and low <= value <= high) or (name == "ra" and value == 360):
        shown = f"{value!r}" if math.isfinite(value) else short(raw)
        raise ValueError(f"{name} {shown} is outside {low:g}..{high:g}")
    return value


def _check_order(values: list[dict[str, Any] | None], problems: list[IngestProblem]) -> None:
    if any(v is None for v in values) or not values:
        return
    indexes = sorted(v["index"] for v in values)  # type: ignore[index]
    if indexes != list(range(len(values))):
        problems.append(
            IngestProblem(
                field="detections",
                reason=f"detection indexes must be 0..{len(values) - 1} once each, got {indexes}",
            )
        )
        return
    ordered = sorted(values, key=lambda v: v["index"])  # type: ignore[index]
    for before, after in zip(ordered, ordered[1:], strict=False):
        if not after["mjd"] > before["mjd"]:  # type: ignore[index]
            problems.append(
                IngestProblem(
                    field=f"detections[{after['index']}].mjd",  # type: ignore[index]
                    reason="detections must be in time order: mjd must increase with index",
                )
            )
            return


def _check_night(
    night: date, values: list[dict[str, Any] | None], problems: list[IngestProblem]
) -> None:
    """Every detection in the tracklet's night: the night its station's local time puts it in
    (`local_nights`), so that one detection belongs to one night only."""
    from screening.ingest.stations import local_nights, longitude_signed

    sent = [
        (position, value, value.get("station") or settings.MPC_STATION)
        for position, value in enumerate(values)
        if value is not None
    ]
    nights = local_nights([value["mjd"] for _, value, _ in sent], [code for _, _, code in sent])
    for (position, value, code), own in zip(sent, nights, strict=True):
        if own != night:
            problems.append(
                IngestProblem(
                    field=f"detections[{position}].mjd",
                    reason=f"mjd {value['mjd']!r} from {code} is in the night {own.isoformat()}, "
                    f"not {night.isoformat()} (a station's night runs from local noon to local "
                    f"noon, at longitude {longitude_signed(code):+.1f} deg, and is named by "
                    "the date of its morning)",
                )
            )


def _check_duplicate_stamps(
    values: list[dict[str, Any] | None], problems: list[IngestProblem]
) -> set[int]:
    """Report detections naming a stamp an earlier one names; return their positions."""
    first: dict[str, int] = {}
    duplicates: set[int] = set()
    for position, value in enumerate(values):
        if value is None:
            continue
        name = value["stamp"]
        if name in first:
            duplicates.add(position)
            problems.append(
                IngestProblem(
                    field=f"detections[{position}].stamp",
                    file=name,
                    reason=f"detections[{first[name]}].stamp and detections[{position}].stamp "
                    f"name the same file {name}",
                )
            )
        else:
            first[name] = position
    return duplicates


def _check_unnamed_files(
    values: list[dict[str, Any] | None],
    stamps: Mapping[str, StampSource],
    problems: list[IngestProblem],
) -> None:
    if any(v is None for v in values):
        return  # a detection's stamp is unknown: it may be the one that names the file
    named = {v["stamp"] for v in values}  # type: ignore[index]
    for name in stamps:
        if name not in named:
            problems.append(
                IngestProblem(
                    field=str(name)[:80],
                    file=stamps[name].name,
                    reason=f"file {short(name)} was sent but no detection names it as its stamp",
                )
            )


def _prepare_stamp(
    position: int,
    row: Mapping[str, Any],
    values: dict[str, Any],
    stamps: Mapping[str, StampSource],
    problems: list[IngestProblem],
) -> _PreparedDetection | None:
    where = f"detections[{position}].stamp"
    source = stamps.get(values["stamp"])
    if source is None:
        problems.append(
            IngestProblem(field=where, file=values["stamp"], reason="stamp file was not sent")
        )
        return None
    limit = settings.STAMP_MAX_BYTES
    try:
        data = source.read(limit)
    except OSError as exc:
        problems.append(IngestProblem(field=where, file=source.name, reason=f"unreadable: {exc}"))
        return None
    if len(data) > limit:
        problems.append(
            IngestProblem(
                field=where,
                file=source.name,
                reason=f"file is larger than the limit of {limit} bytes",
            )
        )
        return None
    try:
        stamp = read_stamp(data, max_side=settings.STAMP_MAX_SIDE)
        fitted = fit_to_input(stamp.pixels)
        if not np.isfinite(fitted).any():
            raise StampError("the central 100x100 pixels have no finite value")
    except StampError as exc:
        problems.append(IngestProblem(field=where, file=source.name, reason=str(exc)))
        return None
    numbers = {k: v for k, v in values.items() if k != "stamp"}
    return _PreparedDetection(
        values=numbers,
        stamp_name=source.name,
        stamp_bytes=data,
        stamp_format=stamp.format,
        stamp_sha256=hashlib.sha256(data).hexdigest(),
        width=stamp.shape[1],
        height=stamp.shape[0],
        pixels=fitted,
    )


def _content_hash(night: date, survey_id: str, detections: list[_PreparedDetection]) -> str:
    canonical = {
        "night": night.isoformat(),
        "tracklet": survey_id,
        "detections": [{**d.values, "stamp_sha256": d.stamp_sha256} for d in detections],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _motion(detections: list[_PreparedDetection]) -> dict[str, float | None]:
    """Rate and direction of motion between the first and last detection, and mean magnitude
    (of the measured ones; None when none is)."""
    first, last = detections[0].values, detections[-1].values
    separation, angle = _separation_and_angle(first["ra"], first["dec"], last["ra"], last["dec"])
    days = float(last["mjd"]) - float(first["mjd"])
    mags = [float(d.values["mag"]) for d in detections if d.values["mag"] is not None]
    return {
        "rate_deg_per_day": separation / days,
        "position_angle_deg": angle % 360.0,
        "mean_mag": float(np.mean(mags)) if mags else None,
    }

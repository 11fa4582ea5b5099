"""Tracklet ingest: the one service every entry point (REST, bundles, the command) goes through.

A tracklet is validated whole first (every field, every stamp decoded and rendered), then written
in one transaction, or rejected with every reason and nothing written. Re-sending the same content
is a no-op; the same night and id with other content is a conflict.
"""

from __future__ import annotations

import hashlib
import io
import json
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
from screening import tasks
from screening.models import Detection, Night, Tracklet
from screening.stamp_display import render_display_png

MIN_DETECTIONS = 3
MAX_DETECTIONS = 16
SURVEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")
DETECTION_FIELDS = ("index", "mjd", "ra", "dec", "mag", "x", "y", "stamp")
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
    display_png: bytes


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
    prepared = _prepare(tracklet)
    existing = _existing(prepared)
    if existing is not None:
        return existing
    night, _ = Night.objects.get_or_create(date=prepared.night)
    written: list[str] = []
    try:
        with transaction.atomic():
            row = Tracklet.objects.create(
                night=night,
                survey_id=prepared.survey_id,
                content_sha256=prepared.content_sha256,
                n_detections=len(prepared.detections),
                **prepared.motion,
            )
            row.pixels.name = _save(
                f"pixels/{night.date.isoformat()}/{row.pk}.npy", _stack_npy(prepared), written
            )
            row.save(update_fields=["pixels"])
            Detection.objects.bulk_create(
                [_detection_row(row, night, det, written) for det in prepared.detections]
            )
            if request_scoring:
                transaction.on_commit(tasks.request_scoring)
    except IntegrityError:
        # Another upload of the same tracklet committed first: same content is fine.
        _delete_files(written)
        existing = _existing(prepared)
        if existing is None:
            raise
        return existing
    except BaseException:
        _delete_files(written)
        raise
    return IngestResult(tracklet=row, created=True)


def _existing(prepared: _PreparedTracklet) -> IngestResult | None:
    row = Tracklet.objects.filter(night__date=prepared.night, survey_id=prepared.survey_id).first()
    if row is None:
        return None
    if row.content_sha256 != prepared.content_sha256:
        raise IngestRejected(
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
    return IngestResult(tracklet=row, created=False)


def _detection_row(
    tracklet: Tracklet, night: Night, det: _PreparedDetection, written: list[str]
) -> Detection:
    stem = f"{night.date.isoformat()}/{tracklet.pk}/{det.values['index']}"
    names = {
        "stamp": _save(f"stamps/{stem}{_stamp_suffix(det)}", det.stamp_bytes, written),
        "display": _save(f"display/{stem}.png", det.display_png, written),
    }
    return Detection(
        tracklet=tracklet,
        stamp_format=det.stamp_format,
        stamp_sha256=det.stamp_sha256,
        stamp_width=det.width,
        stamp_height=det.height,
        **det.values,
        **names,
    )


def _stack_npy(prepared: _PreparedTracklet) -> bytes:
    """The model's input for the whole tracklet: (n, 100, 100) float32, in time order."""
    buffer = io.BytesIO()
    np.save(buffer, np.stack([d.pixels for d in prepared.detections]), allow_pickle=False)
    return buffer.getvalue()


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
    rows = list(tracklet.detections)
    if not MIN_DETECTIONS <= len(rows) <= MAX_DETECTIONS:
        problems.append(
            IngestProblem(
                field="detections",
                reason=f"a tracklet needs {MIN_DETECTIONS} to {MAX_DETECTIONS} detections, "
                f"got {len(rows)}",
            )
        )
    values = [_parse_detection(i, row, problems) for i, row in enumerate(rows)]
    _check_order(values, problems)
    detections: list[_PreparedDetection] = []
    for i, (row, parsed) in enumerate(zip(rows, values, strict=True)):
        if parsed is None:
            continue
        prepared = _prepare_stamp(i, row, parsed, tracklet.stamps, problems)
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
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        problems.append(IngestProblem(field="night", reason=f"night {raw!r} is not YYYY-MM-DD"))
        return None


def _parse_survey_id(raw: Any, problems: list[IngestProblem]) -> str | None:
    if raw is None or raw == "":
        problems.append(IngestProblem(field="tracklet", reason="tracklet id is missing"))
        return None
    value = str(raw).strip()
    if not SURVEY_ID_PATTERN.match(value):
        problems.append(
            IngestProblem(
                field="tracklet",
                reason=f"tracklet id {value!r} must be 1-64 characters of letters, digits "
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
}


def _parse_detection(
    position: int, row: Mapping[str, Any], problems: list[IngestProblem]
) -> dict[str, Any] | None:
    where = f"detections[{position}]"
    if not isinstance(row, Mapping):
        problems.append(IngestProblem(field=where, reason="a detection must be an object"))
        return None
    out: dict[str, Any] = {}
    ok = True
    for name in DETECTION_FIELDS:
        raw = row.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append(IngestProblem(field=f"{where}.{name}", reason=f"{name} is missing"))
            ok = False
            continue
        if name == "stamp":
            out[name] = str(raw)
            continue
        if name == "index":
            try:
                out[name] = _as_int(raw)
            except ValueError:
                problems.append(
                    IngestProblem(field=f"{where}.index", reason=f"index {raw!r} is not an integer")
                )
                ok = False
            continue
        try:
            value = _as_float(raw)
        except ValueError:
            problems.append(
                IngestProblem(field=f"{where}.{name}", reason=f"{name} {raw!r} is not a number")
            )
            ok = False
            continue
        low, high = _RANGES[name]
        if not (math.isfinite(value) and low <= value <= high) or (name == "ra" and value == 360):
            problems.append(
                IngestProblem(
                    field=f"{where}.{name}",
                    reason=f"{name} {value!r} is outside {low:g}..{high:g}",
                )
            )
            ok = False
            continue
        out[name] = value
    return out if ok else None


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return int(str(raw).strip())


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError
    return float(raw) if isinstance(raw, int | float) else float(str(raw).strip())


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
    stamps = [v["stamp"] for v in values]  # type: ignore[index]
    if len(set(stamps)) != len(stamps):
        problems.append(
            IngestProblem(field="detections", reason="two detections name the same stamp file")
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
        display_png=render_display_png(fitted, saturation=stamp.saturation),
    )


def _content_hash(night: date, survey_id: str, detections: list[_PreparedDetection]) -> str:
    canonical = {
        "night": night.isoformat(),
        "tracklet": survey_id,
        "detections": [{**d.values, "stamp_sha256": d.stamp_sha256} for d in detections],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _motion(detections: list[_PreparedDetection]) -> dict[str, float]:
    """Rate and direction of motion between the first and last detection, and mean magnitude."""
    first, last = detections[0].values, detections[-1].values
    ra1, dec1, ra2, dec2 = (
        math.radians(float(v)) for v in (first["ra"], first["dec"], last["ra"], last["dec"])
    )
    cos_sep = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(
        ra2 - ra1
    )
    separation = math.degrees(math.acos(max(-1.0, min(1.0, cos_sep))))
    days = float(last["mjd"]) - float(first["mjd"])
    angle = math.degrees(
        math.atan2(
            math.sin(ra2 - ra1) * math.cos(dec2),
            math.cos(dec1) * math.sin(dec2) - math.sin(dec1) * math.cos(dec2) * math.cos(ra2 - ra1),
        )
    )
    return {
        "rate_deg_per_day": separation / days,
        "position_angle_deg": angle % 360.0,
        "mean_mag": float(np.mean([float(d.values["mag"]) for d in detections])),
    }

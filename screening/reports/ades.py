"""MPC reports in ADES, the IAU's format: a night's real tracklets as PSV and XML, validated with
the IAU's own `iau-ades` package before they can be kept or sent.

A report holds the detections of every tracklet judged real (every current verdict real) not in
an earlier report (only an admin re-reports one, on purpose: `report_again`), and, once
MPC_AUTO_ACCEPT is on, the unjudged tracklets scoring at least MPC_AUTO_ACCEPT_THRESHOLD,
provided the night's audited precision above that threshold (the lower bound of its exact
interval, from the verdicts given there) reaches MPC_AUTO_ACCEPT_MIN_PRECISION.
Every field is checked first (a NaN magnitude, an RA out of range: refused, naming the tracklet
and the field), then the PSV is converted to XML by
`ades.psvtoxml`, the XML validated against the submission schema by `ades.valutility`, and the
XML converted back by `ades.xmltopsv` and compared value by value. Only then is the report
stored, with its content hash, and its tracklets marked reported, in one transaction: running
it again with nothing new is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import logging
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from screening.ingest.tracklets import SAME_DETECTION_SECONDS, same_place
from screening.models import CurrentVerdict, Detection, MpcReport, Night, Tracklet, Verdict
from screening.review.audit import clopper_pearson

logger = logging.getLogger(__name__)

MJD_EPOCH = datetime.datetime(1858, 11, 17, tzinfo=datetime.UTC)
FIELDS = ["permID", "provID", "trkSub", "mode", "stn", "obsTime", "ra", "dec", "astCat", "mag",
          "band", "photCat"]  # fmt: skip
# Columns a block carries only where one of its detections has the value.
OPTIONAL_FIELDS = ["rmsRA", "rmsDec", "rmsMag", "exp"]


class AdesError(ValueError):
    """A report that cannot be made, with what is wrong."""


@dataclass(frozen=True)
class Observation:
    tracklet_id: int
    survey_id: str
    trk_sub: str
    mjd: float
    ra: float
    dec: float
    mag: float | None  # None: not measured (ingest's sentinel or missing): no mag, no band
    obs_time: str = ""  # ISO UTC mid-exposure to the millisecond; from `obs_times` when empty
    station: str = ""  # the detection's MPC code; empty: MPC_STATION
    band: str = ""  # empty: MPC_PHOTOMETRY_BAND
    exposure: float | None = None  # seconds
    rms_ra: float | None = None  # arcseconds (RA*cos Dec)
    rms_dec: float | None = None
    rms_mag: float | None = None

    @property
    def stn(self) -> str:
        return self.station or settings.MPC_STATION

    def values(self) -> dict[str, str]:
        return {
            "permID": "",
            "provID": "",
            "trkSub": self.trk_sub,
            "mode": "CCD",
            "stn": self.stn,
            "obsTime": self.obs_time or obs_times([self.mjd])[0],
            "ra": ra_text(self.ra),
            "dec": f"{self.dec:+.6f}",
            "rmsRA": _positive(self.rms_ra, 3),
            "rmsDec": _positive(self.rms_dec, 3),
            "astCat": settings.MPC_ASTROMETRY_CATALOG,
            "mag": f"{self.mag:.2f}" if self.mag is not None else "",
            "rmsMag": _positive(self.rms_mag, 3) if self.mag is not None else "",
            "band": (self.band or settings.MPC_PHOTOMETRY_BAND) if self.mag is not None else "",
            "photCat": settings.MPC_PHOTOMETRY_CATALOG if self.mag is not None else "",
            "exp": _positive(self.exposure, 2),
        }


def _positive(value: float | None, decimals: int) -> str:
    """An optional positive ADES decimal: '' when unknown, never rounded to 0."""
    if value is None:
        return ""
    return f"{max(value, 10.0**-decimals):.{decimals}f}"


def obs_times(mjds) -> list[str]:
    """ADES obsTime of UTC MJDs by astropy.time: ISO 8601, rounded (not truncated) to the
    millisecond (a float64 MJD of this era resolves about a microsecond), with UTC's Z."""
    from astropy.time import Time

    if len(mjds) == 0:
        return []
    times = Time(list(mjds), format="mjd", scale="utc", precision=3)
    return [f"{text}Z" for text in times.isot]


def ra_text(ra: float) -> str:
    """RA to the microdegree, wrapped after rounding: 359.9999996 is 0.000000, not 360.000000
    (which the ADES schema refuses)."""
    text = f"{ra:.6f}"
    return "0.000000" if float(text) >= 360.0 else text


# What the MPC's designations look like, packed and unpacked (a trkSub must not): packed
# provisional (K24A00A), extended (_QC0000), permanent (00433, A0345, ~0000), survey (PLS2040),
# comets (0001P, CJ95O010) and unpacked provisional (2024 AB12, 2024AB12).
_DESIGNATION_SHAPES = re.compile(
    r"[I-K]\d\d[A-HJ-Y][0-9A-Za-z]\d[0-9A-Za-z]"
    r"|_[0-9A-Za-z][A-HJ-Y][0-9A-Za-z]{4}"
    r"|[0-9A-Za-z~][0-9A-Za-z]{4}"
    r"|(PLS|T[123]S)\d{4}|\d{4}[PCDXIA]"
    r"|[PCDXIA][I-K]\d\d[A-HJ-Y][0-9A-Za-z]\d[0-9a-z]"
    r"|\d{4} ?[A-Z]{2}\d*"
)


def designation_shaped(name: str) -> bool:
    """Whether `name` could be read as an MPC designation (packed or not)."""
    return bool(_DESIGNATION_SHAPES.fullmatch(name))


TRK_SUB_LENGTH = 8  # ADES allows 8; packed designations have 5, 7 or (comets) 8 with a letter


def trk_sub(tracklet_id: int, prefix: str | None = None) -> str:
    """The observer's tracklet id: MPC_TRKSUB_PREFIX (this installation's: 1 to 3 letters and
    digits, a letter first) then the tracklet's database id in base 36, 8 characters in all:
    unique across installations with different prefixes, and never shaped like a designation."""
    prefix = settings.MPC_TRKSUB_PREFIX if prefix is None else prefix
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n, out = tracklet_id, ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            break
    width = TRK_SUB_LENGTH - len(prefix)
    if len(out) > width:
        raise AdesError(
            f"tracklet id {tracklet_id} does not fit an {TRK_SUB_LENGTH}-character trkSub "
            f"after the prefix {prefix!r}"
        )
    name = prefix + out.rjust(width, "0")
    if designation_shaped(name):
        raise AdesError(
            f"trkSub {name} is shaped like an MPC designation; change MPC_TRKSUB_PREFIX"
        )
    return name


def observation_check(obs: Observation) -> None:
    """Refuse a value the MPC cannot take, naming the tracklet and the field."""
    where = f"tracklet {obs.survey_id!r}"
    for name, value in (("mjd", obs.mjd), ("ra", obs.ra), ("dec", obs.dec), ("mag", obs.mag)):
        if value is None and name == "mag":
            continue  # not measured: the record has no magnitude
        if not math.isfinite(value):
            raise AdesError(f"{where}: {name} is {value}, not a number")
    if not 0.0 <= obs.ra < 360.0:
        raise AdesError(f"{where}: ra {obs.ra} is outside 0 <= ra < 360 degrees")
    if not -90.0 <= obs.dec <= 90.0:
        raise AdesError(f"{where}: dec {obs.dec} is outside -90..90 degrees")
    if obs.mag is not None and not -5.0 <= obs.mag <= 35.0:
        raise AdesError(f"{where}: mag {obs.mag} is outside the ADES range -5..35")
    if not 15_000 <= obs.mjd <= 100_000:
        raise AdesError(f"{where}: mjd {obs.mjd} is not a date of modern observation")


def psv_columns(observations: list[Observation]) -> list[str]:
    """A block's columns: the fixed ones, and each optional one some detection fills."""
    rows = [obs.values() for obs in observations]
    return FIELDS + [name for name in OPTIONAL_FIELDS if any(row[name] for row in rows)]


def blocks(observations: list[Observation]) -> list[list[Observation]]:
    """The observations by station, one ADES obsBlock each, in the order given."""
    out: dict[str, list[Observation]] = {}
    for obs in observations:
        out.setdefault(obs.stn, []).append(obs)
    return list(out.values())


def psv_text(observations: list[Observation]) -> str:
    """The report as ADES PSV: per station, a header block (the station; the rest from
    settings), then one record per detection. Observations must come grouped by station
    (`blocks`), as the XML will hold them."""
    lines = ["# version=2022"]
    for block in blocks(observations):
        lines += ["# observatory", f"! mpcCode {block[0].stn}"]
        lines += ["# submitter", f"! name {settings.MPC_SUBMITTER}"]
        lines += ["# observers", *[f"! name {name}" for name in settings.MPC_OBSERVERS]]
        lines += ["# measurers", *[f"! name {name}" for name in settings.MPC_MEASURERS]]
        lines += [
            "# telescope",
            f"! design {settings.MPC_TELESCOPE_DESIGN}",
            f"! aperture {settings.MPC_TELESCOPE_APERTURE}",
            f"! detector {settings.MPC_TELESCOPE_DETECTOR}",
        ]
        columns = psv_columns(block)
        lines.append("|".join(columns))
        for obs in block:
            values = obs.values()
            lines.append("|".join(values[name] for name in columns))
    return "\n".join(lines) + "\n"


def _schema():
    from ades import adesutility

    global _SUBMIT_SCHEMA
    if _SUBMIT_SCHEMA is None:
        master = adesutility.readXML(adesutility.adesmaster)
        xslt = adesutility.readXML(adesutility.schemaxslts["submit"])
        _SUBMIT_SCHEMA = adesutility.XMLtoSchemaViaXSLT(master, xslt)
    return _SUBMIT_SCHEMA


_SUBMIT_SCHEMA = None


def xml_validate(xml: str, observations: list[Observation] | None = None) -> None:
    """Validate ADES XML against the submission schema iau-ades builds from its master file.

    With the report's observations, a refusal names the tracklet, the detection and the field
    (iau-ades names an XML line)."""
    from ades.valutility import validate_schema
    from lxml import etree

    try:
        candidate = etree.ElementTree(etree.fromstring(xml.encode()))
    except etree.XMLSyntaxError as exc:
        raise AdesError(f"the report is not well-formed XML: {exc}") from None
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its traceback as well
        failure = validate_schema("submit", _schema(), candidate, io.StringIO())
    if failure:
        reason = failure.strip().splitlines()[-1]
        where = _refused_where(xml, reason, observations or [])
        raise AdesError(f"iau-ades refused the report: {where}{reason}")


def _refused_where(xml: str, reason: str, observations: list[Observation]) -> str:
    """'tracklet 'X' detection N, field F: ' for the observation holding the line iau-ades
    names, or '' when it names none of them."""
    line = re.search(r"line (\d+)\s*$", reason)
    field = re.search(r"Element '(\w+)'", reason)
    if line is None or not observations:
        return ""
    lines = xml.splitlines()[: int(line.group(1))]
    opened = [i for i, text in enumerate(lines) if text.strip() == "<optical>"]
    if not opened:
        return ""
    number = len(opened) - 1  # the records are in the observations' order
    if number >= len(observations):
        return ""
    obs = observations[number]
    index = sum(1 for o in observations[:number] if o.tracklet_id == obs.tracklet_id)
    named = f", field {field.group(1)}" if field else ""
    return f"tracklet {obs.survey_id!r} (trkSub {obs.trk_sub}) detection {index}{named}: "


def _convert(module: str, text: str, suffixes: tuple[str, str]) -> str:
    """Run one of iau-ades's converters on `text` in a process of its own: they keep state in
    module globals (a second call in one process fails) and call sys.exit on bad input."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, f"in.{suffixes[0]}"), Path(folder, f"out.{suffixes[1]}")
        source.write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", f"ades.{module}", str(source), str(target)],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
        if done.returncode != 0 or not target.exists():
            said = (done.stdout + done.stderr).strip().splitlines()
            reason = said[-1] if said else f"exit status {done.returncode}"
            raise AdesError(f"iau-ades's {module} could not convert the report: {reason}")
        return target.read_text()


def psv_to_xml(psv: str) -> str:
    """Convert PSV to ADES XML with iau-ades's own converter."""
    return _convert("psvtoxml", psv, ("psv", "xml"))


def xml_records(xml: str) -> list[dict[str, str]]:
    """The observation records of ADES XML, as iau-ades's converter writes them back to PSV."""
    text = _convert("xmltopsv", xml, ("xml", "psv"))
    records: list[dict[str, str]] = []
    keys: list[str] | None = None
    after_header = True
    for line in (line for line in text.splitlines() if line.strip()):
        if line.startswith(("#", "!")):  # a block's header: its column line comes next
            after_header = True
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if after_header:
            keys, after_header = cells, False
            continue
        records.append(dict(zip(keys or [], cells, strict=True)))
    return records


def round_trip_check(observations: list[Observation], xml: str) -> None:
    """The XML, read back through iau-ades, gives the values the report was made from."""
    back = xml_records(xml)
    if len(back) != len(observations):
        raise AdesError(f"round trip: {len(back)} records back for {len(observations)} sent")
    for obs, record in zip(observations, back, strict=True):
        sent = obs.values()
        for name in FIELDS + OPTIONAL_FIELDS:
            a, b = sent[name], record.get(name, "")
            same = a == b
            if not same and name in ("ra", "dec", "mag", *OPTIONAL_FIELDS):
                same = b != "" and abs(float(a) - float(b)) < 1e-9
            if not same:
                raise AdesError(
                    f"round trip: {obs.survey_id} {name} went out {a!r}, came back {b!r}"
                )


def _judged_real() -> Q:
    real = CurrentVerdict.objects.filter(tracklet=OuterRef("pk"), value=Verdict.Value.REAL)
    bogus = CurrentVerdict.objects.filter(tracklet=OuterRef("pk"), value=Verdict.Value.BOGUS)
    return Q(Exists(real)) & ~Q(Exists(bogus))


def auto_accept_precision(night: Night) -> tuple[int, int, float]:
    """Judged tracklets of the night above the auto-accept threshold: (real, judged, lower
    bound of the precision at AUDIT_CONFIDENCE)."""
    above = Tracklet.objects.filter(
        night=night, score__gte=settings.MPC_AUTO_ACCEPT_THRESHOLD, n_reviews__gt=0
    )
    judged = above.count()
    real = above.filter(_judged_real()).count()
    low, _ = clopper_pearson(real, judged, settings.AUDIT_CONFIDENCE)
    return real, judged, low


def report_candidates(night: Night) -> tuple[list[Tracklet], int]:
    """The tracklets a report of the night would hold, and how many of them by auto-accept."""
    todo = Tracklet.objects.filter(night=night, report__isnull=True)
    chosen = list(todo.filter(_judged_real()).order_by("id"))
    auto = 0
    if settings.MPC_AUTO_ACCEPT:
        _, _, low = auto_accept_precision(night)
        if low >= settings.MPC_AUTO_ACCEPT_MIN_PRECISION:
            extra = list(
                todo.filter(n_reviews=0, score__gte=settings.MPC_AUTO_ACCEPT_THRESHOLD).order_by(
                    "id"
                )
            )
            auto = len(extra)
            chosen = sorted(chosen + extra, key=lambda t: t.pk)
    return chosen, auto


def tracklet_observations(tracklets: list[Tracklet]) -> list[Observation]:
    """The detections of the tracklets as observations, grouped by station (one obsBlock
    each), mid-exposure times by astropy."""
    names = {t.pk: t.survey_id for t in tracklets}
    rows = list(
        Detection.objects.filter(tracklet_id__in=names)
        .order_by("tracklet_id", "index")
        .values(
            "tracklet_id", "mjd", "ra", "dec", "mag", "station", "band", "exposure", "time_ref",
            "rms_ra", "rms_dec", "rms_mag",
        )
    )  # fmt: skip
    mids = [mid_exposure(row) for row in rows]
    plausible = all(math.isfinite(m) and 15_000 <= m <= 100_000 for m in mids)
    # a bad mjd is refused by name in observation_check; astropy is not asked to convert it
    times = obs_times(mids) if plausible else [""] * len(rows)
    observations = [
        Observation(
            row["tracklet_id"], names[row["tracklet_id"]], trk_sub(row["tracklet_id"]),
            row["mjd"], row["ra"], row["dec"], row["mag"], when, row["station"], row["band"],
            row["exposure"], row["rms_ra"], row["rms_dec"], row["rms_mag"],
        )
        for row, when in zip(rows, times, strict=True)
    ]  # fmt: skip
    return [obs for block in blocks(observations) for obs in block]


def mid_exposure(detection: dict) -> float:
    """The detection's mid-exposure MJD (ADES obsTime): its mjd, or with time_ref 'start' its
    mjd plus half the exposure."""
    if detection.get("time_ref") == "start" and detection.get("exposure"):
        return detection["mjd"] + detection["exposure"] / 2 / 86400.0
    return detection["mjd"]


# One detection sent twice (the same detections ingested under two nights or two ids): within
# half a second and one arcsecond of a detection already reported, or earlier in this report.
DUPLICATE_SECONDS = SAME_DETECTION_SECONDS


@dataclass(frozen=True)
class Linked:
    """A tracklet left out of a report because its detections were reported already: it is
    linked to the report that holds them (its `report`), never sent twice."""

    survey_id: str
    detections: tuple[int, ...]  # its detections (indexes) that repeat reported ones
    earlier: str  # the survey id of the tracklet that holds them
    report_id: int | None  # that tracklet's report (None: the report being made)

    def __str__(self) -> str:
        where = f"report {self.report_id}" if self.report_id else "this report"
        shown = ", ".join(map(str, self.detections))
        return (
            f"tracklet {self.survey_id!r} left out: its detection(s) {shown} are those of "
            f"tracklet {self.earlier!r} in {where}"
        )


def _same_detection(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    (mjd_a, ra_a, dec_a), (mjd_b, ra_b, dec_b) = a, b
    if abs(mjd_a - mjd_b) * 86400.0 > DUPLICATE_SECONDS:
        return False
    return same_place(ra_a, dec_a, ra_b, dec_b)


def duplicates_left_out(
    tracklets: list[Tracklet], observations: list[Observation]
) -> tuple[list[Tracklet], list[Linked]]:
    """Split the candidates into those to report and those whose detections repeat detections
    already reported (in any night, under any id) or of an earlier candidate."""
    finite = [o.mjd for o in observations if math.isfinite(o.mjd)]
    if not finite:
        return tracklets, []
    window = DUPLICATE_SECONDS / 86400.0
    reported = (
        Detection.objects.filter(
            tracklet__report__isnull=False, mjd__gte=min(finite) - window,
            mjd__lte=max(finite) + window,
        )
        .exclude(tracklet__in=tracklets)
        .values_list("tracklet__survey_id", "tracklet__report_id", "mjd", "ra", "dec")
    )  # fmt: skip
    # by time bucket (DUPLICATE_SECONDS wide): a detection is compared with its own bucket and
    # the two beside it, not with every detection seen
    seen: dict[int, list[tuple[str, int | None, tuple[float, float, float]]]] = {}

    def bucket(mjd: float) -> int:
        return math.floor(mjd * 86400.0 / DUPLICATE_SECONDS)

    def remember(name: str, report: int | None, mjd: float, ra: float, dec: float) -> None:
        seen.setdefault(bucket(mjd), []).append((name, report, (mjd, ra, dec)))

    for name, report, mjd, ra, dec in reported:
        remember(name, report, mjd, ra, dec)
    by_tracklet: dict[int, list[Observation]] = {}
    for obs in observations:
        by_tracklet.setdefault(obs.tracklet_id, []).append(obs)
    kept, linked = [], []
    for tracklet in tracklets:
        mine = by_tracklet.get(tracklet.pk, [])
        repeats = [
            (index, match)
            for index, obs in enumerate(mine)
            if math.isfinite(obs.mjd)
            for near in (-1, 0, 1)
            for match in seen.get(bucket(obs.mjd) + near, ())
            if _same_detection((obs.mjd, obs.ra, obs.dec), match[2])
        ]
        if repeats:
            name, report, _ = repeats[0][1]
            indexes = tuple(sorted({index for index, _ in repeats}))
            linked.append(Linked(tracklet.survey_id, indexes, name, report))
            continue
        kept.append(tracklet)
        for o in mine:
            if math.isfinite(o.mjd):
                remember(tracklet.survey_id, None, o.mjd, o.ra, o.dec)
    return kept, linked


@dataclass(frozen=True)
class ReportResult:
    report: MpcReport | None
    created: bool
    linked: tuple[Linked, ...] = ()


def report_build(*, night: Night, user=None) -> ReportResult:
    """Make, validate and keep the night's report of what is not reported yet (see the module).

    Nothing new to report: the latest report, not created. A field the MPC cannot take raises
    AdesError before anything is written.
    """
    with transaction.atomic():
        Night.objects.select_for_update().get(pk=night.pk)
        tracklets, auto = report_candidates(night)
        if not tracklets:
            return ReportResult(night.reports.first(), created=False)
        observations = tracklet_observations(tracklets)
        kept, linked = duplicates_left_out(tracklets, observations)
        if linked:
            _link(linked, tracklets, None)
            auto -= sum(1 for t in tracklets if t not in kept and t.n_reviews == 0)
            tracklets = kept
            observations = [o for o in observations if o.tracklet_id in {t.pk for t in kept}]
            if not tracklets:
                return ReportResult(night.reports.first(), created=False, linked=tuple(linked))
        psv, xml = _validated(observations)
        digest = hashlib.sha256(xml.encode()).hexdigest()
        existing = MpcReport.objects.filter(content_sha256=digest).first()
        if existing is not None:
            return ReportResult(existing, created=False)
        report = _report_create(
            night.pk, tracklets, observations, psv, xml, digest, user, auto_accepted=auto
        )
        Tracklet.objects.filter(pk__in=[t.pk for t in tracklets]).update(report=report)
        if linked:
            _link(linked, [], report)
    return ReportResult(report, created=True, linked=tuple(linked))


def _validated(observations: list[Observation]) -> tuple[str, str]:
    """The observations' PSV and XML, every field checked, the XML validated by iau-ades and
    read back to the same values; AdesError naming what is wrong otherwise."""
    for obs in observations:
        observation_check(obs)
    psv = psv_text(observations)
    xml = psv_to_xml(psv)
    xml_validate(xml, observations)
    round_trip_check(observations, xml)
    return psv, xml


def _report_create(night_id, tracklets, observations, psv, xml, digest, user, **extra):
    """Store a validated report: its files, counts, and the time from its first detection."""
    first = min(obs.mjd for obs in observations)
    now = timezone.now()
    return MpcReport.objects.create(
        night_id=night_id,
        psv=psv,
        xml=xml,
        content_sha256=digest,
        n_tracklets=len(tracklets),
        n_observations=len(observations),
        first_detection_mjd=first,
        latency_seconds=(now - (MJD_EPOCH + datetime.timedelta(days=first))).total_seconds(),
        created_by=user if user is not None and user.is_authenticated else None,
        **extra,
    )


def report_again(*, tracklets: list[Tracklet], reason: str, user) -> MpcReport:
    """An admin's deliberate re-report: tracklets reported before go out again, in a report of
    their own that names them and keeps the reason (a corrected measurement, a report the MPC
    lost). Nothing else sends an observation twice: `report_build` leaves reported ones out."""
    reason = reason.strip()
    if not reason:
        raise AdesError("a re-report needs a reason: why the MPC should take them again")
    if not tracklets:
        raise AdesError("a re-report needs at least one tracklet")
    nights = {t.night_id for t in tracklets}
    if len(nights) > 1:
        raise AdesError("a re-report holds tracklets of one night")
    fresh = [t.survey_id for t in tracklets if t.report_id is None]
    if fresh:
        raise AdesError(
            f"tracklet(s) {', '.join(map(repr, fresh))} were never reported: they go into the "
            "night's next report, not a re-report"
        )
    tracklets = sorted(tracklets, key=lambda t: t.pk)
    observations = tracklet_observations(tracklets)
    psv, xml = _validated(observations)
    # the same observations as an earlier report: its own hash, said to be a re-report
    stamp = timezone.now().isoformat()
    digest = hashlib.sha256(f"{xml}\nre-reported {stamp}".encode()).hexdigest()
    with transaction.atomic():
        report = _report_create(
            nights.pop(), tracklets, observations, psv, xml, digest, user, again_reason=reason
        )
        report.again.set(tracklets)
    logger.info("report %s re-reports %s: %s", report.pk, [t.survey_id for t in tracklets],
                reason)  # fmt: skip
    return report


def _link(linked: list[Linked], candidates: list[Tracklet], new: MpcReport | None) -> None:
    """Mark linked tracklets reported by the report that holds their detections: an earlier one
    now; those repeating a tracklet of the report being made, once it is stored (`new`)."""
    night_ids = {t.survey_id: t.pk for t in candidates}
    for item in linked:
        if item.report_id is not None and new is None:
            Tracklet.objects.filter(pk=night_ids[item.survey_id]).update(report_id=item.report_id)
        elif item.report_id is None and new is not None:
            Tracklet.objects.filter(report__isnull=True, night=new.night,
                                    survey_id=item.survey_id).update(report=new)  # fmt: skip
        if new is None:
            logger.info("%s", item)


class DryRunSender:
    """Sends nothing (nothing here can reach the MPC): records what would have been sent."""

    status = MpcReport.Status.DRY_RUN

    def send(self, report: MpcReport) -> str:
        return (
            f"dry run: {len(report.xml.encode())} bytes of ADES XML "
            f"({report.n_observations} observations, sha256 {report.content_sha256[:12]}) "
            "not sent; set MPC_SENDER to a sender class to submit"
        )


def sender_path(setting: str) -> str:
    """The sender class's dotted path; one written before this module moved to
    `screening.reports` (`screening.ades.X`, in deployed settings) still names it."""
    old = "screening.ades."
    return "screening.reports.ades." + setting[len(old) :] if setting.startswith(old) else setting


def report_send(*, report: MpcReport) -> MpcReport:
    """Send a valid report with the configured sender (a dry run by default); validated again."""
    xml_validate(report.xml)
    sender = import_string(sender_path(settings.MPC_SENDER))()
    message = sender.send(report)
    report.status = getattr(sender, "status", MpcReport.Status.SENT)
    report.sent_at = timezone.now()
    report.send_log = (report.send_log + "\n" if report.send_log else "") + message
    report.save(update_fields=["status", "sent_at", "send_log"])
    return report


def night_latency(night: Night) -> dict:
    """From the night's first detection to its first valid report, and how many reports."""
    reports = night.reports.aggregate(n=Count("id"))
    first = night.reports.order_by("created_at").first()
    return {
        "reports": reports["n"],
        "latency_seconds": first.latency_seconds if first else None,
        "first_report_at": first.created_at if first else None,
    }

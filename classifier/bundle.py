"""Write simulated nights as night bundles: the same door a survey's data comes through.

Layout of a bundle directory::

    manifest.jsonl   one JSON object per detection (night, tracklet, index, mjd, ra, dec, mag,
                     x, y, stamp); the only file the ingest reads
    stamps/          difference stamps, float32 FITS in ADU, SATURATE keyword where saturated
    truth.jsonl      the simulator's truth, one row per tracklet (ignored by the ingest)
    images/          optional science and reference stamps (not referenced by the manifest)
    params.json      simulator parameters and counts of this build
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from classifier.simulate import SimConfig, StampSample
from classifier.tracklets import PlanetField, Tracklet, make_tracklet, night_mix


def fits_bytes(
    pixels: np.ndarray, saturate: float | None = None, header: dict[str, Any] | None = None
) -> bytes:
    """A float32 primary-HDU FITS file; NaN stays NaN (chip edge, masked pixels)."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(pixels, dtype=np.float32))
    if saturate is not None:
        hdu.header["SATURATE"] = (float(saturate), "ADU level at/above which pixels saturated")
    for key, value in (header or {}).items():
        hdu.header[key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_stamp(path: Path, sample: StampSample, gz: bool) -> None:
    data = fits_bytes(sample.difference, sample.saturate, {"BUNIT": "ADU"})
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


def write_bundle(
    out: Path,
    night: str,
    tracklets: list[Tracklet],
    *,
    gz: bool = False,
    keep_images: bool = False,
    params: dict[str, Any] | None = None,
) -> Path:
    """Write tracklets as a night bundle in directory `out`; return the manifest path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "stamps").mkdir(exist_ok=True)
    if keep_images:
        (out / "images").mkdir(exist_ok=True)
    suffix = ".fits.gz" if gz else ".fits"
    manifest_rows, truth_rows = [], []
    for tracklet in tracklets:
        for det in tracklet.detections:
            rel = f"stamps/{tracklet.tracklet_id}_{det.index}{suffix}"
            _write_stamp(out / rel, det.stamp, gz)
            if keep_images:
                stem = f"images/{tracklet.tracklet_id}_{det.index}"
                (out / f"{stem}_science.fits").write_bytes(fits_bytes(det.stamp.science))
                (out / f"{stem}_reference.fits").write_bytes(fits_bytes(det.stamp.reference))
            manifest_rows.append(
                {
                    "night": night,
                    "tracklet": tracklet.tracklet_id,
                    "index": det.index,
                    "mjd": round(det.mjd, 7),
                    "ra": round(det.ra, 7),
                    "dec": round(det.dec, 7),
                    "mag": round(det.mag, 3),
                    "x": round(det.x, 3),
                    "y": round(det.y, 3),
                    "fwhm_px": round(det.fwhm_px, 3),
                    "stamp": rel,
                }
            )
        truth_rows.append(
            {
                "tracklet": tracklet.tracklet_id,
                "real": tracklet.real,
                "kind": tracklet.kind,
                "classes": tracklet.classes,
                "latents": _jsonable(tracklet.latents),
                "detections": [_jsonable(d.stamp.latents) for d in tracklet.detections],
            }
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in manifest_rows))
    (out / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth_rows))
    summary = {
        "night": night,
        "tracklets": len(tracklets),
        "real": sum(t.real for t in tracklets),
        "kinds": dict(Counter(t.kind for t in tracklets)),
        "classes": dict(Counter(c for t in tracklets for c in t.classes)),
        **(params or {}),
    }
    (out / "params.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return manifest


def _tracklet_job(job: tuple) -> Tracklet:
    seed, index, real, cfg, field, mjd = job
    # Glare comes in clusters (simulator.md): only tracklets in a planet's field have any.
    tracklet = make_tracklet(
        seed,
        index,
        real,
        cfg,
        glare=False,
        night_mjd=mjd,
        field=None if field is None else field[1],
    )
    if field is not None:
        tracklet.latents["planet_field"] = field[0]
    return tracklet


PLANET_FIELD_TRACKLETS = 200  # tracklets of a night in one field near a planet


def planet_fields(
    seed: int, n_tracklets: int, planet_fraction: float
) -> list[tuple[int, PlanetField] | None]:
    """Which tracklets of a night lie in a field near a bright planet, and which field:
    round(n * planet_fraction) of them, in fields of about PLANET_FIELD_TRACKLETS each."""
    if not 0.0 <= planet_fraction <= 1.0:
        raise ValueError(f"planet_fraction must be in [0, 1], got {planet_fraction}")
    rng = np.random.default_rng([seed, 2, 2**31 - 2])
    n_planet = int(round(n_tracklets * planet_fraction))
    out: list[tuple[int, PlanetField] | None] = [None] * n_tracklets
    if not n_planet:
        return out
    n_fields = max(1, round(n_planet / PLANET_FIELD_TRACKLETS))
    fields = [PlanetField.draw(rng) for _ in range(n_fields)]
    chosen = rng.choice(n_tracklets, n_planet, replace=False)
    for k, index in enumerate(sorted(chosen)):
        f = k * n_fields // n_planet
        out[int(index)] = (f, fields[f])
    return out


def simulate_night(
    out: Path,
    *,
    seed: int,
    night: str,
    n_tracklets: int,
    real_fraction: float = 0.02,
    planet_fraction: float = 0.0,
    gz: bool = False,
    keep_images: bool = False,
    cfg: SimConfig | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Simulate one night of unknown tracklets and write it as a bundle; return the manifest.

    A share `planet_fraction` of the tracklets lies in fields near a bright planet, where most
    bogus tracklets are its glare (the artifact the first model has no class for); the rest of
    the night has no glare. `workers` processes simulate in parallel (default: every core);
    each tracklet depends only on (seed, index), so the night is the same whatever the number
    of workers.
    """
    import os
    from datetime import date

    from classifier.datasets import _pool_map

    cfg = cfg or SimConfig()
    mjd = float((date.fromisoformat(night) - date(1858, 11, 17)).days)
    flags = night_mix(seed, n_tracklets, real_fraction)
    fields = planet_fields(seed, n_tracklets, planet_fraction)
    jobs = [(seed, i, bool(real), cfg, fields[i], mjd) for i, real in enumerate(flags)]
    workers = min(workers or os.cpu_count() or 1, max(1, len(jobs) // 20))
    tracklets = list(_pool_map(_tracklet_job, jobs, workers, f"night {night}", progress))
    params = {
        "seed": seed,
        "real_fraction": real_fraction,
        "planet_fraction": planet_fraction,
        "planet_fields": len({f[0] for f in fields if f is not None}),
        "glare_tracklets": sum(is_glare_tracklet(t) for t in tracklets),
        "simulator": cfg.to_dict(),
    }
    return write_bundle(out, night, tracklets, gz=gz, keep_images=keep_images, params=params)


def is_glare_tracklet(tracklet: Tracklet) -> bool:
    """A bogus tracklet of a planet's glare: knots along one band, every stamp GLARE."""
    return not tracklet.real and tracklet.latents.get("correlated_kind") == "glare"

"""Test data makers: small deterministic stamps in every accepted format, tracklets and bundles."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from PIL import Image

NIGHT = "2026-11-24"


def stamp_pixels(seed: int, size: int = 100, *, source_flux: float = 400.0) -> np.ndarray:
    """Gaussian noise with a point source at the centre: what a detection stamp looks like."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 10.0, (size, size))
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    image += source_flux / (2 * np.pi * 1.5**2) * np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / 4.5)
    return image.astype(np.float32)


def fits_bytes(
    pixels: np.ndarray, *, big_endian: bool = True, gz: bool = False, saturate: float | None = None
) -> bytes:
    data = pixels.astype(">f4" if big_endian else "<f4")
    hdu = fits.PrimaryHDU(data)
    if saturate is not None:
        hdu.header["SATURATE"] = saturate
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def png_bytes(pixels: np.ndarray) -> bytes:
    scaled = np.clip((pixels - pixels.min()) / (np.ptp(pixels) or 1) * 65535, 0, 65535)
    buffer = io.BytesIO()
    Image.fromarray(scaled.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, pixels)
    return buffer.getvalue()


def night_mjd(night: str) -> float:
    """The MJD of the night's date at 00:00 UTC (at T08, the night runs from 22:22 UTC the day
    before to 22:22 UTC that day)."""
    return float((date.fromisoformat(night) - date(1858, 11, 17)).days)


def detection_rows(
    survey_id: str, n: int = 4, *, seed: int = 0, night: str = NIGHT
) -> list[dict[str, Any]]:
    """Detections of a mover at 1 degree/day, 15 minutes apart, stamps named `<id>_<i>.fits`,
    observed in the night `night` (from 09:36 UTC of its date)."""
    rng = np.random.default_rng(seed)
    ra0, dec0 = 40.0 + rng.uniform(0, 10), -5.0 + rng.uniform(0, 10)
    rows = []
    for i in range(n):
        dt = i * 15 / 1440
        rows.append(
            {
                "index": i,
                "mjd": night_mjd(night) + 0.4 + dt,
                "ra": ra0 + dt * 0.8,
                "dec": dec0 + dt * 0.6,
                "mag": 19.0 + rng.normal(0, 0.05),
                "x": 5000.0 + i * 20,
                "y": 3000.0 + i * 15,
                "stamp": f"{survey_id}_{i}.fits",
            }
        )
    return rows


def stamp_files(survey_id: str, n: int = 4, *, seed: int = 0) -> dict[str, bytes]:
    return {f"{survey_id}_{i}.fits": fits_bytes(stamp_pixels(seed * 100 + i)) for i in range(n)}


def write_bundle(
    folder: Path, tracklets: list[str], *, night: str = NIGHT, csv_manifest: bool = False
) -> Path:
    """Write a bundle directory of the given tracklet ids (4 detections each)."""
    (folder / "stamps").mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, survey_id in enumerate(tracklets):
        for name, data in stamp_files(survey_id, seed=seed).items():
            (folder / "stamps" / name).write_bytes(data)
        for row in detection_rows(survey_id, seed=seed, night=night):
            rows.append(
                {"night": night, "tracklet": survey_id, **row, "stamp": f"stamps/{row['stamp']}"}
            )
    if csv_manifest:
        keys = list(rows[0])
        lines = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]
        (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    else:
        (folder / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


PAPER_CLASSES = ["BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET"]


def ingest_tracklet(survey_id: str, *, seed: int = 0, night: str = NIGHT, n: int = 4):
    """Store a tracklet through the real ingest service; return it."""
    rows = detection_rows(survey_id, n, seed=seed, night=night)
    return ingest_rows(survey_id, rows, stamp_files(survey_id, n, seed=seed), night=night)


def ingest_rows(survey_id: str, rows: list[dict], files: dict[str, bytes], *, night: str = NIGHT):
    """Store a tracklet of these detection rows and stamp files (name: bytes) through the real
    ingest service; return it."""
    from screening.ingest.tracklets import TrackletInput, stamp_from_bytes, tracklet_ingest

    return tracklet_ingest(
        tracklet=TrackletInput(
            night=night,
            survey_id=survey_id,
            detections=rows,
            stamps={name: stamp_from_bytes(name, data) for name, data in files.items()},
        )
    ).tracklet


def model_version(version: str = "a" * 64, *, threshold: float = 0.8, active: bool = True):
    from screening.models import ModelVersion

    return ModelVersion.objects.create(
        version=version,
        checkpoint=f"/models/{version}.pt",
        classes=PAPER_CLASSES,
        threshold=threshold,
        is_active=active,
    )


def score_tracklet(
    tracklet,
    model,
    *,
    score: float,
    top_class: str = "AST",
    top: float = 0.9,
    unlike_training: str = "",
    not_moving: str = "",
):
    """Store a model's output for a tracklet through the real scoring service (`unlike_training`:
    the model's reason why it is unlike its training data; `not_moving`: the motion rule's)."""
    from screening.scoring.store import TrackletResult, scores_store

    rest = (1 - top) / (len(PAPER_CLASSES) - 1)
    row = [top if c == top_class else rest for c in PAPER_CLASSES]
    scores_store(
        model_version=model,
        results=[
            TrackletResult(
                tracklet_id=tracklet.pk,
                stamp_probabilities=[row] * tracklet.n_detections,
                score=score,
                unlike_training=unlike_training,
                not_moving=not_moving,
            )
        ],
    )
    tracklet.refresh_from_db()
    return tracklet


def glare_labelled_setup(models_dir: Path, *, tracklets: int, real: int):
    """What a retraining run needs: an active (untrained) model, an admin-added GLARE class,
    and a reviewer's verdicts on `tracklets` tracklets (the first `real` real, the rest bogus
    with every stamp labelled GLARE). Returns the active model version."""
    from screening.models import StampClass
    from screening.registry.versions import model_activate_and_rescore, model_register
    from screening.review.verdicts import stamp_label_record, verdict_record
    from tests.conftest import make_user
    from tests.untrained_model import make_checkpoint

    active = model_register(path=make_checkpoint(models_dir, seed=0))
    model_activate_and_rescore(version=active.version)
    StampClass.objects.create(name="GLARE", is_real=False)
    reviewer = make_user("rev", "reviewer")
    for i in range(tracklets):
        tracklet = ingest_tracklet(f"T{i}", seed=i)
        verdict_record(
            tracklet_id=tracklet.pk, reviewer=reviewer, value="real" if i < real else "bogus"
        )
        if i >= real:
            for detection in tracklet.detections.all():
                stamp_label_record(detection_id=detection.pk, reviewer=reviewer, class_name="GLARE")
    return active

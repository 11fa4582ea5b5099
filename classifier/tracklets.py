"""Tracklets and nights: real movers with consistent motion and metadata, and the bogus mixes.

A tracklet is a pure function of (seed, index) (stream ``STREAM_TRACKLETS``). Real tracklets keep
only the exposures where the survey's PSF matched filter reaches the detection threshold, as a
survey would; bogus ones are independent bogus draws, correlated bogus (knots along one spike, burn
or glare band; a variable star, i.e. a mover at rate zero) or mixed linkages of two real asteroid
detections with bogus ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classifier.render import draw_conditions, next_exposure
from classifier.simulate import (
    STREAM_TRACKLETS,
    SimConfig,
    StampSample,
    log_uniform,
    make_stamp,
    power_law,
    stamp_rng,
)

PIXEL_SCALE = 1.86  # arcsec / px
EXPOSURE_S = 30.0
CADENCE_DAYS = 15.0 / (24 * 60)
CHIP = 10560  # px (ATLAS STA-1600)
ZERO_POINT = 26.0  # mag of 1 e- in one exposure [tune]

INDEPENDENT_MIX = {"NOISE": 0.40, "CR": 0.20, "SCAR": 0.20, "SPIKE": 0.08, "BURN": 0.07,
                   "GLARE": 0.05}
BOGUS_KINDS = {"independent": 0.75, "correlated": 0.20, "mixed": 0.05}
CORRELATED_KINDS = {"spike": 0.35, "burn": 0.30, "glare": 0.15, "variable": 0.20}
DETECTION_COUNTS = {3: 0.12, 4: 0.70, 5: 0.08, 6: 0.05, 7: 0.03, 8: 0.02}


@dataclass
class Detection:
    """One detection: survey metadata and its stamp sample."""

    index: int
    mjd: float
    ra: float
    dec: float
    mag: float
    x: float
    y: float
    stamp: StampSample


@dataclass
class Tracklet:
    """A linked set of detections; `kind` is 'real' or the bogus kind (independent, ...)."""

    tracklet_id: str
    real: bool
    kind: str
    detections: list[Detection]
    latents: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return [d.stamp.cls for d in self.detections]


def _choice(rng: np.random.Generator, weights: dict[str, float], exclude: tuple[str, ...] = ()):
    keys = [k for k in weights if k not in exclude]
    p = np.array([weights[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _n_exposures(rng: np.random.Generator) -> int:
    return int(_choice(rng, {str(k): v for k, v in DETECTION_COUNTS.items()}))


def _trail_px(rate_deg_day: float) -> float:
    """Trail length in px during one exposure at a rate in degrees/day."""
    return rate_deg_day * 3600.0 / PIXEL_SCALE * EXPOSURE_S / 86400.0


def _metadata(rng: np.random.Generator, n: int, rate_px_day: float, angle: float,
              mjd0: float) -> list[tuple[float, float, float, float, float]]:
    """(mjd, ra, dec, x, y) for n detections of a linear mover on the chip."""
    ra0, dec0 = float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-0.5, 0.98))))
    times = mjd0 + np.arange(n) * CADENCE_DAYS + rng.normal(0, 20 / 86400, n)
    span = rate_px_day * (times[-1] - times[0])
    margin = min(200 + span, CHIP / 2 - 1)
    x0, y0 = rng.uniform(margin, CHIP - margin, 2)
    out = []
    for t in times:
        dt = t - times[0]
        x = x0 + rate_px_day * dt * math.cos(angle)
        y = y0 + rate_px_day * dt * math.sin(angle)
        dec = dec0 + (y - CHIP / 2) * PIXEL_SCALE / 3600
        ra = (ra0 + (x - CHIP / 2) * PIXEL_SCALE / 3600 / math.cos(math.radians(dec))) % 360
        out.append((float(t), float(ra), float(dec), float(x), float(y)))
    return out


def _magnitude(sample: StampSample) -> float:
    """An instrumental magnitude from the detection's flux (measured for bogus, true for real)."""
    flux = sample.latents.get("flux") or sample.latents["det_sigma"] * 50.0
    return float(ZERO_POINT - 2.5 * math.log10(max(flux, 1.0)))


def _real(rng: np.random.Generator, cfg: SimConfig) -> tuple[list[StampSample], dict[str, Any]]:
    """Draw real movers until one is detected at least 3 times (the survey's selection)."""
    for attempt in range(100):
        n = _n_exposures(rng)
        cond = draw_conditions(rng, cfg.conditions)
        rate = log_uniform(rng, 0.05, 60.0)
        angle = float(rng.uniform(0, 2 * math.pi))
        comet = bool(rng.random() < 0.04)
        snr = power_law(rng, *(cfg.comet_snr_range if comet else cfg.snr_range),
                        cfg.comet_snr_slope if comet else cfg.snr_slope)
        amp, period, phase = rng.uniform(0, 0.15), rng.uniform(0.1, 0.5), rng.uniform(0, 6.3)
        trail = _trail_px(rate)
        comet_shape: dict[str, Any] = {}
        samples = []
        fwhm0, sky0 = cond.sci_psf.fwhm, cond.sky
        for i in range(n):
            if i:
                cond = next_exposure(cond, rng, cfg.conditions)
            t = i * CADENCE_DAYS
            flux_factor = (1 + amp * math.sin(2 * math.pi * t / period + phase)) * (
                1 + rng.normal(0, 0.03))
            # Same flux, new seeing and sky: the SNR scales as 1 / (FWHM * sqrt(sky)).
            snr_i = snr * flux_factor * fwhm0 / cond.sci_psf.fwhm * math.sqrt(sky0 / cond.sky)
            if comet:
                cls = "COMET"
                fixed = {"snr": snr_i, **comet_shape}
            else:
                cls = "AST" if trail < cond.sci_psf.fwhm else "STREAK"
                fixed = {"snr": snr_i, "length": trail, "angle": angle % math.pi}
            sample = make_stamp(cls, rng, cfg, cond, fixed)
            if comet and not comet_shape:
                comet_shape = {k: sample.latents[k] for k in (
                    "coma_radius", "nucleus_fraction", "tail_angle", "tail_length",
                    "tail_opening", "tail_fraction")}
            sample.latents["exposure"] = i
            samples.append(sample)
        detected = [s for s in samples if s.latents["det_sigma"] >= cfg.detection_threshold]
        if len(detected) >= 3:
            latents = {"rate_deg_day": rate, "angle": angle, "snr": snr, "trail_px": trail,
                       "comet": comet, "exposures": n, "attempts": attempt + 1}
            return detected, latents
    raise RuntimeError("no detectable real mover in 100 draws")  # pragma: no cover


def _correlated(rng: np.random.Generator, cfg: SimConfig, n: int, glare: bool):
    kind = _choice(rng, CORRELATED_KINDS, exclude=() if glare else ("glare",))
    cond = draw_conditions(rng, cfg.conditions)
    samples: list[StampSample] = []
    if kind == "spike":
        first = make_stamp("SPIKE", rng, cfg, cond)
        keys = ("star_flux", "direction", "spike_length", "spike_strength", "knot_period",
                "knot_modulation", "ref_length", "ref_strength")
        shared = {k: first.latents[k] for k in keys}
        step = shared["knot_period"] * int(rng.integers(1, 4))
        samples.append(first)
        for i in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            d = first.latents["distance"] + i * step
            samples.append(make_stamp("SPIKE", rng, cfg, cond, {**shared, "distance": d}))
        spacing = step
    elif kind == "burn":
        first = make_stamp("BURN", rng, cfg, cond)
        keys = ("star_flux", "side", "burn_length", "burn_width", "burn_level")
        shared = {k: first.latents[k] for k in keys}
        step = float(rng.uniform(2, 12))
        samples.append(first)
        for i in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            d = min(first.latents["distance"] + i * step, shared["burn_length"] - 1)
            samples.append(make_stamp("BURN", rng, cfg, cond, {**shared, "distance": d}))
        spacing = step
    elif kind == "glare":
        first = make_stamp("GLARE", rng, cfg, cond)
        bands = first.latents["band_params"]
        step = bands[0]["period"] * int(rng.integers(1, 3))
        samples.append(first)
        for i in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            samples.append(make_stamp("GLARE", rng, cfg, cond,
                                      {"band_params": bands, "shift_x": i * step}))
        spacing = step
    else:
        first = make_stamp("SCAR", rng, cfg, cond, {"scar_kind": "variable"})
        shared = {"scar_kind": "variable", "snr": first.latents["snr"],
                  "variation": first.latents["variation"]}
        samples.append(first)
        for _ in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            samples.append(make_stamp("SCAR", rng, cfg, cond, shared))
        spacing = 0.0
    return samples, {"correlated_kind": kind, "spacing_px": spacing}


def make_tracklet(seed: int, index: int, real: bool, cfg: SimConfig | None = None,
                  glare: bool = True, night_mjd: float = 61000.0) -> Tracklet:
    """Tracklet `index` of `seed`: real or bogus; glare=False leaves GLARE out of the bogus mix."""
    cfg = cfg or SimConfig()
    rng = stamp_rng(seed, STREAM_TRACKLETS, index)
    exclude = () if glare else ("GLARE",)
    if real:
        samples, latents = _real(rng, cfg)
        kind = "real"
        rate_px_day = latents["rate_deg_day"] * 3600 / PIXEL_SCALE
        angle = latents["angle"]
    else:
        kind = _choice(rng, BOGUS_KINDS)
        n = _n_exposures(rng)
        angle = float(rng.uniform(0, 2 * math.pi))
        rate_px_day = log_uniform(rng, 0.05, 60.0) * 3600 / PIXEL_SCALE
        if kind == "independent":
            cond = draw_conditions(rng, cfg.conditions)
            samples = []
            for i in range(n):
                if i:
                    cond = next_exposure(cond, rng, cfg.conditions)
                samples.append(make_stamp(_choice(rng, INDEPENDENT_MIX, exclude), rng, cfg, cond))
            latents = {"classes": [s.cls for s in samples]}
        elif kind == "correlated":
            samples, latents = _correlated(rng, cfg, n, glare)
            rate_px_day = latents["spacing_px"] / CADENCE_DAYS
        else:
            movers, mover_latents = _real(rng, cfg)
            reals = [s for s in movers if s.cls == "AST"][:2] or movers[:2]
            cond = draw_conditions(rng, cfg.conditions)
            bogus = [make_stamp(_choice(rng, INDEPENDENT_MIX, exclude), rng, cfg, cond)
                     for _ in range(max(n - len(reals), 2))]
            samples = reals + bogus
            order = rng.permutation(len(samples))
            samples = [samples[i] for i in order]
            latents = {"mixed_real_positions": [int(np.flatnonzero(order == i)[0])
                                                for i in range(len(reals))],
                       "mover": mover_latents}
        latents["bogus_kind"] = kind
    mjd0 = night_mjd + float(rng.uniform(0.1, 0.4))
    meta = _metadata(rng, len(samples), rate_px_day, angle, mjd0)
    detections = [
        Detection(index=i, mjd=m[0], ra=m[1], dec=m[2], mag=_magnitude(s), x=m[3], y=m[4], stamp=s)
        for i, (m, s) in enumerate(zip(meta, samples, strict=True))
    ]
    return Tracklet(f"T{index:06d}", real, kind, detections, latents)


def night_mix(seed: int, n_tracklets: int, real_fraction: float) -> list[bool]:
    """Which tracklets of a night are real: exactly round(n * real_fraction), positions shuffled."""
    rng = np.random.default_rng([seed, STREAM_TRACKLETS, 2**31 - 1])
    n_real = int(round(n_tracklets * real_fraction))
    flags = np.zeros(n_tracklets, bool)
    flags[rng.choice(n_tracklets, n_real, replace=False)] = True
    return flags.tolist()

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

INDEPENDENT_MIX = {
    "NOISE": 0.40,
    "CR": 0.20,
    "SCAR": 0.20,
    "SPIKE": 0.08,
    "BURN": 0.07,
    "GLARE": 0.05,
}
BOGUS_KINDS = {"independent": 0.75, "correlated": 0.20, "mixed": 0.05}
# variable: one variable star at a fixed position (a mover at rate ~0); multistar: several
# different variable stars that the linker joined into a plausible slow mover
CORRELATED_KINDS = {"spike": 0.30, "burn": 0.25, "glare": 0.15, "variable": 0.15, "multistar": 0.15}
# A field near a bright planet: glare comes in clusters (simulator.md), so there most bogus
# tracklets are its glare, knots sliding along a band or glare detections linked by chance;
# elsewhere a night has none.
PLANET_BOGUS_KINDS = {"glare": 0.60, "independent": 0.35, "mixed": 0.05}
PLANET_INDEPENDENT_MIX = {**INDEPENDENT_MIX, "GLARE": 0.60}
PLANET_RADIUS = 1500.0  # px: glare lies within this distance of the planet's place on the chip
# mixed linkages: two real asteroid detections with bogus ones, or two different asteroids
MIXED_KINDS = {"real+bogus": 0.6, "two-asteroids": 0.4}
DETECTION_COUNTS = {3: 0.12, 4: 0.70, 5: 0.08, 6: 0.05, 7: 0.03, 8: 0.02}

# The linker [tune]: it accepts detections whose positions fit uniform motion up to an RMS of
# LINKER_RMS arcsec (drawn per tracklet) and whose magnitudes lie within LINKER_MAG_RANGE.
LINKER_RMS = (1.0, 2.0)
LINKER_MAG_RANGE = 1.5
ASTROMETRIC_FLOOR = 0.08  # arcsec: reference catalogue and registration, at high SNR


@dataclass(frozen=True)
class PlanetField:
    """A field of the night near a bright planet: where on the sky, and where on the chip the
    planet's light falls (just off the chip or on it)."""

    ra: float
    dec: float
    planet_x: float
    planet_y: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> PlanetField:
        ra, dec = float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-0.4, 0.4))))
        edge = float(rng.uniform(-300, 1200))  # near one of the chip's sides
        along = float(rng.uniform(1000, CHIP - 1000))
        side = int(rng.integers(4))
        x, y = [(edge, along), (CHIP - edge, along), (along, edge), (along, CHIP - edge)][side]
        return cls(ra, dec, x, y)


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

    @property
    def fwhm_px(self) -> float:
        """The exposure's seeing (science PSF FWHM, px), as a survey's catalogue gives it."""
        return float(self.stamp.latents["conditions"]["fwhm"])


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


def _times(rng: np.random.Generator, n: int, mjd0: float) -> np.ndarray:
    return mjd0 + np.arange(n) * CADENCE_DAYS + rng.normal(0, 20 / 86400, n)


def _metadata(
    rng: np.random.Generator,
    times: np.ndarray,
    rate_px_day: float,
    angle: float,
    offsets_px: np.ndarray,
    field: PlanetField | None = None,
    near_planet: bool = False,
) -> list[tuple[float, float, float, float, float]]:
    """(mjd, ra, dec, x, y) of uniform motion on the chip plus per-detection offsets (px).

    In a planet's field the pointing is the field's, and glare starts near the planet."""
    ra0, dec0 = float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-0.5, 0.98))))
    if field is not None:
        ra0, dec0 = field.ra, field.dec
    span = rate_px_day * (times[-1] - times[0]) + float(np.abs(offsets_px).max(initial=0))
    margin = min(200 + span, CHIP / 2 - 1)
    x0, y0 = rng.uniform(margin, CHIP - margin, 2)
    if field is not None and near_planet:
        r = PLANET_RADIUS * math.sqrt(float(rng.uniform(0.02, 1)))
        a = float(rng.uniform(0, 2 * math.pi))
        x0 = float(np.clip(field.planet_x + r * math.cos(a), margin, CHIP - margin))
        y0 = float(np.clip(field.planet_y + r * math.sin(a), margin, CHIP - margin))
    out = []
    for t, (ox, oy) in zip(times, offsets_px, strict=True):
        dt = t - times[0]
        x = x0 + rate_px_day * dt * math.cos(angle) + ox
        y = y0 + rate_px_day * dt * math.sin(angle) + oy
        ra, dec = _from_detector(ra0, dec0, x, y)
        out.append((float(t), ra, dec, float(x), float(y)))
    return out


def _from_detector(ra0: float, dec0: float, x: float, y: float) -> tuple[float, float]:
    """RA, Dec (deg) of detector x/y: a gnomonic (tangent-plane) camera centred on (ra0, dec0)."""
    xi = math.radians((x - CHIP / 2) * PIXEL_SCALE / 3600)
    eta = math.radians((y - CHIP / 2) * PIXEL_SCALE / 3600)
    d0, a0 = math.radians(dec0), math.radians(ra0)
    denom = math.cos(d0) - eta * math.sin(d0)
    ra = a0 + math.atan2(xi, denom)
    dec = math.atan2(math.sin(d0) + eta * math.cos(d0), math.hypot(xi, denom))
    return math.degrees(ra) % 360, math.degrees(dec)


def astrometric_sigma(sample: StampSample, trail_px: float = 0.0) -> tuple[float, float]:
    """(along, across) 1-sigma centroid error in arcsec of one detection, from its SNR.

    A centroid of a PSF of width s measured at matched-filter SNR has an error of about
    sqrt(2) s / SNR per axis; along a trail of length L the profile is wider (s^2 + L^2 / 12).
    A floor stands for the reference catalogue and the registration.
    """
    fwhm = sample.latents["conditions"]["fwhm"] * PIXEL_SCALE
    snr = max(float(sample.latents["det_sigma"]), 3.0)
    s = fwhm / 2.3548
    across = math.hypot(ASTROMETRIC_FLOOR, math.sqrt(2) * s / snr)
    wide = math.sqrt(s**2 + (trail_px * PIXEL_SCALE) ** 2 / 12)
    along = math.hypot(ASTROMETRIC_FLOOR, math.sqrt(2) * wide / snr)
    return along, across


def _measurement_offsets(
    rng: np.random.Generator, samples: list[StampSample], angle: float, trail_px: float = 0.0
) -> np.ndarray:
    """(n, 2) px offsets: each detection's centroid error by its SNR, along/across `angle`."""
    out = np.zeros((len(samples), 2))
    c, s = math.cos(angle), math.sin(angle)
    for i, sample in enumerate(samples):
        along, across = astrometric_sigma(sample, trail_px)
        a, b = rng.normal(0, along), rng.normal(0, across)
        out[i] = ((a * c - b * s) / PIXEL_SCALE, (a * s + b * c) / PIXEL_SCALE)
    return out


def _chance_offsets(rng: np.random.Generator, times: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, 2) px offsets of a chance linkage and its RMS about the fit (arcsec).

    Detections that are not one mover fit a line only as well as the linker demands. Their fit
    residuals fill the 2(n-2)-dimensional residual space uniformly near zero, so the RMS r has
    density proportional to r^(2(n-2)-1) below the linker's limit: most sit near the limit.
    """
    n = len(times)
    limit = float(rng.uniform(*LINKER_RMS))
    dims = max(1, 2 * (n - 2))
    rms = limit * float(rng.random()) ** (1.0 / dims)
    raw = rng.normal(0, 1, (n, 2))
    t = times - times.mean()
    design = np.stack([np.ones(n), t], axis=1)
    coef, *_ = np.linalg.lstsq(design, raw, rcond=None)
    resid = raw - design @ coef
    current = math.sqrt(float((resid**2).sum()) / dims) or 1.0
    return resid * (rms / current) / PIXEL_SCALE, rms


def _magnitude(sample: StampSample) -> float:
    """The magnitude a pipeline measures: its matched-filter flux (SNR x flux of SNR 1)."""
    flux = max(float(sample.latents["det_sigma"]), 1.0) * sample.latents["flux_per_snr"]
    return float(ZERO_POINT - 2.5 * math.log10(max(flux, 1.0)))


def _linkable_magnitudes(
    rng: np.random.Generator, samples: list[StampSample], replace_ok, redraw, tries: int = 12
) -> list[StampSample]:
    """Redraw replaceable detections until the magnitudes span at most LINKER_MAG_RANGE."""
    samples = list(samples)
    for _ in range(tries):
        mags = np.array([_magnitude(s) for s in samples])
        if np.ptp(mags) <= LINKER_MAG_RANGE:
            break
        candidates = [i for i in range(len(samples)) if replace_ok(i)]
        if not candidates:
            break
        med = float(np.median(mags))
        worst = max(candidates, key=lambda i: abs(mags[i] - med))
        samples[worst] = redraw(worst)
    return samples


def _real(rng: np.random.Generator, cfg: SimConfig) -> tuple[list[StampSample], dict[str, Any]]:
    """Draw real movers until one is detected at least 3 times (the survey's selection)."""
    for attempt in range(100):
        n = _n_exposures(rng)
        cond = draw_conditions(rng, cfg.conditions)
        rate = log_uniform(rng, 0.05, 60.0)
        angle = float(rng.uniform(0, 2 * math.pi))
        comet = bool(rng.random() < 0.04)
        snr = power_law(
            rng,
            *(cfg.comet_snr_range if comet else cfg.snr_range),
            cfg.comet_snr_slope if comet else cfg.snr_slope,
        )
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
                1 + rng.normal(0, 0.03)
            )
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
                comet_shape = {
                    k: sample.latents[k]
                    for k in (
                        "coma_radius",
                        "nucleus_fraction",
                        "tail_angle",
                        "tail_length",
                        "tail_opening",
                        "tail_fraction",
                    )
                }
            sample.latents["exposure"] = i
            samples.append(sample)
        detected = [s for s in samples if s.latents["det_sigma"] >= cfg.detection_threshold]
        if len(detected) >= 3:
            latents = {
                "rate_deg_day": rate,
                "angle": angle,
                "snr": snr,
                "trail_px": trail,
                "comet": comet,
                "exposures": n,
                "attempts": attempt + 1,
            }
            return detected, latents
    raise RuntimeError("no detectable real mover in 100 draws")  # pragma: no cover


def _correlated(
    rng: np.random.Generator, cfg: SimConfig, n: int, glare: bool, kind: str | None = None
):
    kind = kind or _choice(rng, CORRELATED_KINDS, exclude=() if glare else ("glare",))
    cond = draw_conditions(rng, cfg.conditions)
    samples: list[StampSample] = []
    if kind == "spike":
        first = make_stamp("SPIKE", rng, cfg, cond)
        keys = (
            "star_flux",
            "direction",
            "spike_length",
            "spike_strength",
            "knot_period",
            "knot_modulation",
            "ref_length",
            "ref_strength",
        )
        shared = {k: first.latents[k] for k in keys}
        step = shared["knot_period"] * int(rng.integers(1, 4))
        samples.append(first)
        for i in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            d = first.latents["distance"] + i * step
            samples.append(make_stamp("SPIKE", rng, cfg, cond, {**shared, "distance": d}))
        spacing = step
        # the knots move away from the star along the spike
        motion = math.atan2(-first.latents["star_y"], -first.latents["star_x"])
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
        motion = math.atan2(shared["side"], 0.0)  # along the column, away from the star
    elif kind == "glare":
        # a ghost or clump of a planet's glare sliding along its band: a slow mover (0.1-2
        # deg/day) with a steady magnitude, measured with its centroid errors like a real one
        first = make_stamp("GLARE", rng, cfg, cond)
        keys = ("knot", "knot_softness", "knot_axis", "snr", "band_params")
        shared = {k: first.latents[k] for k in keys}
        direction = float(rng.choice([-1.0, 1.0]))
        step = log_uniform(rng, 0.1, 2.0) * 3600 / PIXEL_SCALE * CADENCE_DAYS
        samples.append(first)
        for i in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            snr = shared["snr"] * float(np.exp(rng.normal(0, 0.03)))
            samples.append(
                make_stamp(
                    "GLARE", rng, cfg, cond, {**shared, "snr": snr, "shift_x": direction * i * step}
                )
            )
        spacing = step
        angle = float(shared["band_params"][0]["angle"])
        motion = angle if direction > 0 else angle + math.pi  # along the band
    elif kind == "multistar":
        # different variable stars (each its own SNR and change) that line up by chance
        samples = [make_stamp("SCAR", rng, cfg, cond, {"scar_kind": "variable"})]
        for _ in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            samples.append(make_stamp("SCAR", rng, cfg, cond, {"scar_kind": "variable"}))
        spacing = log_uniform(rng, 0.05, 2.0) * 3600 / PIXEL_SCALE * CADENCE_DAYS
        motion = float(rng.uniform(0, 2 * math.pi))
    else:
        first = make_stamp("SCAR", rng, cfg, cond, {"scar_kind": "variable"})
        shared = {
            "scar_kind": "variable",
            "snr": first.latents["snr"],
            "variation": first.latents["variation"],
        }
        samples.append(first)
        for _ in range(1, n):
            cond = next_exposure(cond, rng, cfg.conditions)
            samples.append(make_stamp("SCAR", rng, cfg, cond, shared))
        spacing = 0.0
        motion = float(rng.uniform(0, 2 * math.pi))
    return samples, {"correlated_kind": kind, "spacing_px": spacing, "motion_angle": motion}


def make_tracklet(
    seed: int,
    index: int,
    real: bool,
    cfg: SimConfig | None = None,
    glare: bool = True,
    night_mjd: float = 61000.0,
    field: PlanetField | None = None,
    bogus_kind: str | None = None,
) -> Tracklet:
    """Tracklet `index` of `seed`: real or bogus; glare=False leaves GLARE out of the bogus mix.

    `bogus_kind` ("independent", "correlated" or "mixed") makes a bogus tracklet of that kind
    rather than one drawn from the mix, to measure a rare kind on enough of them.

    In a planet's `field` (glare comes in clusters) most bogus tracklets are its glare: knots
    sliding along a band (bogus kind "correlated", correlated_kind "glare") or chance linkages
    rich in glare detections; real tracklets there are ordinary movers.

    Positions carry what a linker lets through: a real mover scatters about its line by each
    detection's centroid error (its SNR); a chance linkage (independent bogus draws, several
    variable stars, mixed linkages) fits its line only to the linker's limit; knots along one
    spike, burn or glare band and a variable star are measured with their centroid errors.
    """
    cfg = cfg or SimConfig()
    rng = stamp_rng(seed, STREAM_TRACKLETS, index)
    exclude = () if glare or field is not None else ("GLARE",)
    mix = INDEPENDENT_MIX if field is None else PLANET_INDEPENDENT_MIX

    def bogus_draw(cond):
        return make_stamp(_choice(rng, mix, exclude), rng, cfg, cond)

    if real:
        samples, latents = _real(rng, cfg)
        kind = "real"
        rate_px_day = latents["rate_deg_day"] * 3600 / PIXEL_SCALE
        angle = latents["angle"]
        chance = False
    else:
        kind = _choice(rng, BOGUS_KINDS if field is None else PLANET_BOGUS_KINDS)
        if bogus_kind is not None:
            if bogus_kind not in BOGUS_KINDS:
                raise ValueError(f"unknown bogus kind {bogus_kind!r}; known: {list(BOGUS_KINDS)}")
            kind = bogus_kind  # the draw above is still made: the rest of the stream is the same
        forced = None
        if kind == "glare":
            kind, forced = "correlated", "glare"
        n = _n_exposures(rng)
        angle = float(rng.uniform(0, 2 * math.pi))
        rate_px_day = log_uniform(rng, 0.05, 60.0) * 3600 / PIXEL_SCALE
        chance = True
        if kind == "independent":
            cond = draw_conditions(rng, cfg.conditions)
            samples = []
            for i in range(n):
                if i:
                    cond = next_exposure(cond, rng, cfg.conditions)
                samples.append(bogus_draw(cond))
            samples = _linkable_magnitudes(
                rng,
                samples,
                lambda i: True,
                lambda i: bogus_draw(draw_conditions(rng, cfg.conditions)),
            )
            latents = {"classes": [s.cls for s in samples]}
        elif kind == "correlated":
            samples, latents = _correlated(rng, cfg, n, glare, forced)
            rate_px_day = latents["spacing_px"] / CADENCE_DAYS
            angle = latents["motion_angle"]
            chance = latents["correlated_kind"] == "multistar"
            if chance:
                samples = _linkable_magnitudes(
                    rng,
                    samples,
                    lambda i: True,
                    lambda i: make_stamp(
                        "SCAR",
                        rng,
                        cfg,
                        draw_conditions(rng, cfg.conditions),
                        {"scar_kind": "variable"},
                    ),
                )
        else:
            mixed = _choice(rng, MIXED_KINDS)
            movers, mover_latents = _real(rng, cfg)
            reals = [s for s in movers if s.cls == "AST"][:2] or movers[:2]
            if mixed == "two-asteroids":
                others, other_latents = _real(rng, cfg)
                samples = reals + others[: max(n - len(reals), 2)]
                mover_latents = {"first": mover_latents, "second": other_latents}
            else:
                cond = draw_conditions(rng, cfg.conditions)
                samples = reals + [bogus_draw(cond) for _ in range(max(n - len(reals), 2))]
                samples = _linkable_magnitudes(
                    rng,
                    samples,
                    lambda i: i >= len(reals),
                    lambda i: bogus_draw(draw_conditions(rng, cfg.conditions)),
                )
                # the line through the two real detections is the mover's own
                rate_px_day = mover_latents["rate_deg_day"] * 3600 / PIXEL_SCALE
                angle = mover_latents["angle"]
            order = rng.permutation(len(samples))
            samples = [samples[i] for i in order]
            latents = {
                "mixed_kind": mixed,
                "mixed_real_positions": [
                    int(np.flatnonzero(order == i)[0]) for i in range(len(reals))
                ],
                "mover": mover_latents,
            }
        latents["bogus_kind"] = kind
    mjd0 = night_mjd + float(rng.uniform(0.1, 0.4))
    times = _times(rng, len(samples), mjd0)
    if chance:
        offsets, rms = _chance_offsets(rng, times)
        latents["linker_rms_arcsec"] = rms
    else:
        trail = _trail_px(rate_px_day * PIXEL_SCALE / 3600)
        offsets = _measurement_offsets(rng, samples, angle, trail)
    glare_light = any(s.cls == "GLARE" for s in samples)
    meta = _metadata(rng, times, rate_px_day, angle, offsets, field, glare_light)
    if field is not None:
        latents["planet_field"] = True
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

"""Synthetic difference-image stamps of every class, rendered with the physics of simulator.md.

A stamp is a pure function of its random generator: callers make one per (seed, stream, index)
with ``stamp_rng`` and never touch numpy's global state. Every latent parameter that shaped the
stamp is kept in ``StampSample.latents``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classifier.classes import ALL_CLASSES, is_real
from classifier.render import (
    CANVAS,
    CENTRE,
    MARGIN,
    STAMP,
    ConditionRanges,
    Conditions,
    Rendered,
    Scene,
    detection_sigma,
    draw_conditions,
    flux_for_snr,
    psf_kernel,
    render,
    trail_profile,
)

STREAM_STAMPS = 1  # curated per-class stamp sets
STREAM_TRACKLETS = 2  # tracklets and nights


@dataclass(frozen=True)
class SimConfig:
    """Simulator parameters; ranges marked [tune] in simulator.md."""

    conditions: ConditionRanges = field(default_factory=ConditionRanges)
    snr_range: tuple[float, float] = (4.0, 300.0)
    snr_slope: float = 2.5
    comet_snr_range: tuple[float, float] = (8.0, 500.0)
    comet_snr_slope: float = 2.0
    streak_length_max: float = 60.0
    field_star_mean: tuple[float, float] = (0.2, 15.0)
    field_star_snr: tuple[float, float] = (2.0, 3000.0)
    field_star_slope: float = 1.7
    chip_edge_fraction: float = 0.03
    detection_threshold: float = 5.0
    noise_threshold: tuple[float, float] = (4.5, 6.0)
    scar_snr: tuple[float, float] = (30.0, 5000.0)
    blend_fraction: float = 0.1
    ast_cosmic_fraction: float = 0.03
    bogus_tries: int = 25
    # Other surveys' cutouts (ZTF: 63x63): this share of stamps is cut to a side drawn from
    # small_stamp_sides and NaN-padded back to the input size, as ingest stores them.
    small_stamp_fraction: float = 0.0
    small_stamp_sides: tuple[int, int] = (30, 99)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def widened(self) -> SimConfig:
        """Domain randomisation for training: every [tune] range wider than simulator.md's.

        A model trained on these learns the physics (PSF, depth, registration, crowding) over
        more than one simulator's choice of ranges, so that it transfers to data made by another
        generator of the same physics. Evaluation uses the nominal ranges (`SimConfig()`).
        """
        from dataclasses import replace

        c = self.conditions
        conditions = replace(
            c,
            fwhm_spread=c.fwhm_spread * 1.5,
            fwhm_range=(1.3, 4.5),
            beta_range=(2.0, 6.0),
            min_axis_ratio=0.75,
            ref_fwhm_ratio=(0.6, 1.6),
            ref_depth=(2.0, 80.0),
            registration_sigma=0.15,
            registration_tail=0.7,
            kernel_error=(0.02, 0.25),
            flux_error=(0.005, 0.05),
            sky=(20.0, 10_000.0),
            read_noise=(4.0, 20.0),
            gain=(0.7, 4.0),
            full_well=(40_000.0, 200_000.0),
            fwhm_jitter=0.15,
        )
        return replace(
            self,
            conditions=conditions,
            field_star_mean=(0.1, 25.0),
            chip_edge_fraction=0.06,
            noise_threshold=(4.2, 6.5),
            scar_snr=(20.0, 8000.0),
            streak_length_max=70.0,
            blend_fraction=0.15,
            ast_cosmic_fraction=0.05,
        )

    def wider(self, cross_fraction: float = 0.0) -> SimConfig:
        """`widened()` and beyond one survey: seeing from undersampled to broad (1.0-5.5 px
        FWHM, log-uniform, so that both ends are as common as the middle; the wider Moffat
        wings of beta 1.8 too), and 15% of stamps cut smaller than the input (30-99 px,
        NaN-padded as ingest stores ZTF's 63x63), and science exposures whose PSF is elongated
        to an axis ratio of 0.5 (the reference's stays 0.75-1). Test sets held out of it: seeing
        0.9-1.0 and 5.5-7 px, science axis ratio 0.3-0.5 (bench/novelty.py).

        `cross_fraction`: the share of fields subtracted by cross-convolution (each image
        convolved with the other's PSF, as ZOGY-like pipelines give a difference PSF broader
        than either exposure's; only where that stays within 5.5 px, so that the broad held-out
        set's differences stay unseen). Off: a third of fields so (2026-12-06, the ICN fine-tuned
        3 epochs on it) kept fewer real tracklets on every held-out seeing and read fewer ZTF
        cutouts AST (docs/model.md).

        Until 2026-12-05 the seeing was the nominal lognormal about 2.2 px, clipped to 1.0-5.5:
        under 1% of stamps fell below 1.2 or above 4.5 px, so the range was named, not trained.
        """
        from dataclasses import replace

        base = self.widened()
        conditions = replace(
            base.conditions,
            fwhm_range=(1.0, 5.5),
            fwhm_law="log-uniform",
            beta_range=(1.8, 6.0),
            sci_axis_ratio=(0.5, 1.0),
            cross_fraction=cross_fraction,
        )
        return replace(base, conditions=conditions, small_stamp_fraction=0.15)


@dataclass
class StampSample:
    """One detection's stamps (ADU) with its class and every latent parameter."""

    cls: str
    difference: np.ndarray
    science: np.ndarray
    reference: np.ndarray
    saturate: float | None
    latents: dict[str, Any]

    @property
    def real(self) -> bool:
        return is_real(self.cls)


def stamp_rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    """The local generator of one sample: a pure function of (seed, stream, index...)."""
    return np.random.default_rng([seed, stream, *index])


def power_law(rng: np.random.Generator, lo: float, hi: float, slope: float) -> float:
    """Draw from p(x) proportional to x^-slope on [lo, hi]."""
    a = 1.0 - slope
    u = rng.random()
    if abs(a) < 1e-9:  # slope 1: log-uniform
        return float(lo * (hi / lo) ** u)
    return float((lo**a + u * (hi**a - lo**a)) ** (1.0 / a))


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def splat(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
    """Deposit weights at sub-pixel positions with bilinear interpolation, clipped to the image."""
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    h, w = image.shape
    for dy, dx, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(image, (yy[ok], xx[ok]), (ws * wt)[ok])


def _sigma_pix(cond: Conditions) -> float:
    return math.sqrt(cond.var_sci)


def _point_flux_per_snr(cond: Conditions) -> float:
    return flux_for_snr(1.0, psf_kernel(cond.sci_psf, radius=8), cond)


def _add_field_stars(
    scene: Scene, rng: np.random.Generator, cfg: SimConfig, cond: Conditions, lat: dict[str, Any]
) -> None:
    mean = log_uniform(rng, *cfg.field_star_mean) if cfg.field_star_mean[1] > 0 else 0.0
    n = int(rng.poisson(mean * (CANVAS / STAMP) ** 2)) if mean > 0 else 0
    unit = _point_flux_per_snr(cond)
    for _ in range(n):
        snr = power_law(rng, *cfg.field_star_snr, cfg.field_star_slope)
        x, y = rng.uniform(0, CANVAS, 2)
        scene.stars.append((float(x), float(y), snr * unit, snr * unit))
    lat["field_star_mean"] = mean
    lat["field_stars"] = n


def _add_cosmic(
    post: np.ndarray,
    rng: np.random.Generator,
    cond: Conditions,
    x: float,
    y: float,
    lat: dict[str, Any],
    prefix: str = "cr_",
) -> None:
    """A cosmic ray with one of its pixels at (x, y): a spot, a straight track or a worm."""
    sigma = _sigma_pix(cond)
    kind = str(rng.choice(["spot", "track", "worm"], p=[0.5, 0.35, 0.15]))
    energy = log_uniform(rng, 6.0, 3000.0) * sigma
    if kind == "spot":
        n = int(rng.integers(1, 5))
        xs, ys = [round(x)], [round(y)]
        while len(xs) < n:
            k = int(rng.integers(len(xs)))
            dx, dy = [(1, 0), (-1, 0), (0, 1), (0, -1)][int(rng.integers(4))]
            xs.append(xs[k] + dx)
            ys.append(ys[k] + dy)
        ws = energy * rng.uniform(0.2, 1.0, n)
        ws[0] = energy
        splat(post, np.array(xs, float), np.array(ys, float), ws)
        length = float(n)
    elif kind == "track":
        length = float(rng.uniform(3, 40))
        angle = float(rng.uniform(0, math.pi))
        t = np.arange(-rng.uniform(0, 1) * length, length * 1e-9 + length * 1.0, 0.3)
        t = t[t <= t[0] + length]
        ws = energy * 0.3 * rng.uniform(0.6, 1.4, t.size)
        splat(post, x + t * math.cos(angle), y + t * math.sin(angle), ws)
    else:
        n = int(rng.integers(6, 26))
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.6, n))
        xs = x + np.concatenate([[0], np.cumsum(0.7 * np.cos(heading[:-1]))])
        ys = y + np.concatenate([[0], np.cumsum(0.7 * np.sin(heading[:-1]))])
        splat(post, xs, ys, energy * 0.7 * rng.uniform(0.5, 1.2, n))
        length = float(n * 0.7)
    lat[prefix + "kind"] = kind
    lat[prefix + "energy_sigma"] = energy / sigma
    lat[prefix + "length"] = length


# --- classes --------------------------------------------------------------------------------------


def _centre(rng: np.random.Generator, spread: float = 0.5) -> tuple[float, float]:
    dx, dy = rng.uniform(-spread, spread, 2)
    return float(CENTRE + dx), float(CENTRE + dy)


def _mover(
    scene: Scene,
    rng: np.random.Generator,
    cfg: SimConfig,
    cond: Conditions,
    lat: dict[str, Any],
    fixed: dict[str, Any],
    length: float,
) -> tuple[float, float]:
    snr = fixed.get("snr") or power_law(rng, *cfg.snr_range, cfg.snr_slope)
    angle = fixed.get("angle", float(rng.uniform(0, math.pi)))
    x, y = _centre(rng)
    profile = trail_profile(cond.sci_psf, x, y, length, angle)
    flux = flux_for_snr(snr, profile.data, cond)
    scene.movers.append((profile, flux))
    lat.update(
        snr=snr,
        length=length,
        angle=angle,
        x=x - CENTRE,
        y=y - CENTRE,
        flux=flux,
        length_over_fwhm=length / cond.sci_psf.fwhm,
    )
    return x, y


def _scene_ast(scene, rng, cfg, cond, lat, fixed):
    length = fixed.get("length", float(rng.uniform(0, 0.9)) * cond.sci_psf.fwhm)
    x, y = _mover(scene, rng, cfg, cond, lat, fixed, length)
    lat["blend"] = bool(rng.random() < cfg.blend_fraction)
    if lat["blend"]:
        d, a = rng.uniform(1.0, 5.0), rng.uniform(0, 2 * math.pi)
        snr = power_law(rng, 3.0, 300.0, 1.5)
        f = snr * _point_flux_per_snr(cond)
        scene.stars.append((x + d * math.cos(a), y + d * math.sin(a), f, f))
        lat["blend_distance"], lat["blend_snr"] = float(d), snr
    lat["cosmic_hit"] = bool(rng.random() < cfg.ast_cosmic_fraction)
    if lat["cosmic_hit"]:
        scene.post = np.zeros((CANVAS, CANVAS)) if scene.post is None else scene.post
        cx, cy = x + rng.uniform(-5, 5), y + rng.uniform(-5, 5)
        _add_cosmic(scene.post, rng, cond, cx, cy, lat)
    return x, y


def _scene_streak(scene, rng, cfg, cond, lat, fixed):
    fwhm = cond.sci_psf.fwhm
    length = fixed.get("length", log_uniform(rng, fwhm, max(cfg.streak_length_max, fwhm * 1.01)))
    return _mover(scene, rng, cfg, cond, lat, fixed, length)


def _scene_comet(scene, rng, cfg, cond, lat, fixed):
    snr = fixed.get("snr") or power_law(rng, *cfg.comet_snr_range, cfg.comet_snr_slope)
    x, y = _centre(rng)
    coma_r = fixed.get("coma_radius", float(rng.uniform(3, 25)))
    nucleus = fixed.get("nucleus_fraction", float(rng.uniform(0.05, 0.4)))
    tail_angle = fixed.get("tail_angle", float(rng.uniform(0, 2 * math.pi)))
    tail_len = fixed.get("tail_length", float(rng.uniform(10, 60)))
    tail_open = fixed.get("tail_opening", float(rng.uniform(math.radians(10), math.radians(40))))
    tail_frac = fixed.get("tail_fraction", float(rng.uniform(0.1, 0.4)))
    yy, xx = np.mgrid[:CANVAS, :CANVAS].astype(float)
    r = np.hypot(xx - x, yy - y)
    coma = np.where(r <= coma_r, 1.0 / np.maximum(r, 0.5), 0.0)
    coma /= coma.sum()
    phi = np.arctan2(yy - y, xx - x) - tail_angle
    phi = (phi + math.pi) % (2 * math.pi) - math.pi
    tail = np.where(
        (np.abs(phi) < tail_open / 2) & (r > 1) & (r < tail_len),
        np.exp(-r / (tail_len / 2)) / np.maximum(r, 1.0),
        0.0,
    )
    tail = tail / tail.sum() if tail.sum() > 0 else tail
    unit = (1 - nucleus) * ((1 - tail_frac) * coma + tail_frac * tail)
    splat(unit, np.array([x]), np.array([y]), np.array([nucleus]))
    from classifier.render import _convolve

    profile = _convolve(unit, cond.sci_psf)
    flux = flux_for_snr(snr, profile, cond)
    scene.mover_extended = unit * flux
    lat.update(
        snr=snr,
        x=x - CENTRE,
        y=y - CENTRE,
        flux=flux,
        coma_radius=coma_r,
        nucleus_fraction=nucleus,
        tail_angle=tail_angle,
        tail_length=tail_len,
        tail_opening=tail_open,
        tail_fraction=tail_frac,
    )
    return x, y


def _scene_cr(scene, rng, cfg, cond, lat, fixed):
    scene.post = np.zeros((CANVAS, CANVAS)) if scene.post is None else scene.post
    x, y = float(CENTRE), float(CENTRE)
    _add_cosmic(scene.post, rng, cond, x, y, lat)
    lat["snr"] = lat["cr_energy_sigma"]
    return x, y


def _scene_noise(scene, rng, cfg, cond, lat, fixed):
    threshold = float(rng.uniform(*cfg.noise_threshold))
    peak = threshold + float(rng.exponential(1.0 / threshold))
    lat.update(snr=peak, threshold=threshold)
    sigma = _sigma_pix(cond)
    extras = ["none", "hot_pixel", "warm_column", "gradient"]
    extra = str(rng.choice(extras, p=[0.6, 0.15, 0.1, 0.15]))
    lat["extra"] = extra
    if extra == "hot_pixel":
        scene.post = np.zeros((CANVAS, CANVAS)) if scene.post is None else scene.post
        px, py = rng.integers(MARGIN, MARGIN + STAMP, 2)
        scene.post[py, px] += log_uniform(rng, 10, 1000) * sigma
    elif extra == "warm_column":
        scene.post = np.zeros((CANVAS, CANVAS)) if scene.post is None else scene.post
        col = int(rng.integers(MARGIN, MARGIN + STAMP))
        start = int(rng.integers(0, CANVAS // 2))
        scene.post[start:, col] += rng.uniform(1, 5) * sigma
    elif extra == "gradient":
        yy, xx = np.mgrid[:CANVAS, :CANVAS].astype(float)
        a = rng.uniform(0, 2 * math.pi)
        amp = rng.uniform(1, 10) * sigma
        scene.gradient = amp * ((xx - CENTRE) * math.cos(a) + (yy - CENTRE) * math.sin(a)) / STAMP
    return float(CENTRE), float(CENTRE), peak


def _scene_scar(scene, rng, cfg, cond, lat, fixed):
    kinds = ["star", "galaxy", "variable"]
    kind = fixed.get("scar_kind") or str(rng.choice(kinds, p=[0.65, 0.2, 0.15]))
    snr = fixed.get("snr") or power_law(rng, *cfg.scar_snr, 1.5)
    x, y = fixed.get("xy") or _centre(rng, 1.0)
    unit = _point_flux_per_snr(cond)
    flux = snr * unit
    lat.update(scar_kind=kind, snr=snr, x=x - CENTRE, y=y - CENTRE, flux=flux)
    if kind == "galaxy":
        re_ = fixed.get("r_e", float(rng.uniform(1.5, 6.0)))
        q = fixed.get("galaxy_q", float(rng.uniform(0.4, 1.0)))
        pa = fixed.get("galaxy_pa", float(rng.uniform(0, math.pi)))
        core = fixed.get("core_fraction", float(rng.uniform(0.1, 0.5)))
        yy, xx = np.mgrid[:CANVAS, :CANVAS].astype(float)
        u = (xx - x) * math.cos(pa) + (yy - y) * math.sin(pa)
        v = -(xx - x) * math.sin(pa) + (yy - y) * math.cos(pa)
        disk = np.exp(-np.hypot(u, v / q) / re_)
        disk *= (1 - core) * flux * 3 / disk.sum()  # galaxies are extended: more total flux
        scene.extended_sci = disk
        scene.extended_ref = disk.copy()
        scene.stars.append((x, y, core * flux * 3, core * flux * 3))
        lat.update(r_e=re_, galaxy_q=q, galaxy_pa=pa, core_fraction=core)
    elif kind == "variable":
        change = fixed.get("variation") or float(rng.uniform(0.01, 0.1) * rng.choice([-1, 1]))
        if "variation" in fixed:
            change = float(fixed["variation"] * (1 + rng.normal(0, 0.3)))
        scene.stars.append((x, y, flux * (1 + change), flux))
        lat["variation"] = change
    else:
        scene.stars.append((x, y, flux, flux))
    return x, y


def _spike_points(
    d_star: float,
    length: float,
    strength: float,
    flux: float,
    period: float,
    modulation: float,
    knot: float,
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(1.5, d_star + CANVAS, 0.5)
    w = strength * flux * np.exp(-t / length) / length * 0.5
    w *= 1 + modulation * np.cos(2 * math.pi * (t - knot) / period)
    return t, w


def _scene_spike(scene, rng, cfg, cond, lat, fixed):
    flux = fixed.get("star_flux") or log_uniform(rng, 3e5, 1e8)
    d = fixed.get("distance") or float(rng.uniform(10, 80))
    direction = fixed.get("direction") or float(
        math.radians(45 + 90 * int(rng.integers(4)) + rng.normal(0, 0.5))
    )
    length = fixed.get("spike_length") or float(rng.uniform(15, 80))
    strength = fixed.get("spike_strength") or log_uniform(rng, 0.002, 0.03)
    period = fixed.get("knot_period") or float(rng.uniform(4, 12))
    modulation = fixed.get("knot_modulation") or float(rng.uniform(0.3, 0.8))
    ref_length = fixed.get("ref_length") or length * float(rng.uniform(0.6, 1.5))
    ref_strength = fixed.get("ref_strength") or strength * float(rng.uniform(0.5, 1.5))
    perp = float(rng.uniform(-0.7, 0.7))
    ux, uy = math.cos(direction), math.sin(direction)
    sx = CENTRE - d * ux - perp * uy
    sy = CENTRE - d * uy + perp * ux
    scene.stars.append((sx, sy, flux, flux))
    scene.spikes_sci = np.zeros((CANVAS, CANVAS))
    scene.spikes_ref = np.zeros((CANVAS, CANVAS))
    for k in range(4):
        a = direction + k * math.pi / 2
        for image, ln, st in (
            (scene.spikes_sci, length, strength),
            (scene.spikes_ref, ref_length, ref_strength),
        ):
            t, w = _spike_points(d, ln, st, flux, period, modulation, d)
            splat(image, sx + t * math.cos(a), sy + t * math.sin(a), w)
    lat.update(
        star_flux=flux,
        distance=d,
        direction=direction,
        spike_length=length,
        spike_strength=strength,
        knot_period=period,
        knot_modulation=modulation,
        ref_length=ref_length,
        ref_strength=ref_strength,
        star_x=sx - CENTRE,
        star_y=sy - CENTRE,
        snr=flux / _point_flux_per_snr(cond),
    )
    return float(CENTRE), float(CENTRE)


def _scene_burn(scene, rng, cfg, cond, lat, fixed):
    flux = fixed.get("star_flux") or log_uniform(rng, 1e6, 3e8)
    d = fixed.get("distance") or float(rng.uniform(3, 70))
    side = fixed.get("side") or float(rng.choice([-1.0, 1.0]))
    length = fixed.get("burn_length") or float(rng.uniform(max(d + 3, 5), 150))
    width = fixed.get("burn_width") or int(rng.integers(1, 4))
    level = fixed.get("burn_level") or log_uniform(rng, 2e-5, 3e-4)
    sx = float(CENTRE + rng.uniform(-0.5, 0.5)) if "star_x" not in fixed else fixed["star_x"]
    sy = CENTRE - side * d
    scene.stars.append((sx, sy, flux, flux))
    burn = np.zeros((CANVAS, CANVAS))
    rows = np.arange(CANVAS)
    along = (rows - sy) * side
    profile = np.where((along > 0) & (along < length), level * flux * np.exp(-along / length), 0.0)
    col = int(round(sx))
    for c in range(col - (width - 1) // 2, col + width // 2 + 1):
        if 0 <= c < CANVAS:
            burn[:, c] += profile * (1.0 if c == col else 0.5)
    scene.burn = burn
    lat.update(
        star_flux=flux,
        distance=d,
        side=side,
        burn_length=length,
        burn_width=width,
        burn_level=level,
        star_x=sx,
        snr=flux / _point_flux_per_snr(cond),
    )
    return float(col), float(CENTRE)


GLARE_KNOTS = {"ghost": 0.45, "clump": 0.35, "crossing": 0.20}


def _glare_bands(rng: np.random.Generator, knot: str, sigma: float) -> list[dict[str, float]]:
    """1-3 nearly horizontal bands (within 4 deg), 1-20 px wide (FWHM), with a gradient along
    them and a smooth halo; the first passes through the knot (a clump on it, or a crossing of
    two bands) or near it (a ghost beside a band); the others cross the stamp anywhere."""
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
    if knot == "crossing":
        n = max(n, 2)
    bands = []
    for k in range(n):
        angle = float(rng.uniform(-4, 4))
        if k == 0:
            offset = (
                float(rng.uniform(-1, 1))
                if knot != "ghost"
                else float(rng.choice([-1.0, 1.0]) * rng.uniform(4, 40))
            )
        elif k == 1 and knot == "crossing":
            offset = float(rng.uniform(-1, 1))  # it crosses the first band at the knot
            angle = bands[0]["angle"] + float(rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 5))
        else:
            offset = float(rng.uniform(-60, 60))
        bands.append(
            {
                "angle": math.radians(angle),
                "offset": offset,
                "width": log_uniform(rng, 1.0, 20.0),  # FWHM, px
                # peak e-/px: faint washes to saturated bands (full wells are 60k-150k e-)
                "amplitude": power_law(rng, 0.5, 5000.0, 1.4) * sigma,
                "gradient": float(rng.uniform(-1.2, 1.2)),  # relative change per 100 px along it
                "halo_width": float(rng.uniform(3, 10)),  # times the band's width
                "halo_fraction": float(rng.uniform(0.05, 0.35)),
            }
        )
    return bands


def _scene_glare(scene, rng, cfg, cond, lat, fixed):
    """Scattered light of a planet near the field: a compact knot (a reflection ghost, a crossing
    of bands, a clump along a band) at the centre, and bands across or near it (simulator.md)."""
    sigma = _sigma_pix(cond)
    fwhm = cond.sci_psf.fwhm
    knot = fixed.get("knot") or str(rng.choice(list(GLARE_KNOTS), p=list(GLARE_KNOTS.values())))
    softness = fixed.get("knot_softness") or float(rng.uniform(1.0, 1.8))  # FWHM / PSF's
    axis = fixed.get("knot_axis") or float(rng.uniform(0.7, 1.0))  # drawn out along the bands
    snr = fixed.get("snr") or power_law(rng, 5.0, 300.0, 2.0)
    bands = fixed.get("band_params") or _glare_bands(rng, knot, sigma)
    shift = float(fixed.get("shift_x", 0.0))  # how far the knot moved along the first band
    yy, xx = np.mgrid[:CANVAS, :CANVAS].astype(float)
    light = np.zeros((CANVAS, CANVAS))
    first = bands[0]["angle"]
    for b in bands:
        # in the knot's frame a band fixed on the sky moves as the knot slides along the first
        offset = b["offset"] - shift * math.tan(b["angle"] - first)
        y_band = CENTRE + offset + (xx - CENTRE) * math.tan(b["angle"])
        across = (yy - y_band) * math.cos(b["angle"])
        along = (xx - CENTRE + shift) / 100.0
        level = b["amplitude"] * np.clip(1 + b["gradient"] * along, 0.1, None)
        s = b["width"] / 2.3548
        light += level * np.exp(-0.5 * (across / s) ** 2)
        light += level * b["halo_fraction"] * np.exp(-0.5 * (across / (s * b["halo_width"])) ** 2)
    x, y = _centre(rng)
    sx = softness * fwhm / 2.3548
    sy = sx * axis
    blob = np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))
    # the knot's flux for its SNR as if it were a point source: a softer knot reads fainter
    light += snr * _point_flux_per_snr(cond) * blob / blob.sum()
    scene.glare = np.maximum(light, 0.0)
    lat.update(
        knot=knot,
        knot_softness=softness,
        knot_axis=axis,
        snr=snr,
        bands=len(bands),
        band_params=bands,
        shift_x=shift,
        x=x - CENTRE,
        y=y - CENTRE,
        band_peak_sigma=max(b["amplitude"] for b in bands) / sigma,
    )
    return x, y


SCENES = {
    "AST": _scene_ast,
    "STREAK": _scene_streak,
    "COMET": _scene_comet,
    "CR": _scene_cr,
    "NOISE": _scene_noise,
    "SCAR": _scene_scar,
    "SPIKE": _scene_spike,
    "BURN": _scene_burn,
    "GLARE": _scene_glare,
}


# --- stamps ---------------------------------------------------------------------------------------


def _chip_edge(
    rng: np.random.Generator, cfg: SimConfig, images: list[np.ndarray], lat: dict[str, Any]
) -> None:
    if rng.random() >= cfg.chip_edge_fraction:
        return
    side = str(rng.choice(["top", "bottom", "left", "right"]))
    width = int(rng.integers(3, 41))
    value = np.nan if rng.random() < 0.7 else 0.0
    sl = {
        "top": np.s_[:width, :],
        "bottom": np.s_[-width:, :],
        "left": np.s_[:, :width],
        "right": np.s_[:, -width:],
    }[side]
    for image in images:
        image[sl] = value
    lat["chip_edge"] = {"side": side, "width": width, "value": "nan" if np.isnan(value) else "zero"}


def _render_once(
    cls: str, rng: np.random.Generator, cfg: SimConfig, cond: Conditions, fixed: dict[str, Any]
) -> tuple[Rendered, dict[str, Any], float, float]:
    lat: dict[str, Any] = {"class": cls}
    scene = Scene()
    if not fixed.get("no_field_stars"):
        _add_field_stars(scene, rng, cfg, cond, lat)
    result = SCENES[cls](scene, rng, cfg, cond, lat, fixed)
    if cls == "NOISE":
        x, y, peak = result
        out = render(scene, cond, rng, peak_sigma=peak)
    else:
        x, y = result
        out = render(scene, cond, rng)
    return out, lat, x, y


def make_stamp(
    cls: str,
    rng: np.random.Generator,
    cfg: SimConfig | None = None,
    cond: Conditions | None = None,
    fixed: dict[str, Any] | None = None,
) -> StampSample:
    """Render one detection stamp of class `cls`; bogus detections exist only above threshold."""
    if cls not in SCENES:
        raise ValueError(f"unknown class {cls!r}; known: {', '.join(ALL_CLASSES)}")
    cfg = cfg or SimConfig()
    cond = cond or draw_conditions(rng, cfg.conditions)
    fixed = fixed or {}
    # A survey only reports a bogus detection where something crossed its threshold; a shared
    # feature of a correlated tracklet (fixed latents other than switches) is kept as drawn.
    needs_detection = not is_real(cls) and cls != "NOISE"
    shared = any(k != "no_field_stars" for k in fixed)
    tries = cfg.bogus_tries if needs_detection and not shared else 1
    for attempt in range(tries):
        out, lat, x, y = _render_once(cls, rng, cfg, cond, fixed)
        search = 2 if cls == "SCAR" else 1
        lat["det_sigma"] = detection_sigma(out.difference_e, cond, x, y, search=search)
        lat["tries"] = attempt + 1
        if not needs_detection or lat["det_sigma"] >= cfg.detection_threshold:
            break
    lat["conditions"] = cond.latents()
    lat["flux_per_snr"] = _point_flux_per_snr(cond)  # e- of a point source at matched SNR 1
    images = [out.difference, out.science, out.reference]
    _chip_edge(rng, cfg, images, lat)
    _small_stamp(rng, cfg, images, lat)
    return StampSample(cls, out.difference, out.science, out.reference, out.saturate, lat)


def _small_stamp(
    rng: np.random.Generator, cfg: SimConfig, images: list[np.ndarray], lat: dict[str, Any]
) -> None:
    """Cut a share of stamps to another survey's smaller side, centred, and NaN-pad them back
    (stamp_io.fit_to_input's rule). Draws nothing where the share is 0 (nominal stamps keep
    their random sequence)."""
    if cfg.small_stamp_fraction <= 0 or rng.random() >= cfg.small_stamp_fraction:
        return
    side = int(rng.integers(cfg.small_stamp_sides[0], cfg.small_stamp_sides[1] + 1))
    size = images[0].shape[0]
    start = (size - side) // 2
    keep = np.zeros((size, size), dtype=bool)
    keep[start : start + side, start : start + side] = True
    for image in images:
        image[~keep] = np.nan
    lat["small_stamp"] = side

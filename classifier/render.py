"""Optics and detector physics: PSFs, science and reference images, PSF matching, subtraction.

Everything is in electrons of one science exposure until the final conversion to ADU. Images are
rendered on a ``CANVAS`` x ``CANVAS`` canvas and the central ``STAMP`` x ``STAMP`` part is kept, so
that light from outside the stamp (spikes, streaks, glare) enters it. Array index order is
``[y, x]``; the detection sits at canvas pixel ``(CENTRE, CENTRE)`` within half a pixel.
Only numpy and scipy are used (no torch, no astropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

CANVAS = 128
STAMP = 100
MARGIN = (CANVAS - STAMP) // 2
CENTRE = MARGIN + STAMP // 2  # canvas pixel of stamp pixel (50, 50)
ADC_MAX = 65535.0
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Psf:
    """An elliptical Moffat profile: FWHM (px), beta, axis ratio q <= 1 and position angle (rad)."""

    fwhm: float
    beta: float
    q: float = 1.0
    theta: float = 0.0

    @property
    def alpha(self) -> float:
        return self.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    @property
    def sigma(self) -> float:
        """Width of the Gaussian with the same FWHM (used for PSF matching)."""
        return self.fwhm / FWHM_PER_SIGMA

    def evaluate(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Surface brightness per unit flux at offsets (dx, dy) from the centre."""
        ax, ay = self.alpha / math.sqrt(self.q), self.alpha * math.sqrt(self.q)
        c, s = math.cos(self.theta), math.sin(self.theta)
        u = (dx * c + dy * s) / ax
        v = (-dx * s + dy * c) / ay
        return (self.beta - 1.0) / (math.pi * ax * ay) * (1.0 + u * u + v * v) ** (-self.beta)


@dataclass(frozen=True)
class Conditions:
    """One exposure's observing conditions and its reference image: all noise-relevant numbers."""

    sci_psf: Psf
    ref_psf: Psf
    ref_depth: float  # number of exposures averaged into the reference
    sky: float  # e-/px
    read_noise: float  # e-
    gain: float  # e-/ADU
    full_well: float  # e-
    reg_dx: float  # reference registration error, px
    reg_dy: float
    kernel_error: float  # fractional error of the matching-kernel width
    flux_error: float  # fractional error of the reference flux scale
    # cross-convolution: each image convolved with the other's PSF (a common, broader difference
    # PSF, as ZOGY-like and cross-convolving pipelines give) instead of one matched to the other
    cross: bool = False

    @property
    def saturation_e(self) -> float:
        return min(self.full_well, ADC_MAX * self.gain)

    @property
    def var_sci(self) -> float:
        """Per-pixel science variance away from sources (sky, read noise, quantisation), e-^2."""
        return self.sky + self.read_noise**2 + self.gain**2 / 12.0

    @property
    def var_ref(self) -> float:
        return (self.sky + self.read_noise**2) / self.ref_depth

    @property
    def matching(self) -> tuple[str, float]:
        """Which image is convolved to match the other ('ref' or 'sci') and the kernel sigma."""
        ss, sr = self.sci_psf.sigma, self.ref_psf.sigma
        which = "ref" if sr <= ss else "sci"
        true_sigma = math.sqrt(max(abs(ss * ss - sr * sr), 0.09))
        return which, true_sigma * (1.0 + self.kernel_error)

    def latents(self) -> dict[str, float]:
        return {
            "fwhm": self.sci_psf.fwhm,
            "beta": self.sci_psf.beta,
            "psf_q": self.sci_psf.q,
            "ref_fwhm": self.ref_psf.fwhm,
            "ref_depth": self.ref_depth,
            "sky": self.sky,
            "read_noise": self.read_noise,
            "gain": self.gain,
            "full_well": self.full_well,
            "reg_dx": self.reg_dx,
            "reg_dy": self.reg_dy,
            "kernel_error": self.kernel_error,
            "flux_error": self.flux_error,
            "cross": float(self.cross),
        }


@dataclass(frozen=True)
class ConditionRanges:
    """Observing-condition ranges [tune] from simulator.md."""

    fwhm_median: float = 2.2
    fwhm_spread: float = 0.2  # sigma of ln(FWHM) around the median
    fwhm_range: tuple[float, float] = (1.6, 3.5)
    # "lognormal": about the median, clipped to the range; "log-uniform": every part of the
    # range as likely (training that must cover all of it, not only the middle)
    fwhm_law: str = "lognormal"
    beta_range: tuple[float, float] = (2.5, 5.0)
    min_axis_ratio: float = 0.85
    # the science exposure's PSF axis ratio where it differs from the reference's (tracking
    # error, wind shake, field-edge optics elongate one exposure, not the stacked reference);
    # None: both drawn from (min_axis_ratio, 1)
    sci_axis_ratio: tuple[float, float] | None = None
    # the share of fields subtracted by cross-convolution (Conditions.cross), drawn only where
    # the difference's PSF (the two exposures' widths in quadrature) stays within fwhm_range
    cross_fraction: float = 0.0
    ref_fwhm_ratio: tuple[float, float] = (0.7, 1.4)
    ref_depth: tuple[float, float] = (4.0, 50.0)
    registration_sigma: float = 0.1
    registration_tail: float = 0.5
    kernel_error: tuple[float, float] = (0.05, 0.15)
    flux_error: tuple[float, float] = (0.01, 0.03)
    sky: tuple[float, float] = (50.0, 5000.0)
    read_noise: tuple[float, float] = (8.0, 14.0)
    gain: tuple[float, float] = (1.0, 3.0)
    full_well: tuple[float, float] = (60_000.0, 150_000.0)
    fwhm_jitter: float = 0.10


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))


def _registration(rng: np.random.Generator, ranges: ConditionRanges) -> tuple[float, float]:
    scale = ranges.registration_sigma if rng.random() > 0.1 else ranges.registration_tail
    return float(rng.normal(0, scale)), float(rng.normal(0, scale))


def draw_conditions(rng: np.random.Generator, ranges: ConditionRanges) -> Conditions:
    """Draw one exposure's conditions and its reference."""
    lo, hi = ranges.fwhm_range
    if ranges.fwhm_law == "log-uniform":
        fwhm = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    elif ranges.fwhm_law == "lognormal":
        median, spread = math.log(ranges.fwhm_median), ranges.fwhm_spread
        fwhm = float(np.clip(rng.lognormal(median, spread), lo, hi))
    else:
        raise ValueError(f"unknown seeing law {ranges.fwhm_law!r}: lognormal or log-uniform")
    sci = Psf(
        fwhm=fwhm,
        beta=float(rng.uniform(*ranges.beta_range)),
        q=float(rng.uniform(*(ranges.sci_axis_ratio or (ranges.min_axis_ratio, 1.0)))),
        theta=float(rng.uniform(0, math.pi)),
    )
    ref = Psf(
        fwhm=fwhm * float(rng.uniform(*ranges.ref_fwhm_ratio)),
        beta=float(rng.uniform(*ranges.beta_range)),
        q=float(rng.uniform(ranges.min_axis_ratio, 1.0)),
        theta=float(rng.uniform(0, math.pi)),
    )
    dx, dy = _registration(rng, ranges)
    cross = False
    if ranges.cross_fraction > 0:  # no draw otherwise: the other ranges draw as they always did
        cross = bool(rng.random() < ranges.cross_fraction) and (
            math.hypot(sci.fwhm, ref.fwhm) <= ranges.fwhm_range[1]
        )
    return Conditions(
        sci_psf=sci,
        ref_psf=ref,
        ref_depth=float(rng.uniform(*ranges.ref_depth)),
        sky=float(math.exp(rng.uniform(*np.log(ranges.sky)))),
        read_noise=float(rng.uniform(*ranges.read_noise)),
        gain=float(rng.uniform(*ranges.gain)),
        full_well=float(rng.uniform(*ranges.full_well)),
        reg_dx=dx,
        reg_dy=dy,
        kernel_error=_signed(rng, *ranges.kernel_error),
        flux_error=_signed(rng, *ranges.flux_error),
        cross=cross,
    )


def next_exposure(
    cond: Conditions, rng: np.random.Generator, ranges: ConditionRanges
) -> Conditions:
    """The same field ~15 minutes later: seeing and sky drift, new registration/kernel errors."""
    lo, hi = ranges.fwhm_range
    fwhm = float(np.clip(cond.sci_psf.fwhm * (1 + rng.normal(0, ranges.fwhm_jitter)), lo, hi))
    dx, dy = _registration(rng, ranges)
    return replace(
        cond,
        sci_psf=replace(cond.sci_psf, fwhm=fwhm, theta=float(rng.uniform(0, math.pi))),
        sky=float(cond.sky * math.exp(rng.normal(0, 0.05))),
        reg_dx=dx,
        reg_dy=dy,
        kernel_error=_signed(rng, *ranges.kernel_error),
        flux_error=_signed(rng, *ranges.flux_error),
    )


# --- profiles -------------------------------------------------------------------------------------


@dataclass
class Profile:
    """A unit-flux image patch placed with its [0, 0] pixel at canvas (y0, x0)."""

    data: np.ndarray
    y0: int
    x0: int

    def add_to(self, image: np.ndarray, flux: float) -> None:
        """Add flux x this profile into image, clipped to the image."""
        h, w = self.data.shape
        ys, xs = max(self.y0, 0), max(self.x0, 0)
        ye, xe = min(self.y0 + h, image.shape[0]), min(self.x0 + w, image.shape[1])
        if ye <= ys or xe <= xs:
            return
        patch = self.data[ys - self.y0 : ye - self.y0, xs - self.x0 : xe - self.x0]
        image[ys:ye, xs:xe] += flux * patch


_SUB = np.array([-0.25, 0.25])


def trail_profile(
    psf: Psf,
    x: float,
    y: float,
    length: float = 0.0,
    angle: float = 0.0,
    radius: int | None = None,
    clip: bool = True,
) -> Profile:
    """A point source (length 0) or a line-convolved trail centred at (x, y), pixel-integrated."""
    r = radius if radius is not None else int(math.ceil(5 * psf.fwhm)) + 2
    hx = abs(math.cos(angle)) * length / 2
    hy = abs(math.sin(angle)) * length / 2
    x0, x1 = int(math.floor(x - hx)) - r, int(math.ceil(x + hx)) + r + 1
    y0, y1 = int(math.floor(y - hy)) - r, int(math.ceil(y + hy)) + r + 1
    if clip:  # light beyond the canvas is never seen
        x0, x1 = max(x0, 0), min(x1, CANVAS)
        y0, y1 = max(y0, 0), min(y1, CANVAS)
        if x1 <= x0 or y1 <= y0:
            return Profile(np.zeros((1, 1)), 0, 0)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    n = max(1, int(math.ceil(length * 2)) + 1) if length > 0 else 1
    if n == 1:
        # 2x2 sub-pixel sampling approximates the integral over the pixel.
        acc = np.zeros_like(xx)
        for sy in _SUB:
            for sx in _SUB:
                acc += psf.evaluate(xx + sx - x, yy + sy - y)
        acc /= 4.0
    else:
        ts = np.linspace(-0.5, 0.5, n) * length
        px, py = x + ts * math.cos(angle), y + ts * math.sin(angle)
        acc = np.zeros_like(xx)
        for cx, cy in zip(px, py, strict=True):
            acc += psf.evaluate(xx - cx, yy - cy)
        acc /= n
    return Profile(acc, y0, x0)


def psf_kernel(psf: Psf, radius: int = 12) -> np.ndarray:
    """The PSF centred on a pixel, on a (2r+1)^2 grid, normalised to unit sum."""
    prof = trail_profile(psf, 0.0, 0.0, radius=radius, clip=False)
    return prof.data / prof.data.sum()


# --- the render-match-subtract chain -------------------------------------------------------------


@dataclass
class Scene:
    """What is in the field, in canvas coordinates and electrons of one science exposure."""

    # static point sources: (x, y, flux_sci, flux_ref); a variable star has flux_sci != flux_ref
    stars: list[tuple[float, float, float, float]] = field(default_factory=list)
    # images of static extended light before the PSF (galaxies), science and reference versions
    extended_sci: np.ndarray | None = None
    extended_ref: np.ndarray | None = None
    # science-only light before the PSF (spikes are in both: see spikes_*)
    spikes_sci: np.ndarray | None = None
    spikes_ref: np.ndarray | None = None
    # science-only profiles already convolved with the science PSF: (profile, flux)
    movers: list[tuple[Profile, float]] = field(default_factory=list)
    # science-only pre-PSF light (comet coma and tail)
    mover_extended: np.ndarray | None = None
    # science-only light not passing the PSF (scattered light: glare), e-
    glare: np.ndarray | None = None
    # readout burn lines, e- (science only: the reference is a coadd where they average out)
    burn: np.ndarray | None = None
    # charge added after exposure (cosmic rays, hot pixels, warm columns), e-
    post: np.ndarray | None = None
    # a residual background (sky-subtraction error) added to the difference, e-
    gradient: np.ndarray | None = None


@dataclass
class Rendered:
    """One exposure's stamps (ADU, sky-subtracted), the saturation level and the noise scale."""

    difference: np.ndarray
    science: np.ndarray
    reference: np.ndarray
    saturate: float | None
    sigma_adu: float  # per-pixel difference-image noise away from sources
    difference_e: np.ndarray  # full canvas difference in electrons, for detection statistics


def _add_star(image: np.ndarray, psf: Psf, x: float, y: float, flux: float) -> None:
    if flux <= 0:
        return
    # Bright stars get the whole canvas (their wings matter); faint ones a small box.
    radius = CANVAS if flux > 2e5 else int(math.ceil(5 * psf.fwhm)) + 2
    trail_profile(psf, x, y, radius=radius).add_to(image, flux)


def _convolve(image: np.ndarray, psf: Psf) -> np.ndarray:
    return fftconvolve(image, psf_kernel(psf, radius=20), mode="same")


def _bleed(image: np.ndarray, level: float) -> np.ndarray:
    """Clip at the full well and spread the excess charge up and down its column; return a mask."""
    over = image > level
    if not over.any():
        return over
    for col in np.flatnonzero(over.any(axis=0)):
        column = image[:, col]
        rows = np.flatnonzero(column > level)
        excess = float((column[rows] - level).sum())
        column[rows] = level
        top, bottom = rows.min(), rows.max()
        n_fill = int(excess // level)
        up, down = n_fill // 2, n_fill - n_fill // 2
        column[max(top - up, 0) : top] = level
        column[bottom + 1 : bottom + 1 + down] = level
        remainder = excess - n_fill * level
        edge = bottom + 1 + down
        if edge < column.size:
            column[edge] = min(level, column[edge] + remainder)
    return image >= level


def render(
    scene: Scene, cond: Conditions, rng: np.random.Generator, peak_sigma: float | None = None
) -> Rendered:
    """Render science and reference, add noise and saturation, match PSFs and subtract.

    With `peak_sigma`, the difference noise is conditioned (a constrained Gaussian realisation)
    so that its PSF-filtered value at the centre is exactly that many sigma: a false detection.
    """
    sci_psf, ref_psf = cond.sci_psf, cond.ref_psf
    sci = np.zeros((CANVAS, CANVAS))
    ref = np.zeros((CANVAS, CANVAS))
    for x, y, f_sci, f_ref in scene.stars:
        _add_star(sci, sci_psf, x, y, f_sci)
        _add_star(ref, ref_psf, x + cond.reg_dx, y + cond.reg_dy, f_ref)
    if scene.extended_sci is not None:
        sci += _convolve(scene.extended_sci, sci_psf)
    if scene.extended_ref is not None:
        shifted = _shift(scene.extended_ref, cond.reg_dx, cond.reg_dy)
        ref += _convolve(shifted, ref_psf)
    if scene.spikes_sci is not None:
        sci += _convolve(scene.spikes_sci, sci_psf)
    if scene.spikes_ref is not None:
        ref += _convolve(_shift(scene.spikes_ref, cond.reg_dx, cond.reg_dy), ref_psf)
    for profile, flux in scene.movers:
        profile.add_to(sci, flux)
    if scene.mover_extended is not None:
        sci += _convolve(scene.mover_extended, sci_psf)
    if scene.glare is not None:
        sci += scene.glare
    if scene.burn is not None:
        sci += scene.burn
    np.maximum(sci, 0, out=sci)
    np.maximum(ref, 0, out=ref)

    # Science: Poisson on sky + sources, read noise, charge from cosmic rays, bleeding, ADC.
    sci_e = rng.poisson(sci + cond.sky).astype(np.float64)
    sci_e += rng.normal(0, cond.read_noise, sci_e.shape)
    if scene.post is not None:
        sci_e += scene.post
    level = cond.saturation_e
    saturated = _bleed(sci_e, level)
    sci_adu = np.clip(np.round(sci_e / cond.gain), -32768, ADC_MAX)
    sci_e = sci_adu * cond.gain - cond.sky

    # Reference: a deep coadd (noise / sqrt(depth)), saturated and bled like its exposures.
    ref_sigma = np.sqrt((ref + cond.var_ref * cond.ref_depth) / cond.ref_depth)
    ref_e = ref + cond.sky + rng.normal(0, 1, ref.shape) * ref_sigma
    _bleed(ref_e, level)
    ref_e = ref_e - cond.sky

    ks, kr = _kernels(cond)
    ref_scaled = ref_e * (1.0 + cond.flux_error)
    diff = _apply(ks, sci_e, mode="nearest") - _apply(kr, ref_scaled, mode="nearest")
    if ks is not None:
        saturated = gaussian_filter(saturated.astype(float), ks) > 0.05
    if scene.gradient is not None:
        diff = diff + scene.gradient
    if peak_sigma is not None:
        _constrain_peak(diff, cond, peak_sigma)
    saturate_adu = (level - cond.sky) / cond.gain
    diff_adu = diff / cond.gain
    has_saturation = bool(saturated[MARGIN:-MARGIN, MARGIN:-MARGIN].any())
    diff_adu[saturated] = saturate_adu
    crop = (slice(MARGIN, MARGIN + STAMP), slice(MARGIN, MARGIN + STAMP))
    return Rendered(
        difference=diff_adu[crop].astype(np.float32),
        science=(sci_e / cond.gain)[crop].astype(np.float32),
        reference=(ref_e / cond.gain)[crop].astype(np.float32),
        saturate=float(saturate_adu) if has_saturation else None,
        sigma_adu=math.sqrt(difference_variance(cond)) / cond.gain,
        difference_e=diff,
    )


def _constrain_peak(diff: np.ndarray, cond: Conditions, peak_sigma: float) -> None:
    """Shift the noise so the PSF-filtered value at the centre is peak_sigma (Hoffman-Ribak)."""
    q = in_difference(psf_kernel(cond.sci_psf, radius=8), cond)
    r = q.shape[0] // 2
    sigma = filter_noise_sigma(q, cond)
    patch = diff[CENTRE - r : CENTRE + r + 1, CENTRE - r : CENTRE + r + 1]
    observed = float((patch * q).sum())
    cov = noise_covariance_with_filter(q, cond)
    R = cov.shape[0] // 2
    diff[CENTRE - R : CENTRE + R + 1, CENTRE - R : CENTRE + R + 1] += (
        (peak_sigma * sigma - observed) * cov / sigma**2
    )


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    from scipy.ndimage import shift

    return shift(image, (dy, dx), order=1, mode="constant")


# --- noise model and matched filters -------------------------------------------------------------


def _apply(kernel_sigma: float | None, patch: np.ndarray, mode: str = "constant") -> np.ndarray:
    return patch if kernel_sigma is None else gaussian_filter(patch, kernel_sigma, mode=mode)


def _kernels(cond: Conditions) -> tuple[float | None, float | None]:
    """Matching kernel applied to (science, reference) in the difference; None is identity.

    Cross-convolution convolves each with the other's PSF (Gaussian of the same FWHM, with the
    exposure's kernel error); otherwise the sharper image is convolved to match the broader."""
    if cond.cross:
        scale = 1.0 + cond.kernel_error
        return cond.ref_psf.sigma * scale, cond.sci_psf.sigma * scale
    which, k = cond.matching
    return (None, k) if which == "ref" else (k, None)


def difference_variance(cond: Conditions) -> float:
    """Per-pixel variance of the difference image away from sources, e-^2."""
    delta = np.zeros((1, 1))
    delta[0, 0] = 1.0
    return filter_noise_sigma(delta, cond) ** 2


def in_difference(profile: np.ndarray, cond: Conditions) -> np.ndarray:
    """A science-only unit profile as it appears in the difference (after any science kernel)."""
    ks, _ = _kernels(cond)
    return _apply(ks, np.pad(profile, 8))[8:-8, 8:-8] if ks is not None else profile


def filter_noise_sigma(q: np.ndarray, cond: Conditions) -> float:
    """Standard deviation of sum(q * D) over difference-image noise, accounting for correlation."""
    ks, kr = _kernels(cond)
    qp = np.pad(q, 10)
    scale = (1.0 + cond.flux_error) ** 2
    var = cond.var_sci * float((_apply(ks, qp) ** 2).sum())
    var += cond.var_ref * scale * float((_apply(kr, qp) ** 2).sum())
    return math.sqrt(var)


def noise_covariance_with_filter(q: np.ndarray, cond: Conditions) -> np.ndarray:
    """Cov(D_j, sum_i q_i D_i) as an image on q's grid (padded by 10 px)."""
    ks, kr = _kernels(cond)
    qp = np.pad(q, 10)
    scale = (1.0 + cond.flux_error) ** 2

    def twice(k: float | None) -> np.ndarray:
        if k is None:
            return qp
        return gaussian_filter(gaussian_filter(qp, k, mode="constant"), k, mode="constant")

    return cond.var_sci * twice(ks) + cond.var_ref * scale * twice(kr)


def flux_for_snr(snr: float, profile: np.ndarray, cond: Conditions) -> float:
    """Flux (e-) giving the optimal matched-filter SNR for this pixelised (trailed) profile."""
    q = in_difference(profile, cond)
    return snr * filter_noise_sigma(q, cond) / float((q * q).sum())


def detection_sigma(
    diff_e: np.ndarray, cond: Conditions, x: float, y: float, search: int = 1
) -> float:
    """Largest PSF matched-filter value in sigma within `search` px of canvas (x, y)."""
    kernel = in_difference(psf_kernel(cond.sci_psf, radius=8), cond)
    sigma = filter_noise_sigma(kernel, cond)
    r = kernel.shape[0] // 2
    best = -np.inf
    ix, iy = int(round(x)), int(round(y))
    for yy in range(iy - search, iy + search + 1):
        for xx in range(ix - search, ix + search + 1):
            if r <= yy < diff_e.shape[0] - r and r <= xx < diff_e.shape[1] - r:
                patch = diff_e[yy - r : yy + r + 1, xx - r : xx + r + 1]
                best = max(best, float((patch * kernel).sum()) / sigma)
    return best

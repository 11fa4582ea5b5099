"""What a human checks besides the stamps: motion residuals, magnitudes, trail against motion.

The paper's screeners reject mis-linked and variable-star tracklets by their "positional residuals
against the fitted motion"; this module measures those cues, once, from exactly what ingest stores
for each detection (MJD, RA, Dec, magnitude, detector x/y and the difference stamp), so that
training, inference and retraining all see the same numbers. numpy and scipy only (no torch).

Per detection (`DETECTION_FEATURES`), in this order:
- the position residual against the tracklet's linear fit (great-circle offsets on the tangent
  plane, arcsec), along and across the direction of motion, and its size;
- the magnitude minus the tracklet's median magnitude;
- the trail measured from the stamp's second moments (length in px, elongation) against the
  trail the fitted motion predicts in one exposure (`EXPOSURE_S`), and the angle between the
  measured trail and the direction of motion on the detector (from the x/y fit);
- the distance to the nearest chip edge (from x/y and `CHIP_PX`).
Per tracklet (`TRACKLET_FEATURES`): the rate (deg/day), the fit's RMS, the magnitude scatter and
range, the number of detections and the time span.

Cue set 2 (`CUES`: a model's TcnConfig.cues says which it was trained on) adds physical
invariants, measured from the same data: each detection's SNR and PSF width from its stamp, its
expected astrometric error from them (sqrt(2) sigma_PSF / SNR per axis, wider along a trail:
sigma^2 + L^2 / 12, with a 0.08" floor), its residuals in units of that error; per tracklet the
fit's chi^2 per degree of freedom in those units and the motion's significance (rate over its
error). A faint fast mover whose centroids scatter along its trail is then not a chance
linkage, and a variable star whose "motion" is within its errors is not a mover, whatever the
survey's pixel scale or seeing.

Cue set 3 adds the exposure's seeing where the survey sends it (`fwhm_px`: the PSF's FWHM in the
stamp's pixels; NaN when not sent): the source's measured width in units of the seeing, the
seeing itself and whether it is known. A point source is as wide as the seeing, however broad or
sharp that is: a star in 6 px seeing is not a comet, one in 1 px seeing is not a cosmic ray.
Cue set 4 is set 3 without the seeing itself: the network sees only the invariant, so that a
seeing broader or sharper than any it was trained on is not a value it has never seen.

Cue set 5 is set 3 with the SNR and the errors measured as they are, not as the pixels suggest:
the second moments' SNR is in units of the stamp's pixel noise, and where the subtraction
correlated that noise (a science image convolved to match a broader reference) it is 2-6x too
high, or 0 where a sharp PSF is undersampled; chi^2/dof and the motion's significance in those
units then call a faint real mover a poor fit. Set 5 measures the SNR through a Gaussian matched
filter of the exposure's seeing (`filter_sigma`) in units of the *filtered* stamp's own noise
(`filtered_snr`: correlated noise counted), the errors from it with the trail the fitted motion
predicts, and chi^2/dof and the motion's significance in those errors (`snr_filtered`,
`sigma_*_filtered_arcsec`, `chi2_dof_filtered`, `motion_sigma_filtered`). They cost about
0.5 ms a stamp (the rest of the cues about 0.4 ms; `bench/scoring_stages.py`), so `measure` and
`batch_raw` leave them NaN when told (`filtered=False`): scoring with a model of another cue set
(`needs_filtered`) does not pay for them. What each stamp says of its source is measured for
many stamps at once (`stamp_cues`): the medians, smoothing, regions and sorting of a chunk of
stamps in one call each, in chunks small enough to stay in the CPU's cache.

Cue set 6 is set 5 with the chi^2 of the motion fit *weighted* by those errors
(`chi2_dof_weighted`, `weighted_chi2`). Sets 2-5 put the residuals of an unweighted fit in the
errors: with one bright detection among faint ones, the line passes where the faint ones pull it
and the bright one's residual, in its own small error, is large, so a real mover's chi^2 grew
with the spread of its errors (the seeing): 99.6% of real movers lay under 6.8 in nominal
seeing, 9.2 with a bad subtraction and 33.4 in 5.5-7 px seeing (`bench/mixed_cues.py`), and a
network trained across seeings had to let mis-linked tracklets through. The weighted fit's lies
under 4.0-4.4 in all three: a real mover's follows chi^2 with 2 (n - 2) degrees of freedom,
whatever its errors.

The network inputs (`detection_inputs`, `tracklet_inputs`) are fixed, stateless transforms of
these raw values (logs, soft clipping) so that every input is of order one; the raw values are
what the tracklet page shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXPOSURE_S = 30.0  # ATLAS exposure; the trail a mover leaves in one exposure scales with it
CHIP_PX = 10560.0  # ATLAS STA-1600 detector, px on a side
PIXEL_SCALE = 1.86  # arcsec / px (only used where x/y are missing their motion)

DETECTION_FEATURES = (
    "resid_along_arcsec",
    "resid_cross_arcsec",
    "resid_arcsec",
    "dmag",
    "trail_px",
    "trail_expected_px",
    "elongation",
    "trail_angle_deg",
    "edge_px",
    # cue set 2
    "snr",
    "psf_sigma_px",
    "sigma_along_arcsec",
    "sigma_cross_arcsec",
    # cue set 3
    "fwhm_px",
    # cue set 5: the matched filter's SNR in the filtered stamp's noise, the errors from it
    "snr_filtered",
    "sigma_along_filtered_arcsec",
    "sigma_cross_filtered_arcsec",
)
TRACKLET_FEATURES = (
    "rate_deg_day",
    "fit_rms_arcsec",
    "mag_scatter",
    "mag_range",
    "n_detections",
    "span_hours",
    # cue set 2
    "chi2_dof",
    "motion_sigma",
    # cue set 5: the same in the matched filter's errors
    "chi2_dof_filtered",
    "motion_sigma_filtered",
    # cue set 6: chi^2/dof of the fit weighted by those errors
    "chi2_dof_weighted",
)
# The network inputs of each cue set: (per detection, per tracklet). Set 1 is the shipped
# baseline's; it reads the first 9 detection and 6 tracklet features only.
CUES = {1: (10, 6), 2: (13, 8), 3: (16, 8), 4: (15, 8), 5: (16, 8), 6: (16, 8)}
FILTERED_CUES = (5, 6)  # the cue sets that read the matched filter's columns
# The raw tracklet feature each tracklet input of a cue set is made from, in input order.
TRACKLET_INPUT_FEATURES = {
    cues: TRACKLET_FEATURES[:6]
    + (() if cues == 1
       else ("chi2_dof_filtered", "motion_sigma_filtered") if cues == 5
       else ("chi2_dof_weighted", "motion_sigma_filtered") if cues == 6
       else ("chi2_dof", "motion_sigma"))
    for cues in CUES
}  # fmt: skip
# How many raw columns (from the first) each cue set reads: sets 1-4 read rows stored before
# set 5 existed (14 detection, 8 tracklet columns), set 5 rows stored before set 6 (10).
DETECTION_COLUMNS = {1: 9, 2: 13, 3: 14, 4: 14, 5: 17, 6: 17}
TRACKLET_COLUMNS = {1: 6, 2: 8, 3: 8, 4: 8, 5: 10, 6: len(TRACKLET_FEATURES)}
N_DETECTION_INPUTS, N_TRACKLET_INPUTS = CUES[1]
ASTROMETRIC_FLOOR = 0.08  # arcsec: reference catalogue and registration


@dataclass
class MotionFit:
    """A linear fit of one tracklet's positions against time."""

    rate_deg_day: float
    position_angle_deg: float  # east of north
    residual_along: np.ndarray  # arcsec, along the motion (positive: ahead)
    residual_cross: np.ndarray  # arcsec, across it
    rms_arcsec: float  # degrees-of-freedom corrected: sqrt(sum r^2 / (2 (n - 2)))
    pixel_rate: float  # px / day on the detector (from x/y)
    pixel_angle: float  # radians, direction of motion on the detector, atan2(dy, dx)


def _linear_fit(t: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Slope and residuals of v against t (least squares with an intercept)."""
    a = np.stack([np.ones_like(t), t], axis=1)
    coef, *_ = np.linalg.lstsq(a, v, rcond=None)
    return float(coef[1]), v - a @ coef


def tangent_plane(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic offsets (arcsec east, north) about the mean position; straight great circles."""
    a, d = np.radians(ra), np.radians(dec)
    a0 = float(np.angle(np.exp(1j * a).mean()))  # circular mean: safe across RA 0/360
    d0 = float(d.mean())
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    arcsec = math.degrees(1) * 3600
    return xi * arcsec, eta * arcsec


def fit_motion(mjd, ra, dec, x=None, y=None) -> MotionFit:
    """Fit uniform motion on the tangent plane at the tracklet's mean position."""
    mjd, ra, dec = (np.asarray(v, dtype=np.float64) for v in (mjd, ra, dec))
    n = len(mjd)
    if n < 2:
        raise ValueError("a motion fit needs at least two detections")
    t = mjd - mjd.mean()
    xi, eta = tangent_plane(ra, dec)
    vx, rx = _linear_fit(t, xi)
    vy, ry = _linear_fit(t, eta)
    speed = math.hypot(vx, vy)  # arcsec / day
    if speed > 0:
        ux, uy = vx / speed, vy / speed
    else:
        ux, uy = 0.0, 1.0
    along = rx * ux + ry * uy
    cross = -rx * uy + ry * ux
    dof = max(1, 2 * (n - 2))
    rms = float(math.sqrt(float((rx**2 + ry**2).sum()) / dof))
    pa = math.degrees(math.atan2(vx, vy)) % 360.0
    if x is not None and y is not None:
        px, _ = _linear_fit(t, np.asarray(x, dtype=np.float64))
        py, _ = _linear_fit(t, np.asarray(y, dtype=np.float64))
        pixel_rate, pixel_angle = math.hypot(px, py), math.atan2(py, px)
    else:
        pixel_rate, pixel_angle = speed / PIXEL_SCALE, math.atan2(vy, vx)
    return MotionFit(speed / 3600.0, pa, along, cross, rms, pixel_rate, pixel_angle)


STAMP_CHUNK = 32  # stamps measured at once: their float64 copies stay in the CPU's cache


def stamp_backgrounds(stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`stamp_background` of (N, H, W) stamps at once: (the stamps in float64 with missing pixels
    at the fill, the fills, the robust sigmas, whether any pixel is finite), by two partial
    selections for all rows (`classifier.preprocess.middle_pairs`)."""
    from classifier.preprocess import middle_pairs

    raw = np.asarray(stamps)
    n = len(raw)
    flat = raw.reshape(n, -1)
    img = flat.astype(np.float64)
    finite = np.isfinite(flat)
    # the middle values, selected in float32 where the stamps are float32 (the same order,
    # faster); their mean is the median of the pixels in float64
    low, high, count = middle_pairs(flat if raw.dtype == np.float32 else img, finite)
    low, high = low.astype(np.float64), high.astype(np.float64)
    some = count > 0
    with np.errstate(invalid="ignore"):  # rows with nothing finite: +-inf, not used
        fill = np.where(some, (low + high) / 2, 0.0)
        # the deviations' median: that of their middle values, as subtracting keeps the order
        centre = np.where(some, ((low - fill) + (high - fill)) / 2, 0.0)
    deviations = np.abs((img - fill[:, None]) - centre[:, None])
    d_low, d_high, _ = middle_pairs(deviations, finite)
    with np.errstate(invalid="ignore"):
        noise = 1.4826 * ((d_low + d_high) / 2)
    noise = np.where(some & (noise != 0), noise, 1.0)
    filled = np.where(finite, img, fill[:, None]).reshape(raw.shape)
    return filled, fill, noise, some


def stamp_background(stamp: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """(the stamp in float64 with missing pixels at the fill, the fill, the robust sigma) of a
    stamp, None where no pixel is finite. The fill is the median of the finite pixels, the
    robust sigma 1.4826 x the median absolute deviation of the finite pixels less the fill
    from their median (1 where that is 0): np.median's values to the bit."""
    img, fill, noise, some = stamp_backgrounds(np.asarray(stamp)[None])
    return (img[0], float(fill[0]), float(noise[0])) if some[0] else None


def trail_moments(
    stamp: np.ndarray, window: int = 45, nsigma: float = 2.0
) -> tuple[float, float, float]:
    """(length px, angle rad in [0, pi), elongation) of the source at the stamp's centre
    (`source_moments`)."""
    return source_moments(stamp, window, nsigma)[:3]


def source_moments(
    stamp: np.ndarray, window: int = 45, nsigma: float = 2.0
) -> tuple[float, float, float, float, float]:
    """(length px, angle rad in [0, pi), elongation, SNR, PSF sigma px) of the source at the
    stamp's centre (`stamps_moments` of one stamp)."""
    return tuple(float(v) for v in stamps_moments(np.asarray(stamp)[None], window, nsigma)[0])


NO_SOURCE = (0.0, 0.0, 1.0, 0.0, 0.0)  # source_moments where there is nothing to measure


def stamps_moments(stamps: np.ndarray, window: int = 45, nsigma: float = 2.0) -> np.ndarray:
    """(N, 5): length px, angle rad in [0, pi), elongation, SNR, PSF sigma px of the source at
    the centre of each of (N, H, W) stamps.

    The central `window` px are smoothed with a 3x3 box, thresholded at `nsigma` robust sigma,
    and the connected region that holds (or is nearest to) the centre is measured by its
    flux-weighted second moments: a line of length L convolved with the PSF has variance
    L^2 / 12 + s^2 along it and s^2 across, so L = sqrt(12 (major - minor)). A stamp with no
    such region gives (0, 0, 1, 0, 0). The PSF sigma is the square root of the minor axis's
    variance; the SNR is the matched-filter SNR of a Gaussian of that width with the region's
    flux. The background, smoothing and regions of all stamps are found at once.
    """
    from scipy import ndimage

    img, fill, noise, some = stamp_backgrounds(stamps)
    out = np.tile(np.asarray(NO_SOURCE), (len(img), 1))
    size = img.shape[1]
    half = min(window, size) // 2
    c = size // 2
    cut = img[:, c - half : c + half + 1, c - half : c + half + 1] - fill[:, None, None]
    sigma = noise / 3.0  # a 3x3 mean of correlated noise
    smooth = ndimage.uniform_filter(cut, (1, 3, 3))  # each stamp on its own
    mask = (smooth > nsigma * sigma[:, None, None]) & some[:, None, None]
    within = np.zeros((3, 3, 3), bool)  # regions connected within a stamp, not across
    within[1] = ndimage.generate_binary_structure(2, 1)
    labels, _ = ndimage.label(mask, within)
    for i in np.flatnonzero(labels.reshape(len(labels), -1).any(axis=1)):
        out[i] = _region_moments(cut[i], labels[i], half, sigma[i])
    return out


def _region_moments(cut: np.ndarray, labels: np.ndarray, half: int, sigma: float) -> tuple:
    """`stamps_moments`' values of one stamp's region at (or nearest to) the centre."""
    centre = labels[half, half]
    if not centre:
        ys, xs = np.nonzero(labels)
        nearest = int(np.argmin((ys - half) ** 2 + (xs - half) ** 2))
        centre = labels[ys[nearest], xs[nearest]]
    ys, xs = np.nonzero(labels == centre)
    w = np.clip(cut[ys, xs], 0, None)
    if w.sum() <= 0 or len(w) < 3:
        return NO_SOURCE
    flux = float(cut[ys, xs].sum())
    w = w / w.sum()
    mx, my = float((w * xs).sum()), float((w * ys).sum())
    dx, dy = xs - mx, ys - my
    cxx, cyy = float((w * dx * dx).sum()), float((w * dy * dy).sum())
    cxy = float((w * dx * dy).sum())
    spread = math.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    major, minor = (cxx + cyy) / 2 + spread, max((cxx + cyy) / 2 - spread, 1e-6)
    length = math.sqrt(max(0.0, 12.0 * (major - minor)))
    angle = (0.5 * math.atan2(2 * cxy, cxx - cyy)) % math.pi
    # the matched-filter SNR of a Gaussian of this width holding this flux, in pixel noise
    # (3 sigma: `sigma` is that of a 3x3 mean), the SNR a survey's detector reports
    psf_sigma = math.sqrt(minor)
    snr = flux / (3.0 * sigma * math.sqrt(4 * math.pi) * max(psf_sigma, 0.5))
    return length, angle, math.sqrt(major / minor), max(snr, 0.0), psf_sigma


def needs_filtered(cues: int) -> bool:
    """Whether a cue set reads the matched filter's columns (`measure(..., filtered=True)`)."""
    return cues in FILTERED_CUES


FILTER_WINDOW = 81  # px: the central part of a stamp the matched filter is measured in
FILL_SHARE = 0.02  # a value that fills more of the window's finite pixels is a fill, not data


def filtered_snr(stamp: np.ndarray, sigma_px: float, search: int = 1) -> float:
    """The SNR of the source at the stamp's centre through a unit-sum Gaussian matched filter of
    `sigma_px`, in units of the filtered stamp's own robust noise (`filtered_snrs` of one)."""
    return float(filtered_snrs(np.asarray(stamp)[None], [sigma_px], search)[0])


def filtered_snrs(stamps: np.ndarray, sigmas_px, search: int = 1) -> np.ndarray:
    """(N,) the SNR of the source at the centre of each of (N, H, W) stamps through a unit-sum
    Gaussian matched filter of its `sigmas_px`, in units of the filtered stamp's own robust
    noise; 0 where there is too little stamp to measure.

    The noise is measured after filtering, away from the centre, so that noise the subtraction
    correlated (a science image convolved to match a broader reference) counts as it is: such a
    stamp's filtered noise is 2-6x its pixel noise over the filter's norm, and an SNR from the
    pixel noise as much too high. Only the central `FILTER_WINDOW` px are filtered (the source
    and enough noise around it). Missing pixels and any value that fills more than `FILL_SHARE`
    of the finite ones (a chip edge filled with 0) are left out of both, the filter normalised by
    the share of good pixels under it. The best value within `search` px of the centre, as a
    survey's detector reports it. The sorting, the fills and the level of all stamps are found
    at once; each stamp is filtered at its own width, the share of good pixels under the filter
    of a stamp with none left out from the filter of ones along each axis (separable)."""
    raw = np.asarray(stamps)
    n = len(raw)
    sigmas = np.maximum(np.asarray(sigmas_px, np.float64).reshape(n), 0.5)
    c = min(raw.shape[1:]) // 2
    low = max(0, c - FILTER_WINDOW // 2)
    window = raw[:, low : c + FILTER_WINDOW // 2 + 1, low : c + FILTER_WINDOW // 2 + 1]
    half = c - low  # the stamps' centre in the window
    ok = np.isfinite(window)
    # one sort (in the stamps' own dtype: the same order) for the fills and the median;
    # missing pixels as NaN, which sorts last
    ordered = np.sort(np.where(ok, window, np.nan).reshape(n, -1), axis=1)
    count = ok.reshape(n, -1).sum(axis=1)
    # runs of one value longer than FILL_SHARE of the finite pixels (and 3): fills
    run = np.floor(np.maximum(3, FILL_SHARE * count)).astype(np.int64)  # a fill is longer
    ahead = np.arange(ordered.shape[1])[None, :] + run[:, None]
    inside = ahead < count[:, None]
    same = np.take_along_axis(ordered, np.minimum(ahead, ordered.shape[1] - 1), axis=1) == ordered
    filled = (same & inside).any(axis=1)
    middle = count // 2
    rows = np.arange(n)
    upper = ordered[rows, np.minimum(middle, ordered.shape[1] - 1)].astype(np.float64)
    lower = ordered[rows, np.maximum(middle - 1, 0)].astype(np.float64)
    level = np.where(count % 2 == 1, upper, (lower + upper) / 2.0)
    usable = count >= 100
    for i in np.flatnonzero(filled & usable):
        usable[i], level[i] = _without_fills(window[i], ok[i], ordered[i, : count[i]])
    cut = window.astype(np.float64)
    yy, xx = np.ogrid[: cut.shape[1], : cut.shape[2]]
    distance2 = (yy - half) ** 2 + (xx - half) ** 2
    box = np.s_[half - search : half + search + 1, half - search : half + search + 1]
    snr = np.zeros(n)
    for i in np.flatnonzero(usable):
        s = sigmas[i]
        filt, cover = _matched_filter(cut[i], ok[i], level[i], s)
        well = cover > 0.9
        away = well & (distance2 > (3 * s + 3) ** 2)
        if away.sum() < 200:
            away = well
        if away.sum() < 50:
            continue
        around = filt[away]
        background = _median(around)
        noise = 1.4826 * _median(np.abs(around - background))
        if not noise > 0:
            continue
        best = float(np.max((filt[box] - background) / np.maximum(cover[box], 0.5)))
        snr[i] = max(best / noise, 0.0)
    return snr


def _median(values: np.ndarray) -> float:
    """`np.median` of a 1-D array of finite values, to the bit (the mean of the two middle
    values), by one partial selection instead of two."""
    at = (len(values) - 1) // 2
    parted = np.partition(values, at)
    low = float(parted[at])
    return (low + (low if len(values) % 2 else float(parted[at + 1 :].min()))) / 2


def _without_fills(window: np.ndarray, ok: np.ndarray, values: np.ndarray) -> tuple[bool, float]:
    """(enough pixels left, the median of the rest) of one stamp's window whose sorted finite
    `values` hold fills (`filtered_snrs`); `ok` loses the fills' pixels, in place."""
    values = values.astype(np.float64)
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    runs = np.diff(np.concatenate([starts, [len(values)]]))
    long = runs > max(3, FILL_SHARE * len(values))
    ok &= ~np.isin(window.astype(np.float64), values[starts[long]])
    values = values[np.repeat(~long, runs)]
    if len(values) < 100:
        return False, 0.0
    middle = len(values) // 2
    level = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0
    return True, float(level)


def _matched_filter(cut: np.ndarray, ok: np.ndarray, level: float, s: float):
    """(the filtered stamp less its level, the share of good pixels under the filter) of one
    window: with no pixel left out, that share is the filter of ones, separable."""
    from scipy import ndimage

    if ok.all():
        filt = ndimage.gaussian_filter(cut - level, s, mode="constant", truncate=3.0)
        edge = ndimage.gaussian_filter1d(np.ones(cut.shape[0]), s, mode="constant", truncate=3.0)
        across = ndimage.gaussian_filter1d(np.ones(cut.shape[1]), s, mode="constant", truncate=3.0)
        return filt, np.outer(edge, across)
    both = np.stack([np.where(ok, cut - level, 0.0), ok.astype(np.float64)])
    filt, cover = ndimage.gaussian_filter(both, (0, s, s), mode="constant", truncate=3.0)
    return filt, cover


def filter_sigma(fwhm_px: float, psf_sigma_px: float) -> float:
    """The PSF sigma (px) to filter with: the exposure's seeing as the pixels sample it
    (sqrt((FWHM / 2.3548)^2 + 1/12)) where it is known, else the source's measured width
    within 0.7-4 px."""
    if np.isfinite(fwhm_px) and fwhm_px > 0:
        return math.sqrt((fwhm_px / FWHM_PER_SIGMA) ** 2 + 1.0 / 12.0)
    return min(max(psf_sigma_px, 0.7), 4.0)


def expected_errors(snr: float, psf_sigma_px: float, length_px: float, scale: float):
    """(along, across) expected 1-sigma centroid error in arcsec of a detection: sqrt(2) s / SNR
    per axis, s^2 + L^2 / 12 along a trail, a floor for the catalogue and registration; an
    unmeasured source (SNR 0) gets the error of one at SNR 3."""
    s = max(psf_sigma_px, 0.5)
    snr = max(snr, 3.0)
    across = math.hypot(ASTROMETRIC_FLOOR, math.sqrt(2) * s / snr * scale)
    along = math.hypot(
        ASTROMETRIC_FLOOR, math.sqrt(2) * math.sqrt(s * s + length_px**2 / 12) / snr * scale
    )
    return along, across


def stamp_cues(stamps, fwhm_px, filtered: bool = True) -> np.ndarray:
    """(N, 7) what each of N stamps says of its source, measured for many stamps at once (in
    chunks of `STAMP_CHUNK`): `stamps_moments`' five values, the matched filter's width
    (`filter_sigma`) and SNR (`filtered_snrs`; NaN both where `filtered` is False)."""
    stamps = np.asarray(stamps)
    fwhm = np.asarray(fwhm_px, np.float64).reshape(len(stamps))
    out = np.full((len(stamps), 7), np.nan)
    for at in range(0, len(stamps), STAMP_CHUNK):
        part = np.s_[at : at + STAMP_CHUNK]
        out[part, :5] = stamps_moments(stamps[part])
        if filtered:
            width = [filter_sigma(f, p) for f, p in zip(fwhm[part], out[part, 4], strict=True)]
            out[part, 5] = width
            out[part, 6] = filtered_snrs(stamps[part], width)
    return out


@dataclass
class TrackletFeatures:
    """Raw (unscaled) cues of one tracklet: per detection (n, D) and per tracklet (F,)."""

    detections: np.ndarray
    tracklet: np.ndarray
    fit: MotionFit


def measure(
    mjd,
    ra,
    dec,
    mag,
    x,
    y,
    stamps,
    fwhm_px=None,
    *,
    exposure_s: float = EXPOSURE_S,
    chip_px: float = CHIP_PX,
    filtered: bool = True,
    stamp_values: np.ndarray | None = None,
) -> TrackletFeatures:
    """The cues of one tracklet from what ingest stores; rows in the order given (any order).

    `fwhm_px` is each detection's exposure seeing in stamp pixels (NaN or None: not known).
    `filtered=False` leaves cue set 5's columns (the matched filter's) NaN, unmeasured.
    `stamp_values`: the stamps' `stamp_cues`, where already measured (`batch_raw`)."""
    mjd, ra, dec, mag, x, y = (np.asarray(v, dtype=np.float64) for v in (mjd, ra, dec, mag, x, y))
    n = len(mjd)
    fwhm = np.full(n, np.nan) if fwhm_px is None else np.asarray(fwhm_px, dtype=np.float64)
    if fwhm.shape != (n,):
        raise ValueError("fwhm_px needs one value (or NaN) per detection")
    fwhm = np.where(np.isfinite(fwhm) & (fwhm > 0), fwhm, np.nan)
    if not n == len(ra) == len(dec) == len(mag) == len(x) == len(y) == len(stamps):
        raise ValueError("every detection needs mjd, ra, dec, mag, x, y and a stamp")
    if n < 2:
        raise ValueError(f"a tracklet needs at least 2 detections for its motion, got {n}")
    for name, values in (("mjd", mjd), ("ra", ra), ("dec", dec), ("x", x), ("y", y)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite for every detection")
    # a magnitude not measured (NaN: ingest's sentinel or missing one) is left out of the
    # magnitude cues: its dmag is 0, the scatter and range are those of the measured ones
    measured = mag[np.isfinite(mag)]
    fit = fit_motion(mjd, ra, dec, x, y)
    med = float(np.median(measured)) if len(measured) else 0.0
    dmags = np.where(np.isfinite(mag), mag - med, 0.0)
    expected = fit.pixel_rate * exposure_s / 86400.0
    # arcsec per px from the fit itself (another survey's pixel scale), else ATLAS's
    speed = fit.rate_deg_day * 3600.0
    scale = speed / fit.pixel_rate if fit.pixel_rate > 1e-9 and speed > 0 else PIXEL_SCALE
    if stamp_values is None:
        stamp_values = stamp_cues(stamps, fwhm, filtered=filtered)
    rows = []
    for i in range(n):
        length, angle, elong, snr, psf_sigma, width, snr_filtered = stamp_values[i].tolist()
        sigma_along, sigma_cross = expected_errors(snr, psf_sigma, length, scale)
        if filtered:  # cue set 5: at the seeing's width, along the trail the fit predicts
            along_filtered, cross_filtered = expected_errors(snr_filtered, width, expected, scale)
        else:
            snr_filtered = along_filtered = cross_filtered = math.nan
        diff = abs((angle - fit.pixel_angle + math.pi / 2) % math.pi - math.pi / 2)
        edge = min(x[i], y[i], chip_px - x[i], chip_px - y[i])
        rows.append(
            [
                fit.residual_along[i],
                fit.residual_cross[i],
                math.hypot(fit.residual_along[i], fit.residual_cross[i]),
                dmags[i],
                length,
                expected,
                elong,
                math.degrees(diff),
                edge,
                snr,
                psf_sigma,
                sigma_along,
                sigma_cross,
                fwhm[i],
                snr_filtered,
                along_filtered,
                cross_filtered,
            ]
        )
    span = float(mjd.max() - mjd.min()) * 24.0
    scatter, spread = (
        (float(np.std(measured)), float(np.ptp(measured))) if len(measured) else (0.0, 0.0)
    )
    rows = np.asarray(rows, np.float64)
    dof = max(1, 2 * (n - 2))
    # the rate's error per axis: the positions' mean variance over the spread of the times
    t = mjd - mjd.mean()
    lever = math.sqrt(float((t**2).sum())) or 1e-9

    def fit_quality(s_along: np.ndarray, s_cross: np.ndarray) -> list[float]:
        """[chi^2 / dof, motion significance] of the fit in these expected errors."""
        r_along, r_cross = fit.residual_along / s_along, fit.residual_cross / s_cross
        chi2 = float((r_along**2 + r_cross**2).sum())
        sigma_rate = math.sqrt(float((s_along**2 + s_cross**2).mean() / 2)) / lever  # "/day
        return [chi2 / dof, speed / sigma_rate]

    column = DETECTION_FEATURES.index
    tracklet = [fit.rate_deg_day, fit.rms_arcsec, scatter, spread, n, span]
    tracklet += fit_quality(
        rows[:, column("sigma_along_arcsec")], rows[:, column("sigma_cross_arcsec")]
    )
    if filtered:
        s_along = rows[:, column("sigma_along_filtered_arcsec")]
        s_cross = rows[:, column("sigma_cross_filtered_arcsec")]
        weighted = weighted_chi2(t, fit.residual_along, s_along) + weighted_chi2(
            t, fit.residual_cross, s_cross
        )
        tracklet += fit_quality(s_along, s_cross) + [weighted / dof]
    else:
        tracklet += [math.nan, math.nan, math.nan]
    return TrackletFeatures(rows, np.asarray(tracklet, np.float64), fit)


def weighted_chi2(t: np.ndarray, residual: np.ndarray, sigma: np.ndarray) -> float:
    """chi^2 of one axis's positions about the line fitted to them with weights 1 / sigma^2.

    `residual` may be the residuals of any line (an unweighted fit's): a line fitted to them
    is the weighted fit's correction, since the model (an offset and a rate) is linear. With one
    precise detection among faint ones, the unweighted line passes where the faint ones pull it
    and the precise one's residual, in its own small error, is large: chi^2 then grows with the
    spread of the errors (with the seeing), not with the misfit. The weighted fit's chi^2 of a
    real mover follows chi^2 with 2 (n - 2) degrees of freedom, whatever the errors."""
    w = 1.0 / np.asarray(sigma, np.float64) ** 2
    return float((w * weighted_residuals(t, residual, sigma) ** 2).sum())


def weighted_residuals(t: np.ndarray, residual: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """One axis's residuals about the line fitted with weights 1 / sigma^2 (see `weighted_chi2`);
    `t` in any unit and origin (the fit is linear in it)."""
    t, r = np.asarray(t, np.float64), np.asarray(residual, np.float64)
    w = 1.0 / np.asarray(sigma, np.float64) ** 2
    s, st, stt = w.sum(), (w * t).sum(), (w * t * t).sum()
    sr, str_ = (w * r).sum(), (w * t * r).sum()
    det = s * stt - st * st
    if det <= 1e-12 * s * max(stt, 1e-300):  # one time: an offset alone
        offset, slope = sr / s, 0.0
    else:
        offset, slope = (stt * sr - st * str_) / det, (s * str_ - st * sr) / det
    return r - offset - slope * t


def _slog(v: np.ndarray, scale: float) -> np.ndarray:
    """Signed log: linear near 0, logarithmic beyond `scale`."""
    return np.sign(v) * np.log1p(np.abs(v) / scale)


def _columns(raw, needed: int, what: str) -> np.ndarray:
    """Raw features as rows (T, F): F may be cue set 1's columns alone or every column."""
    flat = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    if flat.shape[1] < needed:
        raise ValueError(
            f"{what} features have {flat.shape[1]} columns; this cue set needs {needed}"
        )
    return flat


def _filtered(columns: np.ndarray, what: str) -> np.ndarray:
    """Cue sets 5 and 6's raw columns, refused where not measured (NaN: filtered=False)."""
    if np.isnan(columns).any():
        raise ValueError(
            f"cue sets 5 and 6 read the matched filter's {what} features, and these were not "
            "measured (NaN): measure them with filtered=True"
        )
    return columns


def detection_inputs(raw: np.ndarray, cues: int = 1) -> np.ndarray:
    """(n, CUES[cues][0]) float32 network inputs from raw per-detection features."""
    if cues not in CUES:
        raise ValueError(f"unknown cue set {cues}; known: {sorted(CUES)}")
    raw = _columns(raw, DETECTION_COLUMNS[cues], "detection")
    along, cross, resid, dmag, length, expected, elong, angle, edge = raw[:, :9].T
    streaky = np.clip((elong - 1.0) / 1.0, 0, 3)  # how clearly the angle is measured
    out = np.stack(
        [
            _slog(along, 0.3),
            _slog(cross, 0.3),
            np.log1p(resid / 0.3),
            np.clip(dmag, -3, 3),
            np.log1p(length / 2.0),
            np.log1p(expected / 2.0),
            np.log1p(length / 2.0) - np.log1p(expected / 2.0),
            np.log(np.clip(elong, 1, 20)),
            np.sin(np.radians(angle)) * streaky,
            np.log1p(np.clip(edge, 0, None) / 50.0) / 5.0,
        ],
        axis=1,
    )
    if cues >= 2:
        snr, _, s_along, s_cross = raw[:, 9:13].T
        if cues in FILTERED_CUES:  # the matched filter's SNR and the errors from it
            snr, s_along, s_cross = _filtered(raw[:, 14:17], "detection").T
        extra = np.stack(
            [_slog(along / s_along, 1.0), _slog(cross / s_cross, 1.0), np.log1p(snr / 5.0)],
            axis=1,
        )
        out = np.concatenate([out, extra], axis=1)
    if cues in (3, 5, 6):
        out = np.concatenate([out, seeing_inputs(raw[:, 10], raw[:, 13])], axis=1)
    elif cues == 4:  # the invariant alone: the width over the seeing, not the seeing itself
        out = np.concatenate([out, seeing_inputs(raw[:, 10], raw[:, 13])[:, [0, 2]]], axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=5.0, neginf=-5.0).astype(np.float32)


FWHM_PER_SIGMA = 2.3548
SEEING_TYPICAL_PX = 2.2  # the simulator's median seeing: the seeing input is 0 there


def seeing_inputs(psf_sigma_px: np.ndarray, fwhm_px: np.ndarray) -> np.ndarray:
    """(n, 3): log of the source's width over the seeing's, log of the seeing over a typical
    one, and 1 where the seeing is known; all 0 where it is not.

    The seeing's width is that of the PSF sampled by the pixels (sigma^2 + 1/12 px^2), so that
    a point source in 1 px seeing measures as wide as one in 6 px seeing."""
    sigma = np.asarray(psf_sigma_px, dtype=np.float64)
    fwhm = np.asarray(fwhm_px, dtype=np.float64)
    known = np.isfinite(fwhm) & (fwhm > 0) & np.isfinite(sigma) & (sigma > 0)
    safe_fwhm = np.where(known, fwhm, 1.0)
    sampled = np.sqrt((safe_fwhm / FWHM_PER_SIGMA) ** 2 + 1.0 / 12.0)
    width = np.where(known, np.log(np.where(known, sigma, 1.0) / sampled), 0.0)
    seeing = np.where(known, np.log(safe_fwhm / SEEING_TYPICAL_PX), 0.0)
    return np.stack([np.clip(width, -3, 3), np.clip(seeing, -3, 3), known.astype(float)], 1)


def tracklet_inputs(raw: np.ndarray, cues: int = 1) -> np.ndarray:
    """(CUES[cues][1],) or (T, CUES[cues][1]) float32 inputs from raw tracklet features."""
    if cues not in CUES:
        raise ValueError(f"unknown cue set {cues}; known: {sorted(CUES)}")
    raw = np.asarray(raw, dtype=np.float64)
    flat = _columns(raw, TRACKLET_COLUMNS[cues], "tracklet")
    rate, rms, scatter, mrange, n, span = flat[:, :6].T
    out = np.stack(
        [
            np.log10(np.clip(rate, 1e-4, 1e3)),
            np.log1p(rms / 0.3),
            np.log1p(scatter / 0.1),
            np.log1p(mrange / 0.2),
            (n - 4.0) / 4.0,
            np.log1p(span),
        ],
        axis=1,
    )
    if cues >= 2:  # a chi^2/dof and a motion significance, named by the cue set
        picked = flat[:, [TRACKLET_FEATURES.index(n) for n in TRACKLET_INPUT_FEATURES[cues][6:]]]
        if cues in FILTERED_CUES:
            picked = _filtered(picked, "tracklet")
        chi2, significance = picked.T
        extra = np.stack([np.log1p(chi2), np.log1p(np.clip(significance, 0, None) / 3.0)], 1)
        out = np.concatenate([out, extra], axis=1)
    out = np.nan_to_num(out, nan=0.0, posinf=5.0, neginf=-5.0).astype(np.float32)
    return out if raw.ndim > 1 else out[0]


META_COLUMNS = ("mjd", "ra", "dec", "mag", "x", "y", "fwhm_px")  # fwhm_px: NaN if not known


def batch_inputs(
    meta: np.ndarray, stamps: np.ndarray, lengths, cues: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs of consecutive tracklets: (N, CUES[cues][0]), (T, CUES[cues][1]).

    `meta` is (N, 7) with META_COLUMNS per detection (or (N, 6) without the seeing), `stamps`
    the (N, 100, 100) raw stamps in the same order, `lengths` the detections per tracklet.
    The matched filter's columns are measured only for a cue set that reads them.
    """
    det, trk = batch_raw(meta, stamps, lengths, filtered=needs_filtered(cues))
    return detection_inputs(det, cues), tracklet_inputs(trk, cues)


def batch_raw(
    meta: np.ndarray, stamps: np.ndarray, lengths, *, filtered: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Raw cues of consecutive tracklets: (N, len(DETECTION_FEATURES)), (T, ...);
    `filtered=False` leaves cue set 5's columns NaN (`measure`)."""
    meta = np.asarray(meta, dtype=np.float64)
    if meta.ndim != 2 or meta.shape[1] not in (len(META_COLUMNS) - 1, len(META_COLUMNS)):
        raise ValueError(
            f"meta must be (N, {len(META_COLUMNS)}): {', '.join(META_COLUMNS)} "
            "(the last may be left out)"
        )
    if meta.shape[1] < len(META_COLUMNS):
        meta = np.concatenate([meta, np.full((len(meta), 1), np.nan)], axis=1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if int(lengths.sum()) != len(meta) or len(stamps) != len(meta):
        raise ValueError(
            f"lengths sum to {int(lengths.sum())} but there are {len(meta)} "
            f"detections and {len(stamps)} stamps"
        )
    values = stamp_cues(stamps, meta[:, 6], filtered=filtered)  # filter_sigma reads the seeing
    det, trk, at = [], [], 0
    for n in lengths:
        part = meta[at : at + n]
        f = measure(
            *part[:, :6].T,
            stamps[at : at + n],
            part[:, 6],
            filtered=filtered,
            stamp_values=values[at : at + n],
        )
        det.append(f.detections)
        trk.append(f.tracklet)
        at += n
    empty = np.zeros((0, len(DETECTION_FEATURES)))
    return (
        np.concatenate(det) if det else empty,
        np.stack(trk) if trk else np.zeros((0, len(TRACKLET_FEATURES))),
    )

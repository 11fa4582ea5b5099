"""What the TCN sees besides the stamps, for the tracklet page: motion residuals, magnitudes and
trails, measured by `classifier.features` from the detections and the model-input stamps.

Residuals are shown about the motion fitted with each detection weighted by its expected error
(cue set 6's fit), in those errors (cue set 5's, the matched filter's); whether the tracklet moves
is the motion rule's verdict (`classifier.motion`), the one that caps scores.

`tracklet_cues` is the one computation; the page's table and `tracklet_cues_png` both draw its
plain dicts. Where the cues cannot be measured (fewer than two detections, a stamps file missing
or not matching the detections, values that are not finite) it says why instead of raising.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from screening.figures import figure_png
from screening.models import Tracklet

ROUND_ELONGATION = 1.3  # below this the stamp's source is round: a trail angle means nothing
# Display hints for the table (not the model's rule): a real mover's residuals are about
# 0.1-0.5 arcsec; the linker joins detections up to 1-2 arcsec off the line.
LARGE_RESIDUAL_ARCSEC = 1.0
TRAIL_OFF_MOTION_DEG = 30.0
# The physical invariants, as the model and the motion rule read them: a residual in units of
# the detection's expected astrometric error (the matched filter's SNR in the filtered stamp's
# own noise, the PSF width and the trail: cue set 5) is about 1 for a real mover whatever the
# survey; the chi-squared of the fit weighted by those errors (cue set 6) follows the
# chi-squared distribution for one linear motion however unequal the errors are; whether the
# tracklet moves is `classifier.motion`'s rule, the one that caps scores.
LARGE_RESIDUAL_SIGMA = 3.0
POOR_FIT_P = 0.001  # chi-squared of the fit this unlikely for one mover: not one linear motion
WEIGHTED_BY = (  # residuals along and across, and the errors they are weighted by
    "resid_along_arcsec",
    "resid_cross_arcsec",
    "sigma_along_filtered_arcsec",
    "sigma_cross_filtered_arcsec",
)


def tracklet_cues(tracklet: Tracklet) -> dict[str, Any]:
    """The tracklet's cues as plain dicts: {"detections": [...], "tracklet": {...}} when they
    could be measured, else {"problem": "why not"}.

    Measured from what scoring hands the TCN (`screening.scoring.worker`): the detections' metadata
    in time order and the model-input stamps of the same tracklet.
    """
    from scipy.stats import chi2

    from classifier import motion
    from classifier.features import (
        DETECTION_FEATURES,
        FWHM_PER_SIGMA,
        TRACKLET_FEATURES,
        measure,
        weighted_residuals,
    )
    from screening.scoring.worker import detection_meta

    meta = detection_meta([tracklet.pk]).get(tracklet.pk, np.zeros((0, 7)))
    if len(meta) < 2:
        return {
            "problem": f"only {len(meta)} detection{'' if len(meta) == 1 else 's'}: "
            "a motion fit needs at least two, so there are no residuals to show"
        }
    stamps = _model_stamps(tracklet)
    if isinstance(stamps, str):
        return {"problem": stamps}
    if len(stamps) != len(meta):
        return {
            "problem": f"the stamps file holds {len(stamps)} stamps for {len(meta)} "
            "detections: the cues cannot be matched to the detections"
        }
    try:
        features = measure(*meta[:, :6].T, stamps, meta[:, 6])
    except ValueError as error:
        return {"problem": f"the cues cannot be measured: {error}"}
    seeing = features.detections[:, DETECTION_FEATURES.index("fwhm_px")]  # NaN: not sent
    measured = np.delete(features.detections, DETECTION_FEATURES.index("fwhm_px"), axis=1)
    if not (np.isfinite(measured).all() and np.isfinite(features.tracklet).all()):
        return {"problem": "the cues came out not finite (NaN or infinite) for this tracklet"}
    mjd, mag = meta[:, 0], meta[:, 3]
    # the residuals about the fit weighted by each detection's error (the one `chi2_dof_weighted`
    # measures): with the unweighted fit the model reads, one faint detection off the line pulls
    # it off the precise ones, and those would be the ones shown off it
    column = features.detections[:, [DETECTION_FEATURES.index(n) for n in WEIGHTED_BY]]
    weighted = {
        name: weighted_residuals(mjd - mjd[0], column[:, k], column[:, k + 2])
        for k, name in enumerate(WEIGHTED_BY[:2])
    }
    rows = []
    for position, values in enumerate(features.detections):
        cue = {name: float(v) for name, v in zip(DETECTION_FEATURES, values, strict=True)}
        cue |= {name: float(v[position]) for name, v in weighted.items()}
        cue["resid_arcsec"] = math.hypot(cue["resid_along_arcsec"], cue["resid_cross_arcsec"])
        elongated = cue["elongation"] >= ROUND_ELONGATION
        resid_sigma = math.hypot(
            cue["resid_along_arcsec"] / cue["sigma_along_filtered_arcsec"],
            cue["resid_cross_arcsec"] / cue["sigma_cross_filtered_arcsec"],
        )
        rows.append({
            "number": position + 1,  # ingest stores indexes 0..n-1 in time order
            "minutes": float((mjd[position] - mjd[0]) * 1440.0),
            **cue,
            # a magnitude not measured (ingest's sentinel or missing one) has no dmag cue
            "mag": float(mag[position]) if np.isfinite(mag[position]) else None,
            "dmag": cue["dmag"] if np.isfinite(mag[position]) else None,
            "elongated": elongated,
            "trail_angle_deg": cue["trail_angle_deg"] if elongated else None,
            "large_residual": cue["resid_arcsec"] >= LARGE_RESIDUAL_ARCSEC,
            "resid_sigma": resid_sigma,
            "large_resid_sigma": resid_sigma >= LARGE_RESIDUAL_SIGMA,
            "trail_off_motion": elongated and cue["trail_angle_deg"] >= TRAIL_OFF_MOTION_DEG,
            # the source's width against the exposure's seeing: about 1 for a point source
            "fwhm_px": float(seeing[position]) if np.isfinite(seeing[position]) else None,
            "width_over_seeing": (
                cue["psf_sigma_px"] * FWHM_PER_SIGMA / float(seeing[position])
                if np.isfinite(seeing[position])
                else None
            ),
        })  # fmt: skip
    summary = {name: float(v) for name, v in zip(TRACKLET_FEATURES, features.tracklet, strict=True)}
    summary["n_detections"] = int(summary["n_detections"])
    summary["position_angle_deg"] = float(features.fit.position_angle_deg)
    raw = features.tracklet[None, :]
    summary["motion_still"] = bool(motion.still(raw)[0])  # the rule that caps the score
    summary["motion_undecided"] = (
        not summary["motion_still"] and summary["motion_sigma_filtered"] < motion.STILL_SIGMA
    )
    dof = max(1, 2 * (len(rows) - 2))  # as features.measure counts them
    summary["fit_p"] = float(chi2.sf(summary["chi2_dof_weighted"] * dof, dof))
    summary["fit_poor"] = summary["fit_p"] < POOR_FIT_P
    return {
        "detections": rows,
        "tracklet": summary,
        "round_elongation": ROUND_ELONGATION,
        "large_resid_sigma": LARGE_RESIDUAL_SIGMA,
        "still_sigma": motion.STILL_SIGMA,
        "slowest_mover": motion.SLOWEST_MOVER_DEG_DAY,
        "poor_fit_p": POOR_FIT_P,
    }


def _model_stamps(tracklet: Tracklet) -> np.ndarray | str:
    """The model-input stamps (n, 100, 100) the TCN measures, or why they cannot be read."""
    from screening.scoring.worker import tracklet_pixels

    if not tracklet.pixels.name:
        return "this tracklet has no stamps file: the cues cannot be measured"
    try:
        stamps = tracklet_pixels(tracklet)
    except FileNotFoundError:
        return f"the stamps file {tracklet.pixels.name} is missing: the cues cannot be measured"
    except (OSError, ValueError) as error:
        return f"the stamps file {tracklet.pixels.name} cannot be read ({error})"
    if stamps.ndim != 3:
        return f"the stamps file {tracklet.pixels.name} is not a stack of stamps ({stamps.shape})"
    return stamps


def tracklet_cues_png(tracklet: Tracklet) -> bytes:
    """Residuals along and across the fitted motion, and magnitude minus the median, against time
    (a PNG); the problem in words where the cues could not be measured."""
    cues = tracklet_cues(tracklet)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    if "problem" in cues:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, _wrapped(cues["problem"]), ha="center", va="center", fontsize=9)
        axes.set_axis_off()
        return figure_png(figure)
    rows = cues["detections"]
    minutes = [r["minutes"] for r in rows]
    motion, magnitude = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    along = [r["resid_along_arcsec"] for r in rows]
    cross = [r["resid_cross_arcsec"] for r in rows]
    limit = _half_range(along + cross, least=2.0)  # the linker's tolerance always in view
    motion.axhspan(-0.5, 0.5, color="#3fb950", alpha=0.12, label="real mover (±0.5″)")
    for bound, label in ((LARGE_RESIDUAL_ARCSEC, "±1″ (mis-linkage beyond)"),
                         (-LARGE_RESIDUAL_ARCSEC, None)):  # fmt: skip
        motion.axhline(bound, color="#d9534f", linestyle=":", linewidth=1, label=label)
    motion.axhline(0, color="black", linewidth=0.8)
    motion.plot(minutes, along, "o-", label="along track")
    motion.plot(minutes, cross, "s--", label="across track")
    for r in rows:
        motion.annotate(str(r["number"]), (r["minutes"], r["resid_along_arcsec"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)  # fmt: skip
    motion.set_ylim(-limit, limit)
    motion.set_ylabel("residual (arcsec)")
    summary = cues["tracklet"]
    motion.set_title(
        f"Against the motion fitted with each detection weighted by its error: "
        f"{summary['rate_deg_day']:.3f}°/day",
        fontsize=9,
    )
    motion.legend(loc="best", fontsize=7, ncols=3)  # where it covers the fewest points
    measured = [(m, r["dmag"]) for m, r in zip(minutes, rows, strict=True) if r["dmag"] is not None]
    dmag = [d for _, d in measured] or [0.0]
    magnitude.axhline(0, color="black", linewidth=0.8)
    magnitude.plot([m for m, _ in measured], [d for _, d in measured], "o-", color="#8250df")
    spread = _half_range(dmag, least=0.5)
    magnitude.set_ylim(spread, -spread)  # brighter up, as astronomers plot magnitudes
    magnitude.set_ylabel("mag − median\n(brighter up)")
    magnitude.set_xlabel("minutes since the first detection")
    return figure_png(figure)


def _half_range(values: list[float], *, least: float) -> float:
    """A symmetric axis limit that shows every value with a margin, and at least `least`."""
    return max([least] + [abs(v) * 1.15 for v in values])


def _wrapped(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))

"""Unlike training: a per-tracklet measure of how far its stamps and cues lie from what the model
was trained on, so that a tracklet the model has not seen is never auto-rejected.

A model scores anything it is given, and its score means something only on data like its
training data: the baseline called every real ZTF point source SPIKE with confidence. This module
does not ask the model how sure it is (a network is as sure on data it never saw); it measures
where the input lies.

- **Stamps**: the ICN's penultimate features (ResNet-18's 512 pooled activations) against the
  class means of the training stamps, in the units of their shared covariance (Mahalanobis
  distance, Lee et al. 2018: "A simple unified framework for detecting out-of-distribution
  samples"). The distance of the nearest class is the stamp's distance; a stamp beyond the
  reference's `stamp_limit` (a high quantile of held-out training stamps) is unlike training.
- **Cues**: each tracklet input of `classifier.features` (rate, fit RMS, magnitude scatter and
  range, detections, time span) against the range the training tracklets span, with a margin.

A tracklet is unlike training when at least half of its stamps (and at least two, or all of a
shorter one) are, or when a cue lies outside its range. The reason says which, with the values.

The reference (`NoveltyReference`) is made once per model from simulated tracklets of its
training distribution (`fit_reference`; `python -m classifier novelty --model PATH`) and kept
beside the checkpoint as `<checkpoint>.novelty.npz`, bound to the model's version.
numpy only here; `fit_reference` runs the model.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifier.features import TRACKLET_FEATURES, TRACKLET_INPUT_FEATURES, tracklet_inputs

# The model arguments below are classifier.inference.ScreeningModel, which imports this module:
# typed Any so that no import goes back (tests/test_import_graph.py).
ScreeningModel = Any
logger = logging.getLogger(__name__)

SUFFIX = ".novelty.npz"
STAMP_QUANTILE = 0.995  # of held-out training stamps' distances: the stamp limit
CUE_MARGIN = 0.25  # beyond the training range, in the network's input units (logs: about x1.8)
REFERENCE_SEED = 20261206
REFERENCE_TRACKLETS = 1000  # real and as many bogus
SHRINKAGE = 1e-3  # of the mean variance, added to the covariance's diagonal
# The cue set whose tracklet inputs a reference ranges, whatever the model's: set 1's (the
# rate, fit RMS, magnitudes, detections and span), which every cue set reads the same way.
REFERENCE_CUES = 1
# How a cue is shown in a reason: its raw value's format and unit.
CUE_SHOWN = {
    "rate_deg_day": ("{:.3g}", " deg/day"),
    "fit_rms_arcsec": ("{:.2f}", '"'),
    "mag_scatter": ("{:.2f}", " mag"),
    "mag_range": ("{:.2f}", " mag"),
    "n_detections": ("{:.0f}", ""),
    "span_hours": ("{:.2f}", " h"),
    "chi2_dof": ("{:.2f}", ""),
    "motion_sigma": ("{:.3g}", " sigma"),
    "chi2_dof_filtered": ("{:.2f}", ""),
    "motion_sigma_filtered": ("{:.3g}", " sigma"),
    "chi2_dof_weighted": ("{:.2f}", ""),
}
# the cues of how far a tracklet moved: below their trained range on a tracklet the motion rule
# found not moving (classifier.motion), they say what the rule said, not that it is unseen
MOTION_CUES = ("rate_deg_day", "motion_sigma", "motion_sigma_filtered")
CUE_NAMES = {
    "rate_deg_day": "rate",
    "fit_rms_arcsec": "fit RMS",
    "mag_scatter": "magnitude scatter",
    "mag_range": "magnitude range",
    "n_detections": "detections",
    "span_hours": "time span",
    "chi2_dof": "fit chi2/dof",
    "motion_sigma": "motion significance",
    "chi2_dof_filtered": "fit chi2/dof (matched filter)",
    "motion_sigma_filtered": "motion significance (matched filter)",
    "chi2_dof_weighted": "fit chi2/dof (weighted fit)",
}


@dataclass(frozen=True)
class NoveltyReference:
    """Where a model's training data lies: stamp features and tracklet cue ranges."""

    model_version: str
    means: np.ndarray  # (K, D) whitened class means of the training stamps' features
    whiten: np.ndarray  # (D, D): ||(f @ whiten) - mean||^2 is the Mahalanobis distance^2
    stamp_limit: float  # a stamp farther than this (distance, not squared) is unlike training
    cue_low: np.ndarray  # (len(TRACKLET_FEATURES),) lowest input of the training tracklets
    cue_high: np.ndarray
    made: dict[str, Any] = field(default_factory=dict)  # seed, counts, quantile, classes

    # --- measures ---------------------------------------------------------------------------

    def stamp_distances(self, features: np.ndarray) -> np.ndarray:
        """(N,) Mahalanobis distance of each stamp's features to the nearest training class."""
        z = np.asarray(features, np.float32) @ self.whiten
        # ||z - m||^2 = ||z||^2 - 2 z.m + ||m||^2, for all classes at once
        d2 = (z * z).sum(1)[:, None] - 2.0 * z @ self.means.T + (self.means**2).sum(1)[None]
        return np.sqrt(np.clip(d2.min(axis=1), 0.0, None))

    def reasons(
        self,
        distances: np.ndarray,
        lengths,
        trk_raw: np.ndarray | None,
        still: np.ndarray | None = None,
    ) -> list[str]:
        """One reason per tracklet ("" when it is like training), its stamps consecutive.

        `still` (T,): tracklets whose motion the motion rule found within its errors
        (classifier.motion); a motion smaller than any trained on is no reason for them (it is
        what the rule judged: no motion), a larger one still is."""
        out, at = [], 0
        usable = trk_raw is not None and len(trk_raw)
        inputs = tracklet_inputs(trk_raw, REFERENCE_CUES) if usable else None
        for t, n in enumerate(np.asarray(lengths, dtype=int)):
            d = distances[at : at + n]
            at += n
            parts = []
            far = int((d > self.stamp_limit).sum())
            if far >= min(n, max(2, math.ceil(n / 2))):
                parts.append(
                    f"{far} of {n} stamps unlike the training stamps (distance "
                    f"{np.sort(d)[-far]:.0f}-{d.max():.0f}, limit {self.stamp_limit:.0f})"
                )
            if inputs is not None:
                parts += self._cue_reasons(
                    inputs[t], trk_raw[t], still=bool(still is not None and still[t])
                )
            out.append("; ".join(parts))
        return out

    def below_motion(self, trk_raw: np.ndarray) -> np.ndarray:
        """(T,) True where a cue of how far the tracklet moved (`MOTION_CUES`) lies below the
        trained range: a reason to flag it unless the motion rule finds it not moving."""
        inputs = tracklet_inputs(trk_raw, REFERENCE_CUES)
        names = TRACKLET_INPUT_FEATURES[REFERENCE_CUES][: len(self.cue_low)]
        below = np.zeros(len(trk_raw), bool)
        for k, name in enumerate(names):
            if name in MOTION_CUES:
                below |= inputs[:, k] < self.cue_low[k] - CUE_MARGIN
        return below

    def _cue_reasons(self, inputs: np.ndarray, raw: np.ndarray, still: bool = False) -> list[str]:
        """Input k is made from the raw feature TRACKLET_INPUT_FEATURES[REFERENCE_CUES][k]: named
        and shown from that raw column (not column k, which another cue set may not read)."""
        parts = []
        for k, name in enumerate(TRACKLET_INPUT_FEATURES[REFERENCE_CUES][: len(self.cue_low)]):
            low, high = self.cue_low[k], self.cue_high[k]
            if low - CUE_MARGIN <= inputs[k] <= high + CUE_MARGIN:
                continue
            if still and name in MOTION_CUES and inputs[k] < low:
                continue
            shown, unit = CUE_SHOWN[name]
            lo_raw, hi_raw = (_raw_of(name, v) for v in (low, high))
            value = raw[TRACKLET_FEATURES.index(name)]
            parts.append(
                f"{CUE_NAMES[name]} {shown.format(value)}{unit} outside the trained "
                f"{shown.format(lo_raw)}-{shown.format(hi_raw)}{unit}"
            )
        return parts

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Write atomically as .npz (no pickles)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(
                fh,
                means=self.means.astype(np.float32),
                whiten=self.whiten.astype(np.float32),
                stamp_limit=np.float64(self.stamp_limit),
                cue_low=self.cue_low.astype(np.float64),
                cue_high=self.cue_high.astype(np.float64),
                about=np.array(
                    json.dumps({"model_version": self.model_version, "made": self.made})
                ),
            )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> NoveltyReference:
        with np.load(Path(path), allow_pickle=False) as data:
            about = json.loads(str(data["about"]))
            return cls(
                model_version=about["model_version"],
                means=data["means"],
                whiten=data["whiten"],
                stamp_limit=float(data["stamp_limit"]),
                cue_low=data["cue_low"],
                cue_high=data["cue_high"],
                made=about.get("made", {}),
            )


def _raw_of(name: str, value: float) -> float:
    """A tracklet input back to its raw cue (features.tracklet_inputs inverted)."""
    if name == "rate_deg_day":
        return 10.0**value
    if name == "fit_rms_arcsec":
        return math.expm1(value) * 0.3
    if name == "mag_scatter":
        return math.expm1(value) * 0.1
    if name == "mag_range":
        return math.expm1(value) * 0.2
    if name == "n_detections":
        return value * 4.0 + 4.0
    if name.startswith("motion_sigma"):
        return math.expm1(value) * 3.0
    return math.expm1(value)  # span_hours, chi2_dof


def reference_path(checkpoint: Path) -> Path:
    """Where a checkpoint's reference is kept: beside it, `<name>.novelty.npz`."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name.removesuffix(".pt") + SUFFIX)


def load_reference(checkpoint: Path, version: str) -> NoveltyReference | None:
    """The reference beside a checkpoint, None where there is none or it is another model's."""
    path = reference_path(checkpoint)
    if not path.exists():
        return None
    reference = NoveltyReference.load(path)
    if version and reference.model_version != version:
        logger.warning(
            "%s belongs to model %s, not %s: not used", path, reference.model_version, version
        )
        return None
    return reference


def fit_features(
    features: np.ndarray, labels: np.ndarray, held_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """(whitened class means, whitening matrix, stamp limit) from training stamps' features
    and labels; the limit is the STAMP_QUANTILE of the held-out stamps' distances."""
    features = np.asarray(features, np.float64)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    cov = centred.T @ centred / max(1, len(centred) - len(classes))
    cov += np.eye(len(cov)) * SHRINKAGE * np.trace(cov) / len(cov)
    values, vectors = np.linalg.eigh(cov)
    whiten = vectors / np.sqrt(np.clip(values, 1e-12, None))[None]
    probe = NoveltyReference(
        model_version="",
        means=(means @ whiten).astype(np.float32),
        whiten=whiten.astype(np.float32),
        stamp_limit=math.inf,
        cue_low=np.zeros(0),
        cue_high=np.zeros(0),
    )
    limit = float(np.quantile(probe.stamp_distances(held_features), STAMP_QUANTILE))
    return probe.means, probe.whiten, limit


def reference_from(
    model: ScreeningModel,
    images: np.ndarray,
    labels: np.ndarray,
    held_images: np.ndarray,
    trk_raw: np.ndarray,
    made: dict[str, Any] | None = None,
) -> NoveltyReference:
    """A model's reference from its training data: prepared (cropped) stamps with their class
    index (-1: none of the model's classes, left out of the class means), held-out prepared
    stamps for the limit, and the raw tracklet cues (features.TRACKLET_FEATURES) for the ranges."""
    labels = np.asarray(labels).astype(np.int64)  # class indices, whatever array they came in
    model = model.exact()  # measured in float32, whatever the machine's fast path
    features = model.stamp_features(np.asarray(images, np.float32))
    known = labels >= 0
    means, whiten, limit = fit_features(
        features[known], labels[known], model.stamp_features(np.asarray(held_images, np.float32))
    )
    inputs = tracklet_inputs(trk_raw, REFERENCE_CUES)
    return NoveltyReference(
        model_version=model.version,
        means=means,
        whiten=whiten,
        stamp_limit=limit,
        cue_low=inputs.min(0).astype(np.float64),
        cue_high=inputs.max(0).astype(np.float64),
        made={
            "stamps_fitted": int(known.sum()),
            "stamps_held_out": int(len(held_images)),
            "tracklets": int(len(trk_raw)),
            "quantile": STAMP_QUANTILE,
            "classes": sorted({model.classes[i] for i in labels[known]}),
            **(made or {}),
        },
    )


def class_indices(model: ScreeningModel, names: list[str]) -> np.ndarray:
    """Each stamp's class index in the model (-1 where the model has no such class); integers
    even for no stamps (an empty float array would make a concatenation float)."""
    found = [model.classes.index(c) if c in model.classes else -1 for c in names]
    return np.array(found, dtype=np.int64)


def fit_reference(
    model: ScreeningModel,
    *,
    seed: int = REFERENCE_SEED,
    n_tracklets: int = REFERENCE_TRACKLETS,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> NoveltyReference:
    """Simulate n_tracklets real and as many bogus tracklets of the training distribution
    (SimConfig().widened(), glare where the model has the class; kept in `cache_dir`) and
    measure where they lie: the ICN's features of 70% of them give the class means and
    covariance, the other 30% the stamp limit; all of them the cue ranges."""
    from classifier.datasets import cached_tracklet_set
    from classifier.simulate import SimConfig

    tset = cached_tracklet_set(
        cache_dir,
        seed,
        n_tracklets,
        n_tracklets,
        model.preprocessing,
        glare="GLARE" in model.classes,
        cfg=SimConfig().widened(),
        workers=workers,
        progress=progress,
    )
    labels = class_indices(model, tset.det_classes)
    held = (np.repeat(np.arange(len(tset.lengths)), tset.lengths) % 10) >= 7
    images = np.asarray(tset.images)
    return reference_from(
        model,
        images[~held],
        labels[~held],
        images[held],
        tset.trk_raw,
        made={"seed": seed, "simulator": "SimConfig().widened()"},
    )

"""Cue set 5: the SNR, errors and fit chi^2 of a Gaussian matched filter at the exposure's seeing,
in units of the filtered stamp's own noise (classifier.features.filtered_snr), measured only for
a model that reads them; cue sets 1-4 exactly as before it existed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from classifier.features import (
    CUES,
    DETECTION_FEATURES,
    FWHM_PER_SIGMA,
    TRACKLET_FEATURES,
    TRACKLET_INPUT_FEATURES,
    batch_inputs,
    batch_raw,
    detection_inputs,
    filter_sigma,
    filtered_snr,
    measure,
    source_moments,
    tracklet_inputs,
)

HERE = Path(__file__).resolve().parent
BEFORE = HERE / "cues_before_set5.npz"  # `python -m tests.classifier.test_cue_set5` made it
ROOT = HERE.parents[1]
BASELINE = ROOT / "models" / "previous" / "screening-43028b2fba09ca58.pt"  # cue set 1
FILTERED = [DETECTION_FEATURES.index(n) for n in DETECTION_FEATURES if "filtered" in n]
FILTERED_FIT = [TRACKLET_FEATURES.index(n) for n in TRACKLET_FEATURES if "filtered" in n]


def gaussian(size: int, x0: float, y0: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)


def synthetic_tracklets() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(meta, stamps, lengths) of five tracklets made with numpy alone, so that they stay the
    same whatever the simulator becomes: round and trailed sources in white noise, one
    exposure's noise correlated (convolved), missing pixels, a chip edge filled with 0, no
    seeing sent, a detection with nothing in it."""
    from scipy import ndimage

    rng = np.random.default_rng(25)
    meta, stamps, lengths = [], [], []
    for t in range(5):
        n = 3 + t % 2
        rate = 0.3 + 0.5 * t  # deg/day, towards the north-east
        dt = np.arange(n) * 0.012
        for k in range(n):
            fwhm = math.nan if t == 3 else 2.0 + 0.4 * t + 0.1 * k
            sigma = (2.3 if math.isnan(fwhm) else fwhm) / FWHM_PER_SIGMA
            image = rng.normal(0.0, 10.0, (100, 100))
            flux = 0.0 if (t, k) == (4, 2) else 3000.0 * (1 + t) / (1 + k % 2)
            steps = 1 if t < 2 else 8
            for s in np.linspace(-1, 1, steps) * (0 if steps == 1 else 2.5 * t):
                image += flux / steps * gaussian(100, 50.3 + s, 49.8 + 0.6 * s, sigma)
            if (t, k) == (1, 1):  # a science image convolved to match a broader reference
                image = ndimage.gaussian_filter(image, 1.5) * 2.0
            if (t, k) == (2, 0):
                image[:, :12] = np.nan  # off the stamp's edge
            if (t, k) == (2, 2):
                image[70:, :] = 0.0  # a chip edge filled with 0
            stamps.append(image.astype(np.float32))
            step = dt[k] * rate / math.sqrt(2)
            meta.append([
                61000.3 + dt[k],
                150.0 + step / math.cos(math.radians(10.0)) + rng.normal(0, 1e-5),
                10.0 + step + rng.normal(0, 1e-5),
                19.0 + rng.normal(0, 0.1),
                3000.0 + step * 3600 / 1.86,
                4000.0 + step * 3600 / 1.86,
                fwhm,
            ])  # fmt: skip
        lengths.append(n)
    return np.asarray(meta), np.stack(stamps), lengths


def test_cue_sets_1_to_4_are_what_they_were_before_set_5() -> None:
    """The shipped baseline (set 1) and the models of sets 2-4 score as they did: the raw
    columns they read and their inputs are those the code made before set 5 existed (kept in
    cues_before_set5.npz), with the new columns measured or not, and rows stored before set 5
    (14 detection, 8 tracklet columns) still read.

    To the bit on the CPU that stored them; within 1e-11 relative or 1e-12 absolute on any
    other, whose vectorised sin, cos and least squares round the last bits otherwise (measured
    on an AVX2-only CPU against the AVX-512 one that stored them: 3e-14 arcsec in a residual).
    On one machine, measuring set 5's columns or not changes none of the others' bits."""
    meta, stamps, lengths = synthetic_tracklets()
    with np.load(BEFORE) as before:
        old_det, old_trk = before["det"], before["trk"]
        old_inputs = {c: (before[f"det{c}"], before[f"trk{c}"]) for c in (1, 2, 3, 4)}
    assert old_det.shape[1] == 14 and old_trk.shape[1] == 8

    def same(got, want):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)

    measured = {}
    for filtered in (True, False):
        det, trk = measured[filtered] = batch_raw(meta, stamps, lengths, filtered=filtered)
        assert det.shape == (len(meta), len(DETECTION_FEATURES))
        assert trk.shape == (len(lengths), len(TRACKLET_FEATURES))
        same(det[:, :14], old_det)
        same(trk[:, :8], old_trk)
        assert np.isfinite(det[:, FILTERED]).all() == filtered
        assert np.isnan(trk[:, FILTERED_FIT]).all() != filtered
        for cues in (1, 2, 3, 4):
            for d, t in ((det, trk), (old_det, old_trk)):
                same(detection_inputs(d, cues), old_inputs[cues][0])
                same(tracklet_inputs(t, cues), old_inputs[cues][1])
            same(batch_inputs(meta, stamps, lengths, cues)[0], old_inputs[cues][0])
    np.testing.assert_array_equal(measured[True][0][:, :14], measured[False][0][:, :14])
    np.testing.assert_array_equal(measured[True][1][:, :8], measured[False][1][:, :8])


def test_cue_set_5_reads_the_filtered_columns_and_refuses_unmeasured_ones() -> None:
    meta, stamps, lengths = synthetic_tracklets()
    det, trk = batch_inputs(meta, stamps, lengths, cues=5)
    assert det.shape == (len(meta), CUES[5][0]) and trk.shape == (len(lengths), CUES[5][1])
    assert np.isfinite(det).all() and np.isfinite(trk).all() and np.abs(det).max() < 10
    # set 3's inputs but for the SNR, the residuals in its errors and the chi^2 / significance
    det3, trk3 = batch_inputs(meta, stamps, lengths, cues=3)
    same = [k for k in range(CUES[3][0]) if k not in (10, 11, 12)]
    assert np.array_equal(det[:, same], det3[:, same]) and not np.array_equal(det, det3)
    assert np.array_equal(trk[:, :6], trk3[:, :6]) and not np.array_equal(trk, trk3)
    raw_det, raw_trk = batch_raw(meta, stamps, lengths, filtered=False)
    with pytest.raises(ValueError, match="not measured"):
        detection_inputs(raw_det, 5)
    with pytest.raises(ValueError, match="not measured"):
        tracklet_inputs(raw_trk, 5)
    with pytest.raises(ValueError, match="this cue set needs 17"):
        detection_inputs(raw_det[:, :14], 5)  # rows stored before set 5
    # each tracklet input is named by the raw feature it is made from
    assert TRACKLET_INPUT_FEATURES[5][6:] == ("chi2_dof_filtered", "motion_sigma_filtered")
    assert TRACKLET_INPUT_FEATURES[3][6:] == ("chi2_dof", "motion_sigma")
    assert all(len(TRACKLET_INPUT_FEATURES[c]) == CUES[c][1] for c in CUES)


def correlated_source(seed: int, snr: float, psf: float, kernel: float) -> tuple[np.ndarray, float]:
    """A point source in white noise, the whole image then convolved with a Gaussian `kernel`
    (a science image matched to a broader reference): the stamp and the PSF's sigma after it.

    `snr` is the source's SNR through a Gaussian matched filter of the final PSF in the
    correlated noise, in the continuum limit: the filtered signal at the centre is
    F / (4 pi s^2) and the filtered noise sigma / sqrt(4 pi (s^2 + k^2)), s^2 = psf^2 + k^2."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    s2 = psf**2 + kernel**2
    flux = snr * 4 * math.pi * s2 / math.sqrt(4 * math.pi * (s2 + kernel**2))
    image = rng.normal(0.0, 1.0, (140, 140)) + flux * gaussian(140, 70.0, 70.0, psf)
    stamp = ndimage.gaussian_filter(image, kernel)[20:120, 20:120]
    return (stamp * 50.0).astype(np.float32), math.sqrt(s2)


def test_the_filtered_snr_is_the_true_snr_where_the_noise_is_correlated() -> None:
    """Where the subtraction correlated the noise, the second moments' SNR (in pixel noise) is
    several times too high; the matched filter's, in the filtered stamp's noise, is the SNR."""
    ratios, moments = [], []
    for seed in range(12):
        truth = 8.0 + seed
        stamp, sigma = correlated_source(seed, truth, psf=1.3, kernel=2.0)
        fwhm = math.sqrt(max(sigma**2 - 1 / 12, 0.1)) * FWHM_PER_SIGMA  # as the survey sends
        ratios.append(filtered_snr(stamp, filter_sigma(fwhm, 1.0)) / truth)
        moments.append(source_moments(stamp)[3] / truth)
    assert 0.85 < np.median(ratios) < 1.2 and 0.6 < min(ratios) and max(ratios) < 1.5, ratios
    assert np.median(moments) > 2.0, moments
    # in white noise both are about the truth's: the filter costs nothing there
    white = [correlated_source(seed, 10.0, psf=1.8, kernel=0.01)[0] for seed in range(6)]
    values = [filtered_snr(s, filter_sigma(1.8 * FWHM_PER_SIGMA, 1.0)) / 10.0 for s in white]
    assert 0.8 < np.median(values) < 1.25, values


def test_a_filled_chip_edge_and_missing_pixels_are_not_noise() -> None:
    stamp, sigma = correlated_source(3, 12.0, psf=1.5, kernel=1.5)
    width = filter_sigma(math.sqrt(sigma**2 - 1 / 12) * FWHM_PER_SIGMA, 1.0)
    clean = filtered_snr(stamp, width)
    edged = stamp.copy()
    edged[80:] = 0.0
    edged[:, :8] = np.nan
    assert filtered_snr(edged, width) == pytest.approx(clean, rel=0.25)
    assert filtered_snr(np.full((100, 100), np.nan, np.float32), width) == 0.0
    assert filtered_snr(np.zeros((100, 100), np.float32), width) == 0.0


def test_a_model_of_another_cue_set_does_not_measure_the_filtered_columns() -> None:
    """The shipped baseline (cue set 1) is timed in the night benchmark: its raw cues leave the
    matched filter's columns unmeasured (NaN), and it scores the same."""
    from classifier.inference import Runtime, load_model

    model = load_model(BASELINE, "cpu", runtime=Runtime(threads=2))
    assert model.tcn_config.cues == 1
    meta, stamps, lengths = synthetic_tracklets()
    det, trk = model._raw_cues(meta, stamps, lengths)
    assert np.isnan(det[:, FILTERED]).all() and np.isnan(trk[:, FILTERED_FIT]).all()
    assert np.isfinite(np.delete(det, [*FILTERED, DETECTION_FEATURES.index("fwhm_px")], 1)).all()
    scores = model.assess(stamps, lengths, meta).scores
    assert np.isfinite(scores).all() and scores.shape == (len(lengths),)


def test_a_model_of_cue_set_5_trains_measures_them_and_scores(tmp_path) -> None:
    """The robust recipe with cue set 5, trained on tiny data: the checkpoint says set 5, its raw
    cues are measured with the filter, and it scores raw stamps and metadata."""
    from classifier.checkpoint import load_checkpoint
    from classifier.inference import load_model
    from tests.classifier.conftest import tiny_set_model

    path, _ = tiny_set_model(tmp_path, preset="robust", seed=5, cues=5)
    config = load_checkpoint(path)["tcn"]["config"]
    assert config["cues"] == 5
    assert (config["n_detection_features"], config["n_tracklet_features"]) == CUES[5]
    model = load_model(path, "cpu")
    meta, stamps, lengths = synthetic_tracklets()
    det, trk = model._raw_cues(meta, stamps, lengths)
    assert np.isfinite(det[:, FILTERED]).all() and np.isfinite(trk[:, FILTERED_FIT]).all()
    scores = model.assess(stamps, lengths, meta).scores
    assert np.isfinite(scores).all() and scores.shape == (len(lengths),)


def test_the_review_page_s_measure_gives_every_column_finite() -> None:
    """screening.review.cues zips `measure`'s rows with the feature names and shows them only
    where every cue but the seeing is finite: `measure` measures cue set 5's too by default."""
    meta, stamps, lengths = synthetic_tracklets()
    f = measure(*meta[:3, :6].T, stamps[:3], meta[:3, 6])
    assert f.detections.shape == (3, len(DETECTION_FEATURES))
    assert f.tracklet.shape == (len(TRACKLET_FEATURES),)
    seeing = DETECTION_FEATURES.index("fwhm_px")
    assert np.isfinite(np.delete(f.detections, seeing, 1)).all() and np.isfinite(f.tracklet).all()


if __name__ == "__main__":  # (re)make cues_before_set5.npz: only with the code before set 5
    meta, stamps, lengths = synthetic_tracklets()
    det, trk = batch_raw(meta, stamps, lengths)
    assert det.shape[1] == 14, "cues_before_set5.npz is made by the code before cue set 5"
    inputs = {}
    for cues in (1, 2, 3, 4):
        inputs[f"det{cues}"] = detection_inputs(det, cues)
        inputs[f"trk{cues}"] = tracklet_inputs(trk, cues)
    np.savez_compressed(BEFORE, det=det, trk=trk, **inputs)

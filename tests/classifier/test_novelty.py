"""Unlike training (classifier.novelty): the measure, its reasons, its file, and the shipped
baseline on real ZTF cutouts, on stamps smaller than its input and on motion it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier.features import CUES, tracklet_inputs
from classifier.novelty import NoveltyReference, fit_features, load_reference, reference_path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "models" / "previous" / "screening-43028b2fba09ca58.pt"
# the robust recipe's candidate (seeing-binned ICN, cue set 3), kept beside the baseline:
# the same guarantees
ROBUST = ROOT / "models" / "robust" / "screening-61190e642c3183f7.pt"
ZTF_DIR = ROOT / "tests" / "data" / "ztf-alert-cutouts"


def toy_reference() -> tuple[NoveltyReference, np.ndarray, np.ndarray]:
    """Three classes of 16-D features with correlated noise; cues trained over a fixed range."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    centres = rng.normal(0, 4, (3, 16))
    labels = np.repeat(np.arange(3), 2000)
    features = centres[labels] + rng.normal(size=(6000, 16)) @ mix
    held = centres[labels[:1500]] + rng.normal(size=(1500, 16)) @ mix
    means, whiten, limit = fit_features(features, labels, held)
    raw = np.array([[0.05, 0.1, 0.02, 0.05, 3, 0.5], [50.0, 2.0, 0.5, 1.5, 8, 1.5]])
    inputs = tracklet_inputs(raw)
    return (
        NoveltyReference(
            model_version="toy",
            means=means,
            whiten=whiten,
            stamp_limit=limit,
            cue_low=inputs.min(0).astype(float),
            cue_high=inputs.max(0).astype(float),
        ),
        centres,
        mix,
    )


def test_a_stamp_far_from_every_class_is_unlike_training_and_near_ones_are_not() -> None:
    reference, centres, mix = toy_reference()
    rng = np.random.default_rng(1)
    near = centres[rng.integers(0, 3, 4000)] + rng.normal(size=(4000, 16)) @ mix
    far = centres[rng.integers(0, 3, 200)] + 12 * rng.normal(size=(200, 16)) @ mix
    assert (reference.stamp_distances(near) > reference.stamp_limit).mean() < 0.01
    assert (reference.stamp_distances(far) > reference.stamp_limit).mean() > 0.95


def test_a_tracklet_is_unlike_training_when_half_its_stamps_are_not_for_one_odd_stamp() -> None:
    reference, *_ = toy_reference()
    limit = reference.stamp_limit
    lo, hi = limit / 2, limit * 2
    distances = np.array([lo, lo, lo, hi] + [lo, lo, hi, hi] + [lo, hi, hi] + [hi])
    reasons = reference.reasons(distances, [4, 4, 3, 1], None)
    assert reasons[0] == ""  # one odd stamp of four (a cosmic ray, a satellite) is no reason
    assert reasons[1].startswith("2 of 4 stamps unlike the training stamps")
    assert reasons[2].startswith("2 of 3 stamps unlike")
    assert reasons[3].startswith("1 of 1 stamps unlike")
    assert f"limit {limit:.0f}" in reasons[1]


def test_a_cue_outside_the_trained_range_is_named_with_its_value_and_the_range() -> None:
    reference, *_ = toy_reference()
    raw = np.array(
        [
            [1.0, 0.5, 0.1, 0.3, 4, 1.0],  # inside every range
            [300.0, 0.5, 0.1, 0.3, 4, 1.0],  # far faster than anything trained on
            [1.0, 0.5, 0.1, 0.3, 40, 9.0],  # 40 detections over 9 hours
        ]
    )
    distances = np.zeros(12)
    reasons = reference.reasons(distances, [4, 4, 4], raw)
    assert reasons[0] == ""
    assert reasons[1] == "rate 300 deg/day outside the trained 0.05-50 deg/day"
    assert "detections 40 outside the trained 3-8" in reasons[2]
    assert "time span 9.00 h outside the trained 0.50-1.50 h" in reasons[2]
    assert len(reference.cue_low) == CUES[1][1]  # cue set 1: the ranges of what it measures


def test_the_reference_round_trips_and_belongs_to_one_model(tmp_path: Path) -> None:
    reference, *_ = toy_reference()
    checkpoint = tmp_path / "screening-toy.pt"
    path = reference.save(reference_path(checkpoint))
    assert path.name == "screening-toy.novelty.npz"
    loaded = load_reference(checkpoint, "toy")
    assert loaded is not None and loaded.stamp_limit == reference.stamp_limit
    np.testing.assert_array_equal(loaded.whiten, reference.whiten)
    assert load_reference(checkpoint, "another model") is None  # never another model's
    assert load_reference(tmp_path / "none.pt", "toy") is None


# --- the shipped baseline --------------------------------------------------------------------


@pytest.fixture(scope="module", params=[BASELINE, ROBUST], ids=["baseline", "robust"])
def baseline(request):
    """Each model the repository ships (the baseline, and the robust recipe's version)."""
    from classifier.inference import Runtime, load_model

    model = load_model(request.param, runtime=Runtime(threads=2))
    assert model.novelty is not None, "a shipped model ships its novelty reference"
    return model


def ztf_tracklets(n: int = 15) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """n three-detection tracklets of real ZTF difference cutouts, NaN-padded to 100x100 as
    ingest stores them, each a mover at 1 deg/day over 40 minutes."""
    from classifier.stamp_io import fit_to_input, read_stamp

    paths = sorted(ZTF_DIR.glob("*_difference.fits.gz"))
    stamps, meta = [], []
    for t in range(n):
        for k in range(3):
            path = paths[(3 * t + k) % len(paths)]
            stamps.append(fit_to_input(read_stamp(path.read_bytes()).pixels))
            dt = k * 20 / 1440
            meta.append([61000.3 + dt, 150 + 0.7 * dt, 10 + 0.7 * dt, 18.0, 3000 + k, 3000 + k])
    return np.stack(stamps), np.asarray(meta), [3] * n


def test_real_ztf_point_sources_are_never_auto_rejected_nor_read_as_spike(baseline) -> None:
    """The baseline read every ZTF cutout as SPIKE (0.92-0.95) when the NaN padding was filled
    with one value, and auto-rejected every tracklet of them."""
    stamps, meta, lengths = ztf_tracklets()
    out = baseline.assess(stamps, lengths, meta)
    kept = (out.scores >= baseline.threshold) | np.array([bool(r) for r in out.unlike_training])
    assert kept.all(), out.scores
    top = np.array(baseline.classes)[out.probabilities.argmax(1)]
    assert (top == "SPIKE").sum() == 0
    assert np.isin(top, ["AST", "STREAK", "COMET"]).mean() >= 0.85


def test_a_stamp_cropped_smaller_than_the_input_reads_as_at_full_size(baseline) -> None:
    from classifier.preprocess import prepare
    from classifier.simulate import make_stamp, stamp_rng
    from classifier.stamp_io import fit_to_input

    full = np.stack([make_stamp("AST", stamp_rng(5, 9, i)).difference for i in range(60)])
    small = np.stack([fit_to_input(s[18:81, 18:81]) for s in full])
    a, b = (
        np.array(baseline.classes)[
            baseline.stamp_probabilities(prepare(s, baseline.preprocessing)).argmax(1)
        ]
        for s in (full.astype(np.float32), small)
    )
    assert (b == "SPIKE").sum() == 0
    real = ["AST", "STREAK", "COMET"]
    assert abs(np.isin(a, real).mean() - np.isin(b, real).mean()) <= 0.05
    assert (a == b).mean() >= 0.75  # the same class, mostly: faint ones sit between AST and NOISE


def test_motion_far_beyond_training_keeps_a_tracklet_whatever_its_score(baseline) -> None:
    stamps, meta, lengths = ztf_tracklets(2)
    meta[:3, 1] = 150.0
    meta[:3, 2] = 10 + 300 * (meta[:3, 0] - meta[0, 0])  # the first at 300 deg/day, north
    out = baseline.assess(stamps, lengths, meta)
    assert out.unlike_training[0].startswith("rate 30"), out.unlike_training
    assert "deg/day outside the trained" in out.unlike_training[0]
    assert out.unlike_training[1] == ""


def test_a_reason_shows_the_trained_range_in_the_cue_s_own_units() -> None:
    """A reason names the trained range as raw values (deg/day, arcsec, mag, hours): the
    inverse of the network's input transform, for every cue it checks."""
    from classifier.features import TRACKLET_FEATURES
    from classifier.novelty import _raw_of

    raw = np.array([3.7, 0.9, 0.25, 0.6, 5, 1.2])
    inputs = tracklet_inputs(raw)
    for k, name in enumerate(TRACKLET_FEATURES[: CUES[1][1]]):
        assert _raw_of(name, float(inputs[k])) == pytest.approx(raw[k], rel=1e-5), name


def test_a_reason_names_and_shows_each_input_s_own_raw_cue() -> None:
    """Input k of a cue set is made from TRACKLET_INPUT_FEATURES[cues][k], not from raw column k
    (cue set 5's chi^2 inputs read columns 8-9, set 6's columns 10 and 9): a reason names and
    shows that raw cue, and every cue's input inverts to its raw value."""
    from classifier.features import TRACKLET_FEATURES, TRACKLET_INPUT_FEATURES
    from classifier.novelty import REFERENCE_CUES, NoveltyReference, _raw_of

    raw = np.array([3.7, 0.9, 0.25, 0.6, 5, 1.2, 2.5, 40.0, 1.5, 30.0, 0.8])
    assert len(raw) == len(TRACKLET_FEATURES)
    for cues, names in TRACKLET_INPUT_FEATURES.items():
        inputs = tracklet_inputs(raw, cues)
        for k, name in enumerate(names):
            value = raw[TRACKLET_FEATURES.index(name)]
            assert _raw_of(name, float(inputs[k])) == pytest.approx(value, rel=1e-5), name
    narrow = tracklet_inputs(raw * 0.5, REFERENCE_CUES)
    reference = NoveltyReference("v", np.zeros((1, 2)), np.eye(2), 1.0, narrow - 1.0, narrow)
    unmeasured = raw.copy()
    unmeasured[8:] = np.nan  # a cue set 1 model's rows: the matched filter's left unmeasured
    (reason,) = reference.reasons(np.zeros(1), [1], unmeasured[None])
    assert "rate 3.7 deg/day outside the trained" in reason and "nan" not in reason


def test_a_reference_fitted_with_no_labelled_stamps_names_the_classes_it_saw(tiny_model) -> None:
    """A retraining run with no stamp labels (verdicts only) fits its reference on simulated
    stamps plus an empty list of labelled ones: the classes are still indices (an empty list
    once turned the whole array into floats, and the run failed at its very end)."""
    from classifier.features import TRACKLET_FEATURES
    from classifier.inference import load_model
    from classifier.novelty import class_indices, reference_from

    model = load_model(tiny_model[0])
    labels = np.concatenate([class_indices(model, ["AST", "CR"] * 8), class_indices(model, [])])
    rng = np.random.default_rng(0)
    side = model.preprocessing.crop
    images = rng.random((16, side, side), dtype=np.float32)
    reference = reference_from(
        model,
        images,
        labels,
        rng.random((8, side, side), dtype=np.float32),
        rng.random((20, len(TRACKLET_FEATURES) + 8)) + 0.5,
    )
    assert reference.made["classes"] == ["AST", "CR"]

"""The motion rule (classifier.motion): a tracklet whose motion is within its errors is not a
mover, whatever the networks made of its stamps; a real mover's score is left alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier import motion
from classifier.datasets import BOGUS_INDEX_OFFSET

# the second robust candidate: its networks pass 2 of these 24 variable stars (the baseline's
# none, in its own simulator's ranges)
ROBUST = Path(__file__).resolve().parents[2] / "models" / "robust" / "screening-61190e642c3183f7.pt"
SEED = 20261206


def as_arrays(tracklets) -> tuple[np.ndarray, list[int], np.ndarray]:
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections])
    meta = np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for t in tracklets for d in t.detections]
    )
    return stamps.astype(np.float32), [len(t.detections) for t in tracklets], meta


@pytest.fixture(scope="module")
def model():
    from classifier.inference import Runtime, load_model

    return load_model(ROBUST, runtime=Runtime(threads=2))


@pytest.fixture(scope="module")
def variable_stars():
    """Simulated variable stars (a source at a fixed place whose subtraction residuals a
    linker joined), 24 of them."""
    from classifier.tracklets import make_tracklet

    found, index = [], BOGUS_INDEX_OFFSET
    while len(found) < 24:
        t = make_tracklet(SEED, index, False, glare=False, bogus_kind="correlated")
        if t.latents["correlated_kind"] == "variable":
            found.append(t)
        index += 1
    return as_arrays(found)


@pytest.fixture(scope="module")
def real_movers():
    from classifier.tracklets import make_tracklet

    return as_arrays([make_tracklet(SEED, i, True, glare=False) for i in range(40)])


def test_no_variable_star_passes_though_the_networks_pass_some(model, variable_stars) -> None:
    stamps, lengths, meta = variable_stars
    out = model.assess(stamps, lengths, meta)
    unlike = np.array([bool(r) for r in out.unlike_training])
    assert not ((out.scores >= model.threshold) & ~unlike).any(), out.scores
    capped = [r for r in out.not_moving if r]
    # the networks alone passed some of them (the rule is what rejects them)
    passed = [float(r.split("scored it ")[1].rstrip(")")) for r in capped]
    assert sum(p >= model.threshold for p in passed) >= 2, out.not_moving
    assert all("under 3σ: a source that does not move" in r for r in capped)
    assert not unlike.any(), out.unlike_training


def test_real_movers_keep_their_scores(model, real_movers) -> None:
    stamps, lengths, meta = real_movers
    out = model.assess(stamps, lengths, meta)
    assert out.not_moving == [""] * len(lengths)
    _, network, _, _ = model._network(stamps, np.asarray(lengths), meta)
    np.testing.assert_array_equal(out.scores, network)
    assert (out.scores >= model.threshold).mean() >= 0.95


def test_the_evaluation_applies_the_rule_as_scoring_does(model, variable_stars) -> None:
    """`classifier.evaluate.score_set` (the model card's figures, the promotion rule) reads the
    significance from the set's measured cues: no variable star passes there either, though
    the networks' own scores (`motion_rule=False`, what thresholds are chosen on) pass some."""
    from classifier.datasets import TrackletSet
    from classifier.evaluate import score_set
    from classifier.features import batch_raw
    from classifier.preprocess import prepare

    stamps, lengths, meta = variable_stars
    det_raw, trk_raw = batch_raw(meta, stamps, lengths)
    tset = TrackletSet(
        images=prepare(stamps, model.preprocessing, fwhm=meta[:, 6]).astype(np.float16),
        lengths=np.asarray(lengths),
        real=np.zeros(len(lengths), bool),
        kinds=["correlated-variable"] * len(lengths),
        det_classes=["SCAR"] * len(stamps),
        det_snr=np.zeros(len(stamps)),
        meta=meta,
        det_raw=det_raw,
        trk_raw=trk_raw,
    )
    _, networks = score_set(model, tset, motion_rule=False)
    assert (networks >= model.threshold).sum() >= 2, networks
    _, scores = score_set(model, tset)
    assert not (scores >= model.threshold).any(), scores
    assert (scores[networks > model.threshold / 2] <= model.threshold / 2).all()


def test_the_cap_keeps_lower_scores_and_ignores_what_was_not_measured() -> None:
    scores = np.array([0.9, 0.01, 0.9, 0.9], np.float32)
    significance = np.array([1.0, 0.5, np.nan, 7.0])
    still = motion.still(significance)
    assert still.tolist() == [True, True, False, False]
    capped = motion.cap(scores, still, threshold=0.2)
    np.testing.assert_allclose(capped, [0.1, 0.01, 0.9, 0.9])
    assert scores[0] == np.float32(0.9)  # a copy

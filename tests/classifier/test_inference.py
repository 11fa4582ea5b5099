"""The workers' API: load a checkpoint, score raw stamps with NaN, batched per tracklet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier.hardware import inference_precision
from classifier.inference import AGREEMENT, Runtime, load_model
from classifier.tracklets import make_tracklet

BASELINES = sorted(Path(__file__).resolve().parents[2].joinpath("models").glob("screening-*.pt"))


def test_it_scores_stamps_and_tracklets_of_any_length(tiny_model) -> None:
    path, _ = tiny_model
    model = load_model(path)
    assert model.version == path.stem.removeprefix("screening-")
    assert model.threshold == 0.8 and len(model.classes) == 8
    stamps = np.random.default_rng(0).normal(size=(10, 100, 100)).astype(np.float32)
    stamps[2, :, :30] = np.nan
    probs, scores = model.score(stamps, [4, 3, 3])
    assert probs.shape == (10, 8) and scores.shape == (3,)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert ((scores >= 0) & (scores <= 1)).all()
    # batching does not change results
    _, alone = model.score(stamps[4:7], [3])
    assert alone[0] == pytest.approx(scores[1], abs=1e-5)
    with pytest.raises(ValueError):
        model.score(stamps, [4, 4])


@pytest.mark.skipif(not BASELINES, reason="no committed baseline model")
def test_it_ships_a_baseline_that_separates_clear_cases() -> None:
    model = load_model(BASELINES[-1])
    assert BASELINES[-1].stat().st_size < 25e6
    real = [make_tracklet(77, i, real=True) for i in range(30)]
    real = [t for t in real if t.latents["snr"] > 20][:5]
    bogus = [make_tracklet(77, 1000 + i, real=False) for i in range(40)]
    bogus = [t for t in bogus if t.kind == "correlated"][:5]
    tracklets = real + bogus
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections])
    _, scores = model.score(stamps, [len(t.detections) for t in tracklets], meta_of(tracklets))
    assert min(scores[: len(real)]) > max(scores[len(real) :])


def meta_of(tracklets) -> np.ndarray:
    return np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y] for t in tracklets for d in t.detections]
    )


def simulated_night(count: int) -> tuple[np.ndarray, list[int], np.ndarray]:
    tracklets = [make_tracklet(4242, i, real=i % 3 == 0) for i in range(count)]
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections])
    return stamps.astype(np.float32), [len(t.detections) for t in tracklets], meta_of(tracklets)


@pytest.mark.skipif(not BASELINES, reason="no committed baseline model")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_the_fast_paths_agree_with_the_eager_reference(precision: str) -> None:
    """The workers' path (folded batch norm, channels-last; bf16 autocast as on a GPU) against
    eager float32, within the documented tolerance; no accept/reject decision flips."""
    stamps, lengths, meta = simulated_night(24)
    reference = load_model(BASELINES[-1], runtime=Runtime.reference())
    fast = load_model(BASELINES[-1], runtime=Runtime(precision=precision, batch_stamps=32))
    ref_probs, ref_scores = reference.score(stamps, lengths, meta)
    probs, scores = fast.score(stamps, lengths, meta)
    tolerance = AGREEMENT[precision]
    assert np.abs(probs - ref_probs).max() <= tolerance["probability"]
    assert np.abs(scores - ref_scores).max() <= tolerance["score"]
    clear = np.abs(ref_scores - reference.threshold) > tolerance["score"]
    assert (fast.accepts(scores) == reference.accepts(ref_scores))[clear].all()


@pytest.mark.skipif(not BASELINES, reason="no committed baseline model")
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_no_verdict_depends_on_the_precision_even_at_the_threshold(precision: str) -> None:
    """A machine with bf16 hardware scores in bf16 by default: a tracklet that close to the
    threshold is scored again in float32, so it is kept or rejected exactly as on a float32
    machine, wherever the threshold falls (here: just either side of each tracklet's score)."""
    stamps, lengths, meta = simulated_night(24)
    exact = load_model(BASELINES[-1], runtime=Runtime(precision="fp32"))
    _, exact_scores = exact.score(stamps, lengths, meta)
    fast = load_model(BASELINES[-1], runtime=Runtime(precision=precision))
    plain = load_model(
        BASELINES[-1], runtime=Runtime(precision=precision, exact_near_threshold=False)
    )
    _, plain_scores = plain.score(stamps, lengths, meta)
    # the reduced precision does move scores, so a threshold between two of them flips verdicts
    moved = int(np.argmax(np.abs(plain_scores - exact_scores)))
    assert abs(plain_scores[moved] - exact_scores[moved]) > 1e-4
    flips = 0
    for at in exact_scores[[moved, *range(0, len(exact_scores), 6)]]:
        for threshold in (at - 5e-5, at + 5e-5):
            fast.threshold = plain.threshold = float(threshold)
            _, scores = fast.score(stamps, lengths, meta)
            expected = exact_scores >= threshold
            np.testing.assert_array_equal(fast.accepts(scores), expected)
            flips += int((plain.accepts(plain_scores) != expected).sum())
    assert flips > 0, "without the float32 check some verdict flips"


@pytest.mark.skipif(not BASELINES, reason="no committed baseline model")
def test_no_tracklet_is_auto_rejected_for_a_stamp_the_precision_moved_across_the_novelty_limit():
    """A tracklet unlike training is kept whatever its score; bf16 moves a stamp's novelty
    distance by up to 10%, so where the limit falls just past a stamp's float32 distance the
    tracklet is kept or rejected exactly as on a float32 machine."""
    from dataclasses import replace

    stamps, lengths, meta = simulated_night(24)
    exact = load_model(BASELINES[-1], runtime=Runtime(precision="fp32"))
    fast = load_model(BASELINES[-1], runtime=Runtime(precision="bf16"))
    assert exact.novelty is not None
    reference = exact.assess(stamps, lengths, meta)
    rejected = ~exact.accepts(reference.scores)
    rows = np.repeat(rejected, lengths)
    assert rows.any()
    chosen = np.sort(reference.distances[rows])[:: max(1, int(rows.sum()) // 4)][:4]
    for at in chosen:
        for limit in (at * 0.99, at * 1.01):
            exact.novelty = fast.novelty = replace(exact.novelty, stamp_limit=float(limit))
            want = exact.assess(stamps, lengths, meta)
            got = fast.assess(stamps, lengths, meta)
            np.testing.assert_array_equal(_kept(fast, got), _kept(exact, want))


def _kept(model, assessment) -> np.ndarray:
    """Kept for review: at or above the threshold, or unlike training."""
    unlike = np.array([bool(r) for r in assessment.unlike_training])
    return model.accepts(assessment.scores) | unlike


def test_the_compiled_path_pads_to_one_shape_and_scores_the_same(tiny_model) -> None:
    path, _ = tiny_model
    stamps = np.random.default_rng(5).normal(size=(11, 100, 100)).astype(np.float32)
    stamps[3, :20] = np.nan
    lengths = [4, 3, 4]
    reference = load_model(path, runtime=Runtime.reference())
    compiled = load_model(path, runtime=Runtime(compile=True, batch_stamps=8))
    ref_probs, ref_scores = reference.score(stamps, lengths)
    probs, scores = compiled.score(stamps, lengths)  # one full pass of 8, one padded pass of 3
    assert probs.shape == (11, 8) and scores.shape == (3,)
    np.testing.assert_allclose(probs, ref_probs, atol=AGREEMENT["fp32"]["probability"])
    np.testing.assert_allclose(scores, ref_scores, atol=AGREEMENT["fp32"]["score"])


def test_a_runtime_rejects_settings_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="precision"):
        Runtime(precision="fp8")
    with pytest.raises(ValueError, match="batch_stamps"):
        Runtime(batch_stamps=0)
    assert Runtime.for_device("cpu").precision == inference_precision("cpu")
    with pytest.raises(ValueError, match="CPU only"):
        Runtime(device="cuda", precision="int8")


def test_the_cpu_precision_follows_the_cpu_features(monkeypatch) -> None:
    from classifier import hardware

    for flags, expected in [
        ({"avx2"}, "fp32"),
        ({"avx2", "avx512f", "avx512_vnni"}, "fp32"),  # int8 is only used when asked for
        ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),
        ({"avx2", "amx_bf16", "amx_int8"}, "bf16"),
    ]:
        monkeypatch.setattr(hardware, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert inference_precision("cpu") == expected
        assert inference_precision("cuda:0") == "bf16"

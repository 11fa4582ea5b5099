"""Training on tiny data: a model pair comes out, is saved, loads, and the helpers are right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier.classes import PAPER_CLASSES
from classifier.metrics import operating_point, roc_auc, threshold_for_recall
from classifier.train import augment, train_model
from tests.classifier.conftest import TINY_ICN, TINY_TCN


def test_it_trains_and_saves_a_half_precision_model_pair(tiny_model) -> None:
    path, payload = tiny_model
    assert path.exists() and path.stat().st_size < 25e6
    assert payload["classes"] == list(PAPER_CLASSES)
    assert payload["threshold"] == 0.8
    assert payload["preprocessing"]["name"] == "equalize"
    icn_weights = payload["icn"]["state_dict"]
    assert icn_weights["conv1.weight"].dtype.is_floating_point
    assert str(icn_weights["fc.weight"].dtype) == "torch.float16"
    assert set(payload["training"]["timings"]) >= {"train_icn_s", "train_tcn_s"}
    assert payload["metrics"]["validation"]["tracklets"] == {"real": 6, "bogus": 6}


def test_it_trains_the_paper_preset_with_a_chosen_threshold(tmp_path: Path) -> None:
    _, payload = train_model(
        seed=4,
        preset="paper",
        out_dir=tmp_path,
        device="cpu",
        workers=1,
        icn_overrides=TINY_ICN,
        tcn_overrides={**TINY_TCN, "epochs": 1},
        target_recall=0.5,
        progress=False,
    )
    assert payload["training"]["tcn"]["loss"] == "mse"
    assert payload["metrics"]["validation"]["real_recall"] >= 0.5


def test_it_chooses_the_highest_threshold_reaching_the_recall() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.05])
    real = np.array([True, True, True, True, False, False])
    t = threshold_for_recall(scores, real, 0.75)
    # a millionth below the real tracklet at 0.2, which stays kept if rescored a digit lower
    assert t == pytest.approx(0.2, rel=2e-6) and t < 0.2 and np.float32(0.2) >= t
    assert operating_point(scores, real, t) == {
        "threshold": t,
        "real_recall": 0.75,
        "bogus_rejection": 0.5,
    }


def test_it_computes_the_auc_by_ranks() -> None:
    real = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), real) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), real) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), real) == 0.5


def test_it_augments_with_rotations_flips_and_jittered_crops() -> None:
    import torch

    x = torch.arange(100 * 100, dtype=torch.float32).reshape(1, 1, 100, 100).repeat(16, 1, 1, 1)
    out = augment(x, torch.Generator().manual_seed(0), crop=80, jitter=4)
    assert out.shape == (16, 1, 80, 80)
    assert len({tuple(o.flatten()[:3].tolist()) for o in out}) > 4


@pytest.mark.parametrize("trusted", ["real", "bogus"])
def test_a_tracklet_weight_decides_between_contradicting_labels(trusted: str) -> None:
    """Retraining weighted by reviewers' gold accuracy: the same tracklets labelled real by one
    reviewer and bogus by another are learnt as the reviewer whose labels weigh more says."""
    from classifier.train import TcnTraining, predict_tcn, train_tcn

    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 0.1, size=(64, 4 * 8)).astype(np.float32)
    inputs = np.concatenate([x, x])
    labels = np.concatenate([np.ones(64), np.zeros(64)]).astype(np.float32)
    real_weight = 1.0 if trusted == "real" else 0.05
    weights = np.concatenate([np.full(64, real_weight), np.full(64, 1.05 - real_weight)])
    model = train_tcn(
        inputs,
        labels,
        TcnTraining(epochs=30, lr=1e-2, real_weight=1.0),
        8,
        progress=False,
        weights=weights.astype(np.float32),
    )
    scores = predict_tcn(model, x, "cpu")
    if trusted == "real":
        assert scores.min() > 0.8
    else:
        assert scores.max() < 0.2


BASELINE = (
    Path(__file__).resolve().parents[2] / "models" / "previous" / "screening-43028b2fba09ca58.pt"
)


def test_it_fine_tunes_the_icn_of_a_checkpoint_rather_than_starting_from_scratch(
    tmp_path: Path,
) -> None:
    """`train --init-icn`: the ICN starts from the checkpoint's weights (with a zero learning
    rate it ends there), and a checkpoint of other classes is refused by name."""
    import torch

    from classifier.checkpoint import load_checkpoint

    start = load_checkpoint(BASELINE)["icn"]["state_dict"]
    _, payload = train_model(
        seed=4,
        preset="default",
        out_dir=tmp_path,
        device="cpu",
        workers=1,
        icn_overrides={**TINY_ICN, "lr": 0.0, "init_from": str(BASELINE)},
        tcn_overrides={**TINY_TCN, "epochs": 1},
        progress=False,
    )
    tuned = payload["icn"]["state_dict"]
    for name in ("conv1.weight", "layer3.0.conv2.weight", "fc.weight"):
        assert torch.equal(tuned[name], start[name]), name
    assert payload["training"]["icn"]["init_from"] == str(BASELINE)
    with pytest.raises(ValueError, match="has classes .* this training"):
        train_model(
            seed=4,
            preset="default",
            out_dir=tmp_path,
            classes=(*PAPER_CLASSES, "GLARE"),
            device="cpu",
            workers=1,
            icn_overrides={**TINY_ICN, "init_from": str(BASELINE)},
            tcn_overrides=TINY_TCN,
            progress=False,
        )


def test_an_unknown_batch_norm_mode_is_refused_by_name() -> None:
    """A misspelt mode must not fall back to learning the statistics silently."""
    from classifier.train import IcnTraining

    with pytest.raises(ValueError, match="batch_norm must be 'learn' or 'kept', got 'keep'"):
        IcnTraining("retrain", batch_norm="keep")


def test_extra_mixed_linkages_join_the_training_set_and_leave_the_rest_as_it_was() -> None:
    """`TcnTraining.n_mixed` (`train --tcn-mixed N`): N more bogus tracklets, every one a mixed
    linkage (a mover's detections with bogus ones or with another mover's), after the set's own
    tracklets, which are the very tracklets of the set without them."""
    from classifier.datasets import build_tracklet_set
    from classifier.preprocess import Preprocessing

    pre = Preprocessing("asinh_sigma")
    plain = build_tracklet_set(4, 3, 3, pre, glare=False, workers=1, progress=False)
    more = build_tracklet_set(4, 3, 3, pre, glare=False, workers=1, progress=False, mixed_bogus=5)
    assert len(more.real) == 11 and not more.real[6:].any()
    assert more.kinds[:6] == plain.kinds
    assert all(kind.startswith("mixed-") for kind in more.kinds[6:])
    assert np.array_equal(more.trk_raw[:6], plain.trk_raw, equal_nan=True)
    assert more.params["mixed_bogus"] == 5

"""The metadata TCN: any tracklet length, order and padding do not matter, classes can grow,
the score is calibrated, and a model of the old format still loads and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from classifier.calibration import calibrate_logits, fit_platt
from classifier.checkpoint import load_checkpoint
from classifier.features import N_DETECTION_INPUTS, N_TRACKLET_INPUTS
from classifier.inference import load_model
from classifier.metrics import reliability
from classifier.networks import TcnConfig, build_tcn, grow_tcn, pack_set_inputs
from classifier.tracklets import make_tracklet

BASELINE_V1 = (
    Path(__file__).resolve().parents[2] / "models" / "previous" / "screening-c652846297a465e0.pt"
)  # the first baseline, format 1
CFG = TcnConfig(
    n_classes=8,
    kind="set",
    n_detection_features=N_DETECTION_INPUTS,
    n_tracklet_features=N_TRACKLET_INPUTS,
)


def _inputs(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(lengths)
    probs = torch.softmax(torch.randn(n, 8, generator=g), 1)
    det = torch.randn(n, N_DETECTION_INPUTS, generator=g)
    trk = torch.randn(len(lengths), N_TRACKLET_INPUTS, generator=g)
    return probs, det, trk, torch.tensor(lengths)


def _scores(model, probs, det, trk, lengths):
    packed, mask = pack_set_inputs(probs, det, lengths)
    with torch.no_grad():
        return model(packed, mask, trk).squeeze(1)


def test_every_length_from_3_to_16_scores_and_padding_changes_nothing() -> None:
    torch.manual_seed(0)
    model = build_tcn(CFG).eval()
    lengths = list(range(3, 17))
    probs, det, trk, lt = _inputs(lengths)
    together = _scores(model, probs, det, trk, lt)
    assert together.shape == (14,)
    at = 0
    for i, n in enumerate(lengths):  # one by one: no padding at all
        alone = _scores(
            model, probs[at : at + n], det[at : at + n], trk[i : i + 1], torch.tensor([n])
        )
        assert alone.item() == pytest.approx(together[i].item(), abs=1e-5)
        at += n


def test_the_order_of_a_tracklets_detections_does_not_matter() -> None:
    torch.manual_seed(1)
    model = build_tcn(CFG).eval()
    probs, det, trk, lt = _inputs([6])
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    assert _scores(model, probs[order], det[order], trk, lt).item() == pytest.approx(
        _scores(model, probs, det, trk, lt).item(), abs=1e-5
    )


def test_a_grown_tcn_scores_as_before_until_it_is_trained() -> None:
    torch.manual_seed(2)
    model = build_tcn(CFG).eval()
    old = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
    grown, cfg = grow_tcn(model, CFG, old, (*old, "GLARE"))
    assert cfg.n_classes == 9
    probs, det, trk, lt = _inputs([4, 5])
    padded = torch.cat([probs, torch.zeros(len(probs), 1)], 1)
    assert torch.allclose(
        _scores(grown.eval(), padded, det, trk, lt), _scores(model, probs, det, trk, lt), atol=1e-6
    )


def test_platt_scaling_makes_an_overconfident_score_honest() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.5
    true_logit = np.where(y, 1.0, -1.0) + rng.normal(0, 1.5, 4000)
    logits = 6.0 * true_logit  # overconfident: 6x too sharp
    before = reliability(calibrate_logits(logits, None), y)["ece"]
    cal = fit_platt(logits, y.astype(np.float32))
    after = reliability(calibrate_logits(logits, cal), y)["ece"]
    assert cal["a"] > 0 and after < 0.03 < before


def test_the_shipped_recipe_trains_a_calibrated_metadata_model(tiny_metadata_model) -> None:
    path, payload = tiny_metadata_model
    loaded = load_checkpoint(path)
    assert loaded["format_version"] == 2
    assert loaded["tcn"]["config"]["kind"] == "set"
    assert loaded["calibration"]["method"] == "platt" and loaded["calibration"]["a"] > 0
    assert 0 <= payload["metrics"]["validation"]["reliability"]["ece"] <= 1
    stamps = _score_a_real_tracklet(load_model(path, "cpu"))
    with pytest.raises(ValueError, match="give each detection's mjd, ra, dec, mag, x, y"):
        load_model(path, "cpu").score(stamps, [len(stamps)])


def _score_a_real_tracklet(model) -> np.ndarray:
    """Score one simulated real tracklet from raw stamps and metadata; return its stamps."""
    t = make_tracklet(2, 5, real=True)
    stamps = np.stack([d.stamp.difference for d in t.detections]).astype(np.float32)
    meta = np.array([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y] for d in t.detections])
    _, scores = model.score(stamps, [len(stamps)], meta)
    assert scores.shape == (1,) and 0 <= scores[0] <= 1
    return stamps


def test_the_robust_recipe_trains_on_the_wider_simulator_with_the_invariant_cues(
    tmp_path,
) -> None:
    """The robust preset (issue 25): the wider simulator and its invariant cue set (newer than
    the metadata preset's); the checkpoint says so, and the model scores from raw stamps and
    metadata with those cues."""
    from classifier.features import CUES
    from classifier.train import PRESETS
    from tests.classifier.conftest import tiny_set_model

    cues = PRESETS["robust"][1].cues
    assert cues > PRESETS["metadata"][1].cues
    path, _ = tiny_set_model(tmp_path, preset="robust", seed=4)
    config = load_checkpoint(path)["tcn"]["config"]
    assert config["cues"] == cues
    assert (config["n_detection_features"], config["n_tracklet_features"]) == CUES[cues]
    _score_a_real_tracklet(load_model(path, "cpu"))


def test_a_format_1_checkpoint_still_loads_and_scores_without_metadata() -> None:
    payload = load_checkpoint(BASELINE_V1)
    assert payload["format_version"] == 1
    model = load_model(BASELINE_V1, "cpu")
    assert not model.needs_metadata and model.calibration is None
    t = make_tracklet(2, 6, real=True)
    stamps = np.stack([d.stamp.difference for d in t.detections]).astype(np.float32)
    _, scores = model.score(stamps, [len(stamps)])
    assert scores.shape == (1,)


def _glare_and_plain(seed: int):
    """200 four-detection tracklets of 9 classes: the first 100 every stamp GLARE (0.9), the
    others none of it."""
    from classifier.train import SetInputs

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(9), 800).astype(np.float32)
    glare = np.repeat(np.arange(200) < 100, 4)
    probs[glare] = np.eye(9, dtype=np.float32)[8] * 0.9 + 0.1 / 9
    probs[~glare, 8] = 0.0
    det = rng.normal(size=(800, N_DETECTION_INPUTS)).astype(np.float32)
    trk = rng.normal(size=(200, N_TRACKLET_INPUTS)).astype(np.float32)
    return SetInputs(probs, det, trk, np.full(200, 4))


def _learn_glare(inputs, cfg, model, **columns):
    """`model` trained on `_glare_and_plain` inputs (glare bogus), only `columns` learning."""
    from classifier.train import TcnTraining, train_set_tcn

    y = np.where(np.arange(200) < 100, 0.0, 1.0).astype(np.float32)
    training = TcnTraining(kind="set", epochs=40, lr=3e-2, batch_size=16)
    return train_set_tcn(inputs, y, training, cfg, progress=False, model=model, **columns)


def test_learning_a_new_class_leaves_tracklets_without_it_scored_as_before() -> None:
    """Retraining's default: only the weights from the new class's probability learn, so a
    tracklet whose stamps give the new class nothing scores exactly as under the base TCN,
    while tracklets full of it learn to be bogus."""
    from classifier.train import predict_set_tcn

    torch.manual_seed(3)
    old = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
    base = build_tcn(CFG).eval()
    grown, cfg = grow_tcn(base, CFG, old, (*old, "GLARE"))
    inputs = _glare_and_plain(0)
    plain = inputs.select(np.arange(100, 200))
    before = predict_set_tcn(grown, plain, "cpu")
    trained = _learn_glare(inputs, cfg, grown, input_columns=[8])
    np.testing.assert_allclose(predict_set_tcn(trained, plain, "cpu"), before, atol=1e-5)
    glare_logits = predict_set_tcn(trained, inputs.select(np.arange(100)), "cpu")
    # every glare tracklet now ranks below every tracklet without glare
    assert glare_logits.max() < before.min()
    # every weight but the new column is the base's
    for (name, a), b in zip(trained.state_dict().items(), grown.state_dict().values(), strict=True):
        assert a.shape == b.shape, name
    np.testing.assert_array_equal(
        trained.phi[0].weight[:, :8].detach().numpy(), base.phi[0].weight[:, :8].detach().numpy()
    )
    assert all(p.requires_grad for p in trained.parameters())


def test_a_class_learned_as_a_share_rejects_tracklets_of_it_and_weighs_one_stamp_as_a_share() -> (
    None
):
    """Retraining's default for a new class (`TcnConfig.share_classes`): the tracklet network
    learns from the share of a tracklet's stamps read as the class, which the detections'
    network (max-pooled) never sees. A tracklet made of glare learns to be bogus; one stamp
    read as glare weighs what its share of the tracklet is, wherever it sits; a tracklet
    without glare scores exactly as under the base."""
    from classifier.train import SetInputs, predict_set_tcn

    torch.manual_seed(4)
    old = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
    base = build_tcn(CFG).eval()
    grown, cfg = grow_tcn(base, CFG, old, (*old, "GLARE"), shares=True)
    assert (cfg.n_classes, cfg.share_classes) == (9, 1)
    inputs = _glare_and_plain(1)
    plain = inputs.select(np.arange(100, 200))
    untrained = predict_set_tcn(grown, inputs, "cpu")
    np.testing.assert_allclose(
        untrained, predict_set_tcn(base, replace_probs(inputs), "cpu"), atol=1e-5
    )
    width = grown.rho[0].weight.shape[1]
    trained = _learn_glare(inputs, cfg, grown, share_columns=[width - 1])
    before = untrained[100:]
    np.testing.assert_allclose(predict_set_tcn(trained, plain, "cpu"), before, atol=1e-5)
    assert predict_set_tcn(trained, inputs.select(np.arange(100)), "cpu").max() < before.min()
    assert not trained.phi[0].weight[:, 8].detach().any()  # never through the detections
    # one stamp at 0.8 or four at 0.2: the same share, the same score
    one = plain.select(np.array([0]))
    spread = SetInputs(one.probs.copy(), one.det, one.trk, one.lengths)
    one.probs[:, 8] = [0.8, 0.0, 0.0, 0.0]
    spread.probs[:, 8] = 0.2
    assert predict_set_tcn(trained, one, "cpu")[0] == pytest.approx(
        predict_set_tcn(trained, spread, "cpu")[0], abs=1e-5
    )


@pytest.mark.parametrize("statistic", ["second", "mean-but-top"])
def test_a_share_that_needs_two_stamps_never_counts_one_misread_stamp(statistic) -> None:
    """Retraining's default share statistic ("second": the second highest probability of the
    class; "mean-but-top": the mean without the highest): one stamp of a real mover misread as
    glare changes nothing, wherever it sits and however sure; two such stamps count, and
    tracklets made of glare are still rejected. A TCN that had "mean" shares keeps them when it
    grows again."""
    from dataclasses import replace

    from classifier.train import SetInputs, predict_set_tcn

    torch.manual_seed(5)
    old = ("BURN", "CR", "NOISE", "SCAR", "SPIKE", "AST", "STREAK", "COMET")
    base = build_tcn(CFG).eval()
    grown, cfg = grow_tcn(base, CFG, old, (*old, "GLARE"), shares=True, share_statistic=statistic)
    assert cfg.share_statistic == statistic
    assert TcnConfig.from_dict(cfg.to_dict()) == cfg
    inputs = _glare_and_plain(1)
    width = grown.rho[0].weight.shape[1]
    trained = _learn_glare(inputs, cfg, grown, share_columns=[width - 1])
    plain = inputs.select(np.arange(100, 200))
    before = predict_set_tcn(trained, plain, "cpu")
    assert predict_set_tcn(trained, inputs.select(np.arange(100)), "cpu").max() < before.min()
    for slot in range(4):
        one = plain.select(np.arange(10))
        one.probs[slot::4, 8] = 0.99
        np.testing.assert_allclose(predict_set_tcn(trained, one, "cpu"), before[:10], atol=1e-5)
    two = plain.select(np.arange(10))
    two.probs[0::4, 8] = two.probs[1::4, 8] = 0.99
    assert (predict_set_tcn(trained, two, "cpu") < before[:10] - 0.5).all()
    # a single-detection tracklet keeps its own share
    alone = SetInputs(plain.probs[:1].copy(), plain.det[:1], plain.trk[:1], np.array([1]))
    clean = predict_set_tcn(trained, alone, "cpu")[0]
    alone.probs[0, 8] = 0.99
    assert predict_set_tcn(trained, alone, "cpu")[0] < clean - 0.5
    # growing again keeps the statistic the old shares were learned with
    mean_cfg = replace(CFG, n_classes=9, share_classes=1)
    regrown = grow_tcn(build_tcn(mean_cfg), mean_cfg, (*old, "GLARE"), (*old, "GLARE", "X"),
                       share_statistic=statistic)[1]  # fmt: skip
    assert (regrown.share_statistic, regrown.share_classes) == ("mean", 2)
    with pytest.raises(ValueError, match="unknown share statistic 'median'"):
        TcnConfig(n_classes=9, kind="set", share_statistic="median")


def replace_probs(inputs):
    """The inputs without their last class (what the base TCN takes)."""
    from classifier.train import SetInputs

    return SetInputs(inputs.probs[:, :-1], inputs.det, inputs.trk, inputs.lengths)

"""Retraining on labels: a new class grows the ICN, held-out labels stay out of training."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.checkpoint import load_checkpoint
from classifier.inference import load_model
from classifier.retrain import (
    LabelledStamp,
    LabelledTracklet,
    Labels,
    RetrainConfig,
    RetrainError,
    drift_margin,
    is_held_out,
    retrain,
)
from classifier.simulate import make_stamp, stamp_rng
from classifier.tracklets import make_tracklet

TINY = RetrainConfig(
    replay_per_class=4,
    labelled_min=8,
    icn_epochs=1,
    tcn_real=12,
    tcn_bogus=12,
    tcn_val_real=12,
    tcn_val_bogus=6,
    tcn_epochs=2,
    eval_real=6,
    eval_bogus=6,
    eval_planet=4,
    workers=1,
    device="cpu",
    target_recall=0.9,
)


def glare_labels() -> Labels:
    stamps = [
        LabelledStamp(
            key=f"G{i}",
            stamp_class="GLARE",
            pixels=make_stamp("GLARE", stamp_rng(9, 7, i)).difference,
        )
        for i in range(16)
    ]
    tracklets = []
    for i in range(16):
        t = make_tracklet(9, i, real=i % 2 == 0)
        pixels = np.stack([d.stamp.difference for d in t.detections]).astype(np.float32)
        meta = np.array([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y] for d in t.detections])
        tracklets.append(LabelledTracklet(key=f"T{i}", pixels=pixels, real=t.real, meta=meta))
    return Labels(
        stamps=stamps,
        tracklets=tracklets,
        real_classes={"GLARE": False, "AST": True, "STREAK": True, "COMET": True},
    )


def test_a_new_class_grows_the_icn_and_both_models_are_compared(tiny_model, tmp_path) -> None:
    base_path, base_payload = tiny_model
    steps: list[tuple[float, str]] = []
    path, payload = retrain(
        base_path,
        glare_labels(),
        tmp_path,
        TINY,
        progress=lambda f, s, log=True: steps.append((f, s)),
    )
    loaded = load_checkpoint(path)
    assert loaded["classes"] == [*base_payload["classes"], "GLARE"]
    assert "GLARE" not in loaded["real_classes"] and "AST" in loaded["real_classes"]
    assert loaded["training"]["base_version"] == base_path.stem.removeprefix("screening-")
    assert loaded["training"]["new_classes"] == ["GLARE"]
    counts = loaded["training"]["labels"]
    assert counts["tracklets_train"] + counts["tracklets_held_out"] == 16
    held = sum(is_held_out(f"T{i}", TINY.holdout_fraction) for i in range(16))
    assert counts["tracklets_held_out"] == held > 0
    comparison = loaded["metrics"]["comparison"]
    for side in ("candidate", "base"):
        assert (
            comparison["holdout"][side]["tracklets"]["real"]
            + comparison["holdout"][side]["tracklets"]["bogus"]
            == held
        )
        assert 0.0 <= comparison["synthetic"][side]["auc"] <= 1.0
    # The threshold keeps at least the target recall, and no less than the base model keeps, on
    # the unseen validation tracklets both were scored on.
    validation = loaded["metrics"]["validation"]["tcn"]
    assert validation["recall_floor"] == max(TINY.target_recall, validation["base_recall"])
    assert validation["real_recall"] >= validation["recall_floor"]
    model = load_model(path, device="cpu")
    probs, scores = model.score(glare_labels().stamps[0].pixels[None], [1])
    assert probs.shape == (1, 9) and 0.0 <= scores[0] <= 1.0
    # its novelty reference is beside it, and the glare the reviewers taught it is not unlike
    # its training data (the new class is in the reference's class means)
    assert model.novelty is not None and model.novelty.model_version == model.version
    assert "GLARE" in model.novelty.made["classes"]
    labelled = np.stack([s.pixels for s in glare_labels().stamps if s.stamp_class == "GLARE"])
    distances = model.assess(labelled, [1] * len(labelled)).distances
    assert (distances <= model.novelty.stamp_limit).mean() >= 0.9
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert not list(tmp_path.glob(".unevaluated/*.pt"))  # no half-made candidate left


def test_an_icn_fine_tuned_from_a_late_block_keeps_the_blocks_before_to_the_bit(
    tiny_model, tmp_path
) -> None:
    """`icn_learns_from="layer4"`: the stem and blocks 1-3 keep the base's weights and BatchNorm
    statistics exactly (the old classes' features unmoved); layer4 and the output layer learn.
    An unknown block is refused by name."""
    from dataclasses import replace

    import torch

    base_path, _ = tiny_model
    path, _ = retrain(
        base_path, glare_labels(), tmp_path, replace(TINY, icn_learns_from="layer4"),
        progress=lambda *a, **k: None,
    )  # fmt: skip
    before = load_checkpoint(base_path)["icn"]["state_dict"]
    after = load_checkpoint(path)["icn"]["state_dict"]
    kept, moved = [], []
    for key, value in before.items():
        if key.endswith("num_batches_tracked") or key.startswith("fc."):
            continue
        same = torch.equal(value.float(), after[key].float())
        (moved if key.startswith("layer4.") else kept).append((key, same))
    assert kept and all(same for _, same in kept), [k for k, same in kept if not same]
    assert any(key.endswith("running_mean") for key, _ in kept)
    assert not all(same for _, same in moved)  # layer4 learned
    assert after["fc.weight"].shape[0] == before["fc.weight"].shape[0] + 1  # GLARE's row
    with pytest.raises(ValueError, match="icn_learns_from must be .* got 'layer5'"):
        RetrainConfig(icn_learns_from="layer5")


def test_the_replay_keeps_bright_stamps_of_every_real_class_the_base_knows(tiny_model) -> None:
    """Glare is bright and diffuse: the ICN learning it must also see bright comets, asteroids
    and streaks as what they are, which the nominal draws (mostly faint) rarely show it."""
    from collections import Counter
    from dataclasses import replace

    from classifier.classes import is_real
    from classifier.datasets import build_stamp_set
    from classifier.retrain import REPLAY_BRIGHT, _icn_sets

    base = load_model(tiny_model[0], device="cpu")
    classes = (*base.classes, "GLARE")
    stamps = glare_labels().stamps
    cfg = replace(TINY, replay_per_class=2, replay_bright_per_class=3, distill=False)
    train, _, _ = _icn_sets(base, classes, stamps, [], [], cfg, lambda *a, **k: None)
    counts = Counter(classes[i] for i in train.labels)
    real = [c for c in base.classes if is_real(c)]
    assert real == ["AST", "STREAK", "COMET"]
    for name in base.classes:
        assert counts[name] == 2 + (3 if name in real else 0), name
    assert counts["GLARE"] >= len(stamps)
    none = replace(cfg, replay_bright_per_class=0)
    train, _, _ = _icn_sets(base, classes, stamps, [], [], none, lambda *a, **k: None)
    assert Counter(classes[i] for i in train.labels)["COMET"] == 2
    # what the bright draws are: every real stamp at SNR 50 or more, where the nominal draws of
    # the same seeds are mostly fainter
    bright = build_stamp_set(5, tuple(real), 6, base.preprocessing, cfg=REPLAY_BRIGHT, workers=1,
                             progress=False)  # fmt: skip
    nominal = build_stamp_set(5, tuple(real), 6, base.preprocessing, workers=1, progress=False)
    assert min(lat["snr"] for lat in bright.latents) >= 50
    assert np.median([lat["snr"] for lat in nominal.latents]) < 50


def test_a_base_is_not_scored_on_held_out_stamps_of_a_class_it_lacks() -> None:
    from classifier.metrics import held_out_stamp_accuracy

    only_new = {
        "new_classes": ["GLARE"],
        "holdout_stamps": {
            "candidate": {
                "stamps": 44,
                "accuracy": 0.9,
                "per_class": {"GLARE": 0.9},
                "per_class_stamps": {"GLARE": 44},
            },
            "base": {
                "stamps": 44,
                "accuracy": 0.0,
                "per_class": {"GLARE": 0.0},
                "per_class_stamps": {"GLARE": 44},
            },
        },
    }
    shown = held_out_stamp_accuracy(only_new)
    assert shown["candidate"] == {"accuracy": 0.9, "stamps": 44, "lacks": []}
    assert shown["base"] == {"accuracy": None, "stamps": 0, "lacks": ["GLARE"]}
    mixed = {
        "new_classes": ["GLARE"],
        "holdout_stamps": {
            "base": {
                "stamps": 40,
                "accuracy": 0.25,
                "per_class": {"GLARE": 0.0, "CR": 0.5},
                "per_class_stamps": {"GLARE": 20, "CR": 20},
            }
        },
    }
    assert held_out_stamp_accuracy(mixed)["base"] == {
        "accuracy": 0.5,
        "stamps": 20,
        "lacks": ["GLARE"],
    }


def test_it_refuses_to_train_on_nothing_or_on_an_unknown_category(tiny_model, tmp_path) -> None:
    base_path, _ = tiny_model
    with pytest.raises(RetrainError, match="no stamp labels or verdicts"):
        retrain(base_path, Labels(), tmp_path, TINY)
    labels = glare_labels()
    labels.real_classes = {}
    with pytest.raises(RetrainError, match="GLARE"):
        retrain(base_path, labels, tmp_path, TINY)


def test_a_metadata_base_grows_its_set_tcn_and_stays_calibrated(
    tiny_metadata_model, tmp_path
) -> None:
    base_path, base_payload = tiny_metadata_model
    labels = glare_labels()
    path, payload = retrain(base_path, labels, tmp_path, TINY)
    loaded = load_checkpoint(path)
    assert loaded["classes"] == [*base_payload["classes"], "GLARE"]
    assert loaded["tcn"]["config"]["kind"] == "set"
    assert loaded["tcn"]["config"]["n_classes"] == 9
    assert loaded["calibration"]["a"] > 0
    assert "reliability" in loaded["metrics"]["validation"]["tcn"]
    model = load_model(path, device="cpu")
    t = labels.tracklets[0]
    probs, scores = model.score(t.pixels, [len(t.pixels)], t.meta)
    assert probs.shape == (len(t.pixels), 9) and 0.0 <= scores[0] <= 1.0
    held = loaded["metrics"]["comparison"]["holdout"]
    assert held["candidate"]["tracklets"] == held["base"]["tracklets"]


def _night(rng: np.random.Generator, n_real: int, n_bogus: int, drift: float, bogus_at: float):
    """Base and candidate scores of one night: the candidate's logit is the base's plus noise."""
    base = np.concatenate([rng.normal(2.5, 2.0, n_real), rng.normal(bogus_at, 1.0, n_bogus)])
    cand = base + rng.normal(0.0, drift, len(base))
    real = np.arange(len(base)) < n_real
    return 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-cand)), real


def test_a_retrained_threshold_absorbs_score_drift_so_a_new_night_loses_no_kept_real() -> None:
    base_t = 0.28
    val_base, val_cand, val_real = _night(np.random.default_rng(1), 1500, 300, 0.25, -5.0)
    threshold, figures = drift_margin(val_base, val_cand, val_real, base_t, base_t)
    assert threshold < base_t and 0.0 < figures["logit"] <= 1.0
    # A night neither saw: real tracklets the base keeps, scored by the candidate.
    base, cand, real = _night(np.random.default_rng(2), 1200, 0, 0.25, -5.0)
    kept = real & (base >= base_t)
    lost_without = int((cand[kept] < base_t).sum())
    lost_with = int((cand[kept] < threshold).sum())
    assert lost_without >= 3, "the drift must cost real tracklets at the base's threshold"
    assert lost_with <= 1 and lost_with < lost_without


def test_the_drift_margin_costs_at_most_a_point_of_bogus_rejection() -> None:
    base_t = 0.28
    # Bogus tracklets crowd just under the threshold: lowering it far would let them through.
    base, cand, real = _night(np.random.default_rng(3), 1500, 300, 0.5, -1.5)
    threshold, figures = drift_margin(base, cand, real, base_t, base_t)
    unlowered = (cand[~real] < base_t).mean()
    assert (cand[~real] < threshold).mean() >= unlowered - 0.01
    assert 0.0 < figures["logit"] < figures["wanted_logit"]


def test_retraining_a_retrained_model_does_not_lower_its_threshold_again() -> None:
    """The drift margin is capped for a whole lineage: a candidate of a model already lowered a
    full logit below its lineage's first threshold is not lowered further, however its scores
    drift; one lowered half a logit may go half a logit more."""
    first = 0.28
    lowered = 1 / (1 + np.exp(-(np.log(first / (1 - first)) - 1.0)))
    base, cand, real = _night(np.random.default_rng(4), 1500, 300, 0.8, -6.0)
    alone, figures = drift_margin(base, cand, real, lowered, lowered)
    assert alone < lowered and figures["logit"] > 0.5  # this drift would lower it again
    again, figures = drift_margin(base, cand, real, lowered, lowered, anchor=first)
    assert again == lowered and figures["logit"] == 0.0
    half = 1 / (1 + np.exp(-(np.log(first / (1 - first)) - 0.5)))
    _, figures = drift_margin(base, cand, real, half, half, anchor=first)
    assert figures["logit"] == pytest.approx(0.5, abs=1e-6)


def test_a_base_scored_on_the_evaluation_set_once_gives_the_same_figures_again(
    tiny_model, tmp_path
) -> None:
    """The fixed evaluation set's scores of a model are kept by version: a second retraining
    from the same base reads them (the same figures), and a kept file that does not fit the set
    is not trusted but scored again."""
    from classifier.retrain import synthetic_evaluation

    base = load_model(tiny_model[0], device="cpu")
    first = synthetic_evaluation({"base": base}, 6, 6, cache_dir=tmp_path, workers=1)
    kept = sorted(tmp_path.glob(f"scores-{base.version[:32]}-cpu-*.npz"))
    assert len(kept) == 1
    again = synthetic_evaluation({"base": base}, 6, 6, cache_dir=tmp_path, workers=1)
    assert again == first
    with np.load(kept[0]) as data:  # what is kept is what is read: every tracklet at 1.0
        probabilities = data["probabilities"]
    np.savez(kept[0], probabilities=probabilities, scores=np.ones(12, np.float32))
    read = synthetic_evaluation({"base": base}, 6, 6, cache_dir=tmp_path, workers=1)
    assert read["base"] != first["base"]
    # a file of another set's shape (a torn or foreign file) is scored again and replaced
    np.savez(kept[0], probabilities=np.zeros((2, 2), np.float32), scores=np.zeros(1, np.float32))
    assert synthetic_evaluation({"base": base}, 6, 6, cache_dir=tmp_path, workers=1) == first
    with np.load(kept[0]) as data:
        assert data["scores"].shape == (12,)


def test_an_icn_fine_tuned_with_its_batch_norm_kept_keeps_every_running_statistic(
    tiny_model, tmp_path
) -> None:
    """`icn_batch_norm="kept"`: the glare stamps of a fine-tuning do not move the statistics
    every BatchNorm normalises by (what the network makes of old stamps moves only with the
    weights it learns), while the weights learn; with "learn" the statistics move. An unknown
    value is refused by name."""
    from dataclasses import replace

    import torch

    base_path, _ = tiny_model
    before = load_checkpoint(base_path)["icn"]["state_dict"]
    moved = {}
    for mode in ("kept", "learn"):
        path, _ = retrain(
            base_path, glare_labels(), tmp_path / mode, replace(TINY, icn_batch_norm=mode),
            progress=lambda *a, **k: None,
        )  # fmt: skip
        after = load_checkpoint(path)["icn"]["state_dict"]
        moved[mode] = {
            key
            for key, value in before.items()
            if key.endswith(("running_mean", "running_var"))
            and not torch.equal(value.float(), after[key].float())
        }
        weights = [k for k in before if k.endswith("conv1.weight") and k.startswith("layer")]
        assert any(not torch.equal(before[k].float(), after[k].float()) for k in weights)
    assert moved["kept"] == set()
    assert len(moved["learn"]) > 10
    with pytest.raises(ValueError, match="icn_batch_norm must be .* got 'frozen'"):
        RetrainConfig(icn_batch_norm="frozen")

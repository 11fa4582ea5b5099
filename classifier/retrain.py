"""Retraining on reviewers' labels: grow the ICN by new classes, fine-tune, retrain the TCN.

Plain PyTorch (the Celery training job gathers the labels from the database and calls
`retrain`). Inputs are raw stamps as the ingest stored them:

- labelled stamps (one class name each, new classes allowed) teach the ICN, mixed with a replay
  of synthetic stamps of the base model's classes so that it does not forget them;
- tracklets with a real/bogus verdict teach the TCN, mixed with synthetic tracklets.

A share of the labelled tracklets (chosen by a hash of their key, so the same tracklet is always
on the same side) is held out: neither network trains on its stamps or verdicts. The candidate
and the base model are both evaluated on it and on a fixed synthetic evaluation set, so that a
promotion compares them on the same data.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifier.checkpoint import load_checkpoint, save_checkpoint
from classifier.datasets import StampSet, build_stamp_set, build_tracklet_set
from classifier.evaluate import evaluate_tracklets, score_set
from classifier.features import batch_inputs
from classifier.inference import Runtime, ScreeningModel, model_from_checkpoint
from classifier.networks import IcnConfig, TcnConfig, grow_icn, grow_tcn, tcn_inputs
from classifier.preprocess import prepare
from classifier.train import (
    TCN_VALIDATION_OFFSET,
    IcnTraining,
    SetInputs,
    TcnTraining,
    calibrate_logits,
    checkpoint_payload,
    fit_platt,
    operating_point,
    predict_icn,
    predict_set_tcn,
    predict_tcn,
    reliability,
    resolve_device,
    roc_auc,
    set_inputs_of,
    threshold_for_recall,
    train_icn,
    train_set_tcn,
    train_tcn,
)

EVALUATION_SEED = 20261124  # the fixed synthetic evaluation set (never used in training)
Progress = Callable[[float, str], None]


@dataclass
class LabelledStamp:
    key: str  # the tracklet it belongs to (held-out split is per tracklet)
    pixels: np.ndarray  # raw (100, 100) float32 with NaN
    stamp_class: str


@dataclass
class LabelledTracklet:
    key: str
    pixels: np.ndarray  # raw (n, 100, 100) float32, time order
    real: bool
    meta: np.ndarray | None = None  # (n, 6): mjd, ra, dec, mag, x, y (classifier.features)


@dataclass
class Labels:
    stamps: list[LabelledStamp] = field(default_factory=list)
    tracklets: list[LabelledTracklet] = field(default_factory=list)
    real_classes: dict[str, bool] = field(default_factory=dict)  # every class name -> is real


@dataclass(frozen=True)
class RetrainConfig:
    """How a retraining run is made; small enough for a CPU within minutes by default."""

    seed: int = 0
    holdout_fraction: float = 0.25
    replay_per_class: int = 150  # synthetic stamps per base class, so nothing is forgotten
    labelled_min: int = 150  # each labelled class is repeated up to this many stamps
    icn_epochs: int = 4
    icn_lr: float = 5e-4
    icn_batch: int = 32
    tcn_real: int = 1200  # synthetic tracklets for the TCN (as many as the base model's)
    tcn_bogus: int = 1200
    # Unseen synthetic tracklets the threshold is chosen on: 1,500 real tracklets put the
    # 99.6% point between the 6th and 7th lowest score (400 put it at the 2nd, a noisy choice).
    tcn_val_real: int = 1500
    tcn_val_bogus: int = 300  # only for the validation AUC in the run's figures
    tcn_epochs: int = 40
    labelled_tracklet_weight: int = 3  # verdict tracklets are repeated this many times
    target_recall: float = 0.996
    eval_real: int = 300  # fixed synthetic evaluation set (glare in the bogus mix)
    eval_bogus: int = 300
    device: str = "auto"
    workers: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if not 0.5 <= self.target_recall < 1.0:
            raise ValueError(f"target_recall must be in [0.5, 1), got {self.target_recall}")


class RetrainError(ValueError):
    """Labels that cannot train a model (say, no labels at all)."""


def is_held_out(key: str, fraction: float) -> bool:
    """Stable split by tracklet key: the same tracklet is always on the same side."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return digest / 2**64 < fraction


def _split(items: list, fraction: float) -> tuple[list, list]:
    kept, held = [], []
    for item in items:
        (held if is_held_out(item.key, fraction) else kept).append(item)
    return kept, held


def holdout_figures(model: ScreeningModel, tracklets: list[LabelledTracklet]) -> dict[str, Any]:
    """Real recall and bogus rejection at the model's threshold on labelled tracklets."""
    if not tracklets:
        return {"tracklets": {"real": 0, "bogus": 0}}
    stamps = np.concatenate([t.pixels for t in tracklets]).astype(np.float32)
    real = np.array([t.real for t in tracklets])
    _, scores = model.score(stamps, [len(t.pixels) for t in tracklets], _meta_of(tracklets))
    out: dict[str, Any] = {
        "tracklets": {"real": int(real.sum()), "bogus": int((~real).sum())},
        **operating_point(scores, real, model.threshold),
    }
    if real.any() and (~real).any():
        out["auc"] = roc_auc(scores, real)
    return out


def _meta_of(tracklets: list[LabelledTracklet]) -> np.ndarray | None:
    """The tracklets' detection metadata, one (N, 6) array, or None where any lacks it."""
    if not tracklets or any(t.meta is None for t in tracklets):
        return None
    return np.concatenate([np.asarray(t.meta, dtype=np.float64) for t in tracklets])


def stamp_accuracy(model: ScreeningModel, stamps: list[LabelledStamp]) -> dict[str, Any]:
    """Share of labelled stamps whose top class is the label, overall and per class."""
    if not stamps:
        return {"stamps": 0}
    probs = model.stamp_probabilities(
        prepare(np.stack([s.pixels for s in stamps]).astype(np.float32), model.preprocessing))
    names = np.array(model.classes)[probs.argmax(1)]
    truth = np.array([s.stamp_class for s in stamps])
    per_class = {c: float((names[truth == c] == c).mean()) for c in sorted(set(truth))}
    return {"stamps": len(stamps), "accuracy": float((names == truth).mean()),
            "per_class": per_class}


def plain(value: Any) -> Any:
    """Numbers and containers as plain Python (a weights_only checkpoint holds nothing else);
    NaN (say, a real recall with no real tracklets) becomes None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON (and PostgreSQL's jsonb) have no NaN: "not measurable here"
    return value


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The parts of a synthetic evaluation a registry page shows (no per-point curves)."""
    keep = ("tracklets", "auc", "at_model_threshold", "at_paper_recall", "by_bogus_kind",
            "icn_confusion", "roc")
    return {k: report[k] for k in keep if k in report}


def synthetic_evaluation(models: dict[str, ScreeningModel], n_real: int, n_bogus: int, *,
                         workers: int | None = None, progress: bool = False) -> dict[str, Any]:
    """The models' figures on the fixed synthetic evaluation set (glare in the bogus mix), by
    name, with the set's parameters under "params". The models must share a preprocessing."""
    presets = {m.preprocessing for m in models.values()}
    if len(presets) != 1:
        raise ValueError("models with different preprocessing cannot share one evaluation set")
    evaluation = build_tracklet_set(EVALUATION_SEED, n_real, n_bogus, presets.pop(), glare=True,
                                    workers=workers, progress=progress)
    out: dict[str, Any] = {name: _summary(evaluate_tracklets(model, evaluation))
                           for name, model in models.items()}
    out["params"] = {"seed": EVALUATION_SEED, "real": n_real, "bogus": n_bogus, "glare": True}
    return out


def retrain(base_checkpoint: Path, labels: Labels, out_dir: Path,
            cfg: RetrainConfig | None = None, progress: Progress | None = None
            ) -> tuple[Path, dict[str, Any]]:
    """Train a candidate from `base_checkpoint` and the labels; return its checkpoint and payload.

    The payload's metrics hold both models' figures on the held-out labels and on the fixed
    synthetic evaluation set (`metrics["comparison"]`).
    """
    cfg = cfg or RetrainConfig()
    report = progress or (lambda fraction, step: None)
    device = resolve_device(cfg.device)
    started = time.time()
    if not labels.stamps and not labels.tracklets:
        raise RetrainError("there are no stamp labels or verdicts to train on")

    report(0.02, "loading the base model")
    base_payload = load_checkpoint(Path(base_checkpoint))
    base = model_from_checkpoint(base_payload)
    pre = base.preprocessing
    base_classes = tuple(base.classes)
    new_classes = tuple(dict.fromkeys(
        s.stamp_class for s in labels.stamps if s.stamp_class not in base_classes))
    classes = base_classes + new_classes
    unknown = [c for c in classes if c not in labels.real_classes and c in new_classes]
    if unknown:
        raise RetrainError(f"no real/bogus category for the new classes {unknown}")
    icn_cfg = IcnConfig(classes=classes)
    icn, _ = grow_icn(base.icn, IcnConfig(classes=base_classes), classes)

    stamps_train, stamps_held = _split(labels.stamps, cfg.holdout_fraction)
    tracklets_train, tracklets_held = _split(labels.tracklets, cfg.holdout_fraction)

    report(0.05, f"simulating {cfg.replay_per_class} replay stamps per base class")
    replay = build_stamp_set(cfg.seed, base_classes, cfg.replay_per_class, pre,
                             workers=cfg.workers, progress=False)
    images, targets = [replay.images], [replay.labels]
    for name in sorted({s.stamp_class for s in stamps_train}):
        mine = [s.pixels for s in stamps_train if s.stamp_class == name]
        prepared = prepare(np.stack(mine), pre, crop=False).astype(np.float16)
        repeats = max(1, min(20, math.ceil(cfg.labelled_min / len(mine))))
        images.append(np.repeat(prepared, repeats, axis=0))
        targets.append(np.full(len(mine) * repeats, classes.index(name), dtype=np.int64))
    train_set = StampSet(np.concatenate(images), np.concatenate(targets), classes)
    val_source = stamps_held or stamps_train
    if val_source:
        val_images = prepare(np.stack([s.pixels for s in val_source]), pre, crop=False)
        val_labels = np.array([classes.index(s.stamp_class) for s in val_source])
    else:  # no stamp labels: validate on part of the replay
        val_images, val_labels = replay.images[::10], replay.labels[::10]
    val_set = StampSet(val_images.astype(np.float16), val_labels, classes)

    report(0.15, f"training the ICN on {len(train_set.labels)} stamps "
                 f"({len(stamps_train)} labelled, new classes: {list(new_classes) or 'none'})")
    icn_training = IcnTraining("retrain", optimizer="adamw", lr=cfg.icn_lr,
                               batch_size=cfg.icn_batch, max_epochs=cfg.icn_epochs,
                               schedule="cosine", weight_decay=1e-4, patience=cfg.icn_epochs)
    icn, history = train_icn(train_set, val_set, icn_training, pre, device=device,
                             seed=cfg.seed, progress=False, model=icn)

    report(0.55, "simulating tracklets for the TCN")
    glare = "GLARE" in classes
    synthetic = build_tracklet_set(cfg.seed, cfg.tcn_real, cfg.tcn_bogus, pre, glare=glare,
                                   workers=cfg.workers, progress=False)
    synthetic_val = build_tracklet_set(cfg.seed, cfg.tcn_val_real, cfg.tcn_val_bogus, pre,
                                       glare=glare,
                                       first_index=TCN_VALIDATION_OFFSET, workers=cfg.workers,
                                       progress=False)
    report(0.7, f"training the TCN ({len(tracklets_train)} labelled tracklets)")
    runtime = Runtime.for_device(device)
    base_model = model_from_checkpoint(base_payload, runtime)  # afresh: base.icn was trained
    real_val = synthetic_val.real
    calibration = None
    if base.needs_metadata:
        # The set TCN grows inputs for the new classes (zero weights: it scores as before) and
        # is fine-tuned on synthetic tracklets plus the labelled ones, cues and all.
        tcn, tcn_cfg = grow_tcn(base.tcn, base.tcn_config, base_classes, classes)
        parts = [set_inputs_of(icn, synthetic, device)]
        y_parts = [synthetic.real.astype(np.float32)]
        usable = [t for t in tracklets_train if t.meta is not None]
        if usable:
            raw = np.concatenate([t.pixels for t in usable]).astype(np.float32)
            lengths = np.array([len(t.pixels) for t in usable])
            det, trk = batch_inputs(_meta_of(usable), raw, lengths)
            labelled = SetInputs(predict_icn(icn, prepare(raw, pre), device), det, trk, lengths)
            parts += [labelled] * cfg.labelled_tracklet_weight
            y_parts += [np.array([t.real for t in usable], np.float32)] * (
                cfg.labelled_tracklet_weight)
        tcn_training = TcnTraining(kind="set", epochs=cfg.tcn_epochs, lr=1e-3, batch_size=128,
                                   weight_decay=1e-4, calibrate=True)
        tcn = train_set_tcn(SetInputs.concat(parts), np.concatenate(y_parts), tcn_training,
                            tcn_cfg, device=device, seed=cfg.seed, progress=False,
                            model=tcn.to(device))
        val_logits = predict_set_tcn(tcn, set_inputs_of(icn, synthetic_val, device), device)
        calibration = fit_platt(val_logits, real_val.astype(np.float32))
        val_scores = calibrate_logits(val_logits, calibration)
    else:
        tcn_cfg = TcnConfig(n_classes=len(classes))
        x_parts = [tcn_inputs(predict_icn(icn, synthetic.images, device), synthetic.lengths)]
        y_parts = [synthetic.real.astype(np.float32)]
        if tracklets_train:
            raw = np.concatenate([t.pixels for t in tracklets_train]).astype(np.float32)
            x_lab = tcn_inputs(predict_icn(icn, prepare(raw, pre), device),
                               [len(t.pixels) for t in tracklets_train])
            y_lab = np.array([t.real for t in tracklets_train], dtype=np.float32)
            x_parts.append(np.repeat(x_lab, cfg.labelled_tracklet_weight, axis=0))
            y_parts.append(np.repeat(y_lab, cfg.labelled_tracklet_weight))
        tcn_training = TcnTraining(epochs=cfg.tcn_epochs)
        tcn = train_tcn(np.concatenate(x_parts), np.concatenate(y_parts), tcn_training,
                        len(classes), device=device, seed=cfg.seed, progress=False)
        x_val = tcn_inputs(predict_icn(icn, synthetic_val.images, device), synthetic_val.lengths)
        val_scores = predict_tcn(tcn, x_val, device)

    report(0.8, f"choosing the threshold for {cfg.target_recall:.1%} real recall "
                "(and no less than the base model's on the same tracklets)")
    # On tracklets neither network has seen: the labelled ones it trained on score higher than
    # new ones would, and the held-out ones are kept for the comparison with the base model.
    # Keeping real tracklets comes first: where the base model keeps more of these real
    # tracklets than the target asks, the candidate must keep as many.
    _, base_val_scores = score_set(base_model, synthetic_val)
    base_val_recall = float((base_val_scores[real_val] >= base_model.threshold).mean())
    recall_floor = max(cfg.target_recall, base_val_recall)
    threshold = threshold_for_recall(val_scores, real_val, recall_floor)
    validation = {"real": int(real_val.sum()), "bogus": int((~real_val).sum()),
                  "recall_floor": recall_floor, "base_recall": base_val_recall,
                  **operating_point(val_scores, real_val, threshold)}
    if (~real_val).any():
        validation["auc"] = roc_auc(val_scores, real_val)
        validation["reliability"] = reliability(val_scores, real_val)

    training = {
        "kind": "retrain",
        "base_version": base_payload.get("version") or Path(base_checkpoint).stem,
        "config": asdict(cfg),
        "new_classes": list(new_classes),
        "labels": {"stamps_train": len(stamps_train), "stamps_held_out": len(stamps_held),
                   "tracklets_train": len(tracklets_train),
                   "tracklets_held_out": len(tracklets_held)},
        "icn_history": history,
    }
    base_real = set(base_payload.get("real_classes", []))
    real_classes = [c for c in classes if labels.real_classes.get(c, c in base_real)]
    payload = checkpoint_payload(icn, icn_cfg, tcn, tcn_cfg, pre, threshold, {},
                                 plain(training), half=True, calibration=calibration)
    payload["real_classes"] = real_classes

    report(0.85, "evaluating candidate and base on held-out labels and the synthetic set")
    # Both from their checkpoint dicts (half-precision weights, as a worker would load them).
    candidate = model_from_checkpoint(payload, runtime)
    comparison = {
        "base_version": training["base_version"],
        "holdout": {"candidate": holdout_figures(candidate, tracklets_held),
                    "base": holdout_figures(base_model, tracklets_held)},
        "holdout_stamps": {"candidate": stamp_accuracy(candidate, stamps_held),
                           "base": stamp_accuracy(base_model, stamps_held)},
        "synthetic": synthetic_evaluation({"candidate": candidate, "base": base_model},
                                          cfg.eval_real, cfg.eval_bogus, workers=cfg.workers),
    }
    training["seconds"] = time.time() - started
    payload["metrics"] = plain({"validation": {"icn": history[-1] if history else {},
                                               "tcn": validation},
                                "comparison": comparison})
    payload["training"] = plain(training)
    final = save_checkpoint(payload, Path(out_dir))
    report(1.0, f"candidate {final.stem} written")
    return final, payload

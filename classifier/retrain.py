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

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from classifier.calibration import calibrate_logits, fit_platt
from classifier.checkpoint import (
    checkpoint_payload,
    file_hash,
    load_checkpoint,
    round_to_half,
    save_checkpoint,
)
from classifier.classes import is_real
from classifier.datasets import (
    StampSet,
    TrackletSet,
    build_stamp_set,
    cached_tracklet_set,
    tracklet_set_key,
)
from classifier.evaluate import score_set, tracklet_figures
from classifier.features import batch_inputs
from classifier.hardware import resolve_device
from classifier.inference import (
    Runtime,
    ScreeningModel,
    logit,
    model_from_checkpoint,
    seeing_of,
    tracklet_starts,
)
from classifier.metrics import operating_point, reliability, roc_auc, threshold_for_recall
from classifier.networks import (
    SHARE_STATISTICS,
    IcnConfig,
    TcnConfig,
    grow_icn,
    grow_tcn,
    tcn_inputs,
)
from classifier.novelty import NoveltyReference, class_indices, reference_from, reference_path
from classifier.preprocess import centre_crop, prepare
from classifier.simulate import SimConfig
from classifier.train import (
    BATCH_NORM_MODES,
    SEEING_DROPOUT,
    TCN_VALIDATION_OFFSET,
    IcnTraining,
    SetInputs,
    TcnTraining,
    predict_icn,
    predict_set_tcn,
    predict_tcn,
    set_inputs_of,
    train_icn,
    train_set_tcn,
    train_tcn,
    without_seeing,
)

logger = logging.getLogger(__name__)
EVALUATION_SEED = 20261124  # the fixed synthetic evaluation set (never used in training)
# progress(fraction, step, log=True): the run is `fraction` done, doing `step`; log=False for a
# tick within a stage (an epoch's batches) that moves the bar but is no line of the log.
Progress = Callable[..., None]
ICN_SPAN = (0.15, 0.55)  # the share of a run's progress the ICN's training takes
TCN_SPAN = (0.7, 0.8)
NOVELTY_STAMPS = 6000  # simulated stamps a candidate's novelty reference is fitted on
# The bright replay (RetrainConfig.replay_bright_per_class): real classes at SNR 50-1,000, flat
# in log SNR (the nominal draws put about 6% of comets and under 1% of asteroids above SNR
# 100), on a seed of its own.
REPLAY_BRIGHT = SimConfig(
    snr_range=(50.0, 1000.0), snr_slope=1.0, comet_snr_range=(50.0, 1000.0), comet_snr_slope=1.0
)
BRIGHT_SEED_OFFSET = 7919
TICKS_PER_EPOCH = 20  # progress ticks within an ICN epoch (a long one takes minutes on a CPU)


def _took(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _icn_reports(report: Callable[..., None], epochs: int, started: float):
    """(on_batch, on_epoch) for `train_icn`: the bar moves through ICN_SPAN within epochs, and
    each epoch is a line of the log (losses, validation accuracy, time)."""
    low, high = ICN_SPAN

    def at(done: float) -> float:
        return low + (high - low) * min(done / max(epochs, 1), 1.0)

    def on_batch(epoch: int, done: int, total: int) -> None:
        every = max(1, total // TICKS_PER_EPOCH)
        if done < total and done % every == 0:
            report(
                at(epoch + done / total),
                f"training the ICN: epoch {epoch + 1} of {epochs}, batch {done} of {total}",
                log=False,
            )

    def on_epoch(row: dict[str, float]) -> None:
        epoch = int(row["epoch"])
        report(
            at(epoch + 1),
            f"ICN epoch {epoch + 1} of {epochs}: train loss {row['train_loss']:.4f}, "
            f"val loss {row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.1%}, "
            f"{_took(row['seconds'])} ({_took(time.time() - started)} since the start)",
        )

    return on_batch, on_epoch


def _tcn_report(report: Callable[..., None], started: float):
    """on_epoch for the TCN's training: the bar moves through TCN_SPAN, a log line an epoch."""
    low, high = TCN_SPAN

    def on_epoch(row: dict[str, float]) -> None:
        done = (row["epoch"] + 1) / max(row["epochs"], 1)
        report(
            low + (high - low) * 0.9 * done,
            f"TCN epoch {row['epoch'] + 1} of {row['epochs']}: loss {row['loss']:.4f}, "
            f"training accuracy {row['accuracy']:.1%}, {_took(row['seconds'])} "
            f"({_took(time.time() - started)} since the start)",
        )

    return on_epoch


@dataclass
class LabelledStamp:
    key: str  # the tracklet it belongs to (held-out split is per tracklet)
    pixels: np.ndarray  # raw (100, 100) float32 with NaN
    stamp_class: str
    fwhm: float = float("nan")  # its exposure's seeing (px), NaN where not sent


@dataclass
class LabelledTracklet:
    key: str
    pixels: np.ndarray  # raw (n, 100, 100) float32, time order
    real: bool
    # (n, 6 or 7): mjd, ra, dec, mag, x, y and the exposure's seeing (classifier.features)
    meta: np.ndarray | None = None
    weight: float = 1.0  # in the TCN's loss (the reviewers' gold accuracy, when weighted)


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
    # and this many more of each real base class drawn bright (REPLAY_BRIGHT): the replay's
    # power laws give few, and a new class of bright, diffuse light (planet glare) ate a bright
    # comet the base read COMET 0.96 (docs/retraining.md)
    replay_bright_per_class: int = 50
    labelled_min: int = 150  # each labelled class is repeated up to this many stamps
    icn_epochs: int = 6
    icn_lr: float = 5e-4
    icn_batch: int = 32
    icn_augmentation: str = "flips"  # the baseline's; "d4" adds rotations
    tcn_real: int = 1200  # synthetic tracklets for the TCN (as many as the base model's)
    tcn_bogus: int = 1200
    # Unseen synthetic tracklets the threshold is chosen on: 1,500 real tracklets put the
    # 99.6% point between the 6th and 7th lowest score (400 put it at the 2nd, a noisy choice).
    tcn_val_real: int = 1500
    tcn_val_bogus: int = 300  # only for the validation AUC in the run's figures
    # 120 epochs, its share at 0.03 (tcn_lr): at 40 and 0.01 tracklets whose every stamp the
    # new ICN read GLARE 0.99 still scored 0.01-0.3 (the glare loop, docs/retraining.md)
    tcn_epochs: int = 120
    distill: bool = True  # the ICN keeps the base's answers on old stamps (see retrain)
    distill_real_stamps: int = 2000  # stamps of real-verdict tracklets distilled so
    tcn_mode: str = "new-inputs"  # or "full": which TCN weights a set TCN's retraining moves
    tcn_lr: float | None = None  # None: 3e-2 training new inputs only, 1e-3 fine-tuning all
    labelled_tracklet_weight: int = 3  # verdict tracklets are repeated this many times
    # How a set TCN takes a new class: "share", the tracklet's share of stamps read as it,
    # beside its pooled detections (the detections' network never sees it, so one misread
    # stamp is one stamp's share); "detection", each detection's probability of it through the
    # detections' network, as the base's classes (max-pooled: one stamp can decide).
    new_class_input: str = "share"
    # How the share is taken (classifier.networks.SHARE_STATISTICS): "second", the second
    # highest probability of the class among the tracklet's stamps: one stamp misread as it
    # never counts, two that agree count fully (the glare loop: 0 real lost on both seeds'
    # nights where "mean" lost one; docs/retraining.md).
    share_statistic: str = "second"
    # Which ICN weights the fine-tuning moves: "" every weight (the default); "layer1" ...
    # "layer4" that ResNet block, the blocks after it and the output layer, the stem and earlier
    # blocks kept with their BatchNorm statistics (ICN_BLOCKS). The later the block, the less
    # the old classes drift (offline from layer3: real stamps read as the new class 0.06%
    # against 1.22%, real stamps whose old class moved 7.8% against 11.4%) and the less sharply
    # the new class is learned. In the glare loop (tcn_lr 0.03) neither layer2 nor layer3 met
    # every target in every run, no more than every weight does (docs/retraining.md).
    icn_learns_from: str = ""
    # What the ICN's BatchNorm layers do through the fine-tuning (IcnTraining.batch_norm):
    # "kept" (the default) normalises by the base's statistics and keeps them; "learn"
    # normalises each batch by its own statistics and moves the running ones with the new
    # class's bright stamps, which moved faint real stamps from AST to NOISE: a faint real
    # tracklet of the threshold's validation set fell from 0.53 to 0.005, the threshold
    # followed it to 0.0070 and glare tracklets at 0.01-0.06 passed (docs/retraining.md).
    icn_batch_norm: str = "kept"
    target_recall: float = 0.996
    # The fixed synthetic evaluation set the promotion compares candidate and base on: 1,500
    # real tracklets, so that one real tracklet lost in a thousand shows; bogus ones with glare
    # in the mix, and tracklets of a field near a planet (mostly its glare).
    eval_real: int = 1500
    eval_bogus: int = 1500
    eval_planet: int = 300
    cache_dir: str | None = None  # where the synthetic sets are kept once simulated
    device: str = "auto"
    workers: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.tcn_mode not in ("new-inputs", "full"):
            raise ValueError(f"tcn_mode must be 'new-inputs' or 'full', got {self.tcn_mode!r}")
        if not 0.5 <= self.target_recall < 1.0:
            raise ValueError(f"target_recall must be in [0.5, 1), got {self.target_recall}")
        if self.new_class_input not in ("share", "detection"):
            raise ValueError(
                f"new_class_input must be 'share' or 'detection', got {self.new_class_input!r}"
            )
        if self.share_statistic not in SHARE_STATISTICS:
            raise ValueError(
                f"share_statistic must be one of {SHARE_STATISTICS}, got {self.share_statistic!r}"
            )
        if self.icn_batch_norm not in BATCH_NORM_MODES:
            raise ValueError(
                f"icn_batch_norm must be one of {BATCH_NORM_MODES}, got {self.icn_batch_norm!r}"
            )
        if self.icn_learns_from not in ("", *ICN_BLOCKS):
            raise ValueError(
                f"icn_learns_from must be '' (every weight) or one of {ICN_BLOCKS}, got "
                f"{self.icn_learns_from!r}"
            )


ICN_BLOCKS = ("layer1", "layer2", "layer3", "layer4")  # the ResNet-18's blocks, input first


def icn_freeze_before(icn: Any, block: str) -> None:
    """Keep the ICN's stem and its blocks before `block` as they are through a fine-tuning:
    their weights out of the optimizer's reach, their BatchNorm running statistics unmoved
    (momentum 0). `block` "" leaves every weight free."""
    import torch

    if not block:
        return
    frozen = ICN_BLOCKS[: ICN_BLOCKS.index(block)]
    for name, module in icn.named_modules():
        if name in ("conv1", "bn1") or name.split(".")[0] in frozen:
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad_(False)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = 0.0


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


Outputs = dict[str, tuple[np.ndarray, np.ndarray]]  # model name: (stamp probs, scores)


def held_out_outputs(
    models: dict[str, ScreeningModel], tracklets: list[LabelledTracklet]
) -> Outputs:
    """Each model's stamp probabilities and scores on the held-out tracklets, scored once for
    every figure of the comparison ({} where there are none)."""
    if not tracklets:
        return {}
    stamps = np.concatenate([t.pixels for t in tracklets]).astype(np.float32)
    lengths = [len(t.pixels) for t in tracklets]
    meta = _meta_of(tracklets)
    return {name: model.score(stamps, lengths, meta) for name, model in models.items()}


def holdout_figures(
    model: ScreeningModel, tracklets: list[LabelledTracklet], scores: np.ndarray | None
) -> dict[str, Any]:
    """Real recall and bogus rejection at the model's threshold on labelled tracklets, from the
    model's scores of them (`held_out_outputs`)."""
    if not tracklets:
        return {"tracklets": {"real": 0, "bogus": 0}}
    real = np.array([t.real for t in tracklets])
    out: dict[str, Any] = {
        "tracklets": {"real": int(real.sum()), "bogus": int((~real).sum())},
        **operating_point(scores, real, model.threshold),
    }
    if real.any() and (~real).any():
        out["auc"] = roc_auc(scores, real)
    return out


def _seeing(items: list[LabelledStamp] | list[LabelledTracklet]) -> np.ndarray:
    """Each stamp's exposure seeing (px; NaN where not sent), for a preprocessing that reads it:
    of labelled stamps, or of every detection of labelled tracklets."""
    out = []
    for item in items:
        if isinstance(item, LabelledStamp):
            out.append(item.fwhm)
            continue
        seeing = seeing_of(item.meta, len(item.pixels))
        out += list(seeing) if seeing is not None else [float("nan")] * len(item.pixels)
    return np.asarray(out, dtype=np.float64)


def _meta_of(tracklets: list[LabelledTracklet]) -> np.ndarray | None:
    """The tracklets' detection metadata, one (N, 6) array, or None where any lacks it."""
    if not tracklets or any(t.meta is None for t in tracklets):
        return None
    return np.concatenate([np.asarray(t.meta, dtype=np.float64) for t in tracklets])


def stamp_accuracy(model: ScreeningModel, stamps: list[LabelledStamp]) -> dict[str, Any]:
    """Share of labelled stamps whose top class is the label, overall and per class."""
    if not stamps:
        return {"stamps": 0}
    model = model.exact()
    probs = model.stamp_probabilities(
        prepare(
            np.stack([s.pixels for s in stamps]).astype(np.float32),
            model.preprocessing,
            fwhm=_seeing(stamps),
        )
    )
    names = np.array(model.classes)[probs.argmax(1)]
    truth = np.array([s.stamp_class for s in stamps])
    per_class = {c: float((names[truth == c] == c).mean()) for c in sorted(set(truth))}
    return {
        "stamps": len(stamps),
        "accuracy": float((names == truth).mean()),
        "per_class": per_class,
        "per_class_stamps": {c: int((truth == c).sum()) for c in sorted(set(truth))},
    }


def new_class_passing(
    models: dict[str, ScreeningModel],
    tracklets: list[LabelledTracklet],
    stamps: list[LabelledStamp],
    new_classes: tuple[str, ...],
    outputs: Outputs,
) -> dict[str, Any]:
    """Per new class: the held-out bogus tracklets with a stamp labelled with it, and the share
    of them each model passes (say, glare tracklets the base let through), from the models'
    scores of the held-out tracklets (`held_out_outputs`)."""
    out: dict[str, Any] = {}
    for cls in new_classes:
        keys = {s.key for s in stamps if s.stamp_class == cls}
        chosen = np.array([t.key in keys and not t.real for t in tracklets], dtype=bool)
        if not chosen.any():
            continue
        row: dict[str, Any] = {"tracklets": int(chosen.sum())}
        for name, model in models.items():
            row[name] = float((outputs[name][1][chosen] >= model.threshold).mean())
        out[cls] = row
    return out


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
    keep = (
        "tracklets",
        "auc",
        "at_model_threshold",
        "at_paper_recall",
        "by_bogus_kind",
        "passing_by_class",
        "icn_confusion",
        "roc",
    )
    return {k: report[k] for k in keep if k in report}


def synthetic_evaluation(
    models: dict[str, ScreeningModel],
    n_real: int,
    n_bogus: int,
    *,
    planet_bogus: int = 0,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    scored: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The models' figures on the fixed synthetic evaluation set (glare in the bogus mix, and
    `planet_bogus` tracklets of a field near a planet), by name, with the set's parameters
    under "params". The models must share a preprocessing. With a "candidate" and a "base",
    "paired_real" counts the real tracklets one keeps and the other loses: on the same
    tracklets, a loss of one real tracklet is seen as one."""
    presets = {m.preprocessing for m in models.values()}
    if len(presets) != 1:
        raise ValueError("models with different preprocessing cannot share one evaluation set")
    pre = presets.pop()
    evaluation = cached_tracklet_set(
        cache_dir,
        EVALUATION_SEED,
        n_real,
        n_bogus,
        pre,
        glare=True,
        planet_bogus=planet_bogus,
        workers=workers,
        progress=progress,
    )
    set_key = tracklet_set_key(
        EVALUATION_SEED, n_real, n_bogus, pre, glare=True, planet_bogus=planet_bogus
    )
    out: dict[str, Any] = {}
    kept, outputs = {}, {}
    for name, model in models.items():
        probs, scores = _scores_kept(model, evaluation, cache_dir, set_key)
        if scored is not None:  # a minute or more a model on a CPU: the caller's bar moves
            scored(name)
        outputs[name] = (probs, scores)
        out[name] = _summary(
            tracklet_figures(scores, probs, evaluation, model.classes, model.threshold)
        )
        kept[name] = scores[evaluation.real] >= model.threshold
    if "candidate" in kept and "base" in kept:
        mine, theirs = kept["candidate"], kept["base"]
        real = np.flatnonzero(evaluation.real)
        lost = real[theirs & ~mine]
        out["paired_real"] = {
            "real": int(mine.size),
            "lost": int((theirs & ~mine).sum()),
            "gained": int((mine & ~theirs).sum()),
            "candidate_kept": int(mine.sum()),
            "base_kept": int(theirs.sum()),
            "lost_tracklets": [
                {
                    "tracklet": f"synthetic real #{int(i)}",
                    "snr": _finite(evaluation.snr[i]) if evaluation.snr is not None else None,
                    "rate_deg_day": (
                        _finite(evaluation.rate[i]) if evaluation.rate is not None else None
                    ),
                    **lost_why(models, outputs, i, evaluation.starts, evaluation.lengths),
                }
                for i in lost[:LOST_SHOWN]
            ],
        }
    out["params"] = {
        "seed": EVALUATION_SEED,
        "real": n_real,
        "bogus": n_bogus,
        "glare": True,
        "planet_bogus": planet_bogus,
    }
    return out


LOST_SHOWN = 20  # real tracklets a candidate loses, listed with why, per data set


@functools.cache
def _scoring_code() -> str:
    """A hash of the code that turns a set into scores, beside the set's own (simulator_code)."""
    code = hashlib.sha256()
    for name in ("inference.py", "networks.py", "evaluate.py", "calibration.py", "motion.py"):
        code.update((Path(__file__).resolve().parent / name).read_bytes())
    return code.hexdigest()[:12]


def _scores_kept(
    model: ScreeningModel, tset: TrackletSet, cache_dir: Path | None, set_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """`score_set`, kept under `cache_dir` by model version, device and set: the base model of
    every retraining run (and a registered candidate's own evaluation) is scored on the fixed
    evaluation set once, not again each run (a minute a model on 2 cores). A file that does not
    fit the set is scored again."""
    if cache_dir is None or not model.version:
        return score_set(model, tset)
    device = model.device.replace(":", "")
    name = f"scores-{model.version[:32]}-{device}-{set_key}-{_scoring_code()}.npz"
    path = Path(cache_dir) / name
    if path.exists():
        try:
            with np.load(path) as kept:
                probs, scores = kept["probabilities"], kept["scores"]
            if probs.shape == (len(tset.images), len(model.classes)) and scores.shape == (
                len(tset.lengths),
            ):
                return probs, scores
        except Exception:  # noqa: BLE001 - a torn or foreign file: scored again below
            pass
        logger.warning("kept scores %s do not fit the set; scoring again", path.name)
    probs, scores = score_set(model, tset)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, probabilities=probs, scores=scores)
    partial.replace(path)
    return probs, scores


def _finite(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def lost_why(
    models: dict[str, ScreeningModel],
    outputs: dict[str, tuple[np.ndarray, np.ndarray]],
    index: int,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> dict[str, Any]:
    """Why the candidate loses a real tracklet the base keeps: both scores, and each stamp
    whose top class the candidate reads otherwise ("COMET 0.72 -> GLARE 0.81")."""
    cand, base = models["candidate"], models["base"]
    (c_probs, c_scores), (b_probs, b_scores) = outputs["candidate"], outputs["base"]
    start, n = int(starts[index]), int(lengths[index])
    changed = []
    for k in range(n):
        pc, pb = c_probs[start + k], b_probs[start + k]
        now, was = cand.classes[int(pc.argmax())], base.classes[int(pb.argmax())]
        if now != was:
            changed.append(f"stamp {k + 1}: {was} {pb.max():.2f} -> {now} {pc.max():.2f}")
    return {
        "base_score": round(float(b_scores[index]), 4),
        "candidate_score": round(float(c_scores[index]), 4),
        "stamps_changed": changed,
        "why": "; ".join(changed) if changed else "same stamp classes; the TCN scores it lower",
    }


def holdout_lost(
    models: dict[str, ScreeningModel], tracklets: list[LabelledTracklet], outputs: Outputs
) -> list[dict[str, Any]]:
    """The held-out real tracklets (reviewers' verdicts) the candidate loses and the base
    keeps, with why (`lost_why`); key is the tracklet's id in the product."""
    if not outputs:
        return []
    real = np.array([t.real for t in tracklets], dtype=bool)
    lengths = np.array([len(t.pixels) for t in tracklets])
    starts = tracklet_starts(lengths)
    cand, base = models["candidate"], models["base"]
    lost = np.flatnonzero(
        real & (outputs["base"][1] >= base.threshold) & (outputs["candidate"][1] < cand.threshold)
    )
    return [
        {"tracklet": tracklets[i].key, **lost_why(models, outputs, i, starts, lengths)}
        for i in lost[:LOST_SHOWN]
    ]


def tcn_sets(cfg: RetrainConfig, pre, base_classes: tuple[str, ...], progress: bool = False):
    """The simulated tracklets a retraining run trains its TCN on and chooses its threshold on
    (the same every run, so kept in `cfg.cache_dir` once made).

    The simulator stands for the world the base model knew: a class new to it is learned from
    the reviewers' labels alone, so the tracklets hold glare only if the base knew GLARE.
    """
    glare = "GLARE" in base_classes
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    train = cached_tracklet_set(
        cache,
        cfg.seed,
        cfg.tcn_real,
        cfg.tcn_bogus,
        pre,
        glare=glare,
        workers=cfg.workers,
        progress=progress,
    )
    val = cached_tracklet_set(
        cache,
        cfg.seed,
        cfg.tcn_val_real,
        cfg.tcn_val_bogus,
        pre,
        glare=glare,
        first_index=TCN_VALIDATION_OFFSET,
        workers=cfg.workers,
        progress=progress,
    )
    return train, val


def _icn_sets(
    base_model: ScreeningModel,
    classes: tuple[str, ...],
    stamps_train: list[LabelledStamp],
    stamps_held: list[LabelledStamp],
    tracklets_train: list[LabelledTracklet],
    cfg: RetrainConfig,
    report: Progress,
) -> tuple[StampSet, StampSet, np.ndarray | None]:
    """The ICN's training stamps, its validation stamps, and the class distributions it learns
    on the training stamps (None: the labels).

    It trains on the labelled stamps (each class repeated up to `cfg.labelled_min`) next to a
    replay of synthetic stamps of the base classes; it validates on the held-out labelled stamps
    (or the training ones, or part of the replay where there are none).
    """
    pre = base_model.preprocessing
    base_classes = tuple(base_model.classes)
    report(0.05, f"simulating {cfg.replay_per_class} replay stamps per base class")
    replay = build_stamp_set(
        cfg.seed, base_classes, cfg.replay_per_class, pre, workers=cfg.workers, progress=False
    )
    labelled_images, labelled_targets = [], []
    for name in sorted({s.stamp_class for s in stamps_train}):
        chosen = [s for s in stamps_train if s.stamp_class == name]
        mine = [s.pixels for s in chosen]
        prepared = prepare(np.stack(mine), pre, crop=False, fwhm=_seeing(chosen))
        prepared = prepared.astype(np.float16)
        repeats = max(1, min(20, math.ceil(cfg.labelled_min / len(mine))))
        labelled_images.append(np.repeat(prepared, repeats, axis=0))
        labelled_targets.append(np.full(len(mine) * repeats, classes.index(name), np.int64))
    old_images = [replay.images]
    replay_labels = [replay.labels]
    bright = tuple(c for c in base_classes if is_real(c))
    if cfg.replay_bright_per_class and bright:
        report(
            0.06, f"simulating {cfg.replay_bright_per_class} bright replay stamps per real class"
        )
        extra = build_stamp_set(
            cfg.seed + BRIGHT_SEED_OFFSET,
            bright,
            cfg.replay_bright_per_class,
            pre,
            cfg=REPLAY_BRIGHT,
            workers=cfg.workers,
            progress=False,
        )
        old_images.append(extra.images)
        # the bright set's labels index `bright`; the replay's, every base class
        replay_labels.append(np.array([base_classes.index(c) for c in bright])[extra.labels])
    soft = None
    if cfg.distill:
        # Learning without forgetting: on the replay, and on stamps of tracklets reviewers
        # judged real (the survey's own data), the ICN learns the base model's answers (none
        # for a new class) rather than hard labels, so what the TCN sees of old stamps, and
        # with it a real tracklet's score, changes as little as the new classes allow.
        kept = [t for t in tracklets_train if t.real]
        if kept and cfg.distill_real_stamps:
            n = cfg.distill_real_stamps
            real_px = np.concatenate([t.pixels for t in kept])[:n].astype(np.float32)
            real_seeing = _seeing(kept)[:n]
            old_images.append(
                prepare(real_px, pre, crop=False, fwhm=real_seeing).astype(np.float16)
            )
    old = np.concatenate(old_images)
    hard = np.concatenate(labelled_targets) if labelled_targets else np.zeros(0, np.int64)
    if cfg.distill:
        teacher = base_model.stamp_probabilities(centre_crop(old, pre.crop))
        soft = np.zeros((len(old) + len(hard), len(classes)), np.float32)
        soft[: len(old), : len(base_classes)] = teacher
        soft[np.arange(len(old), len(soft)), hard] = 1.0
        old_labels = teacher.argmax(1)  # for the record: the loss uses `soft`
    else:
        old_labels = np.concatenate(replay_labels)
    train_set = StampSet(
        np.concatenate([old, *labelled_images]), np.concatenate([old_labels, hard]), classes
    )
    val_source = stamps_held or stamps_train
    if val_source:
        val_images = prepare(
            np.stack([s.pixels for s in val_source]), pre, crop=False, fwhm=_seeing(val_source)
        )
        val_labels = np.array([classes.index(s.stamp_class) for s in val_source])
    else:  # no stamp labels: validate on part of the replay
        val_images, val_labels = replay.images[::10], replay.labels[::10]
    val_set = StampSet(val_images.astype(np.float16), val_labels, classes)
    return train_set, val_set, soft


def _icn_stage(
    base: ScreeningModel,
    base_model: ScreeningModel,
    new_classes: tuple[str, ...],
    stamps_train: list[LabelledStamp],
    stamps_held: list[LabelledStamp],
    tracklets_train: list[LabelledTracklet],
    cfg: RetrainConfig,
    *,
    device: str,
    report: Progress,
    started: float,
) -> tuple[Any, list[dict[str, float]]]:
    """Grow the base ICN (`base.icn`, in place) by the new classes and fine-tune it; returns
    the ICN, rounded to fp16 as the candidate keeps it, and its training history.

    `base_model` is the base as it was, the teacher of the distillation (`_icn_sets`).
    """
    base_classes = tuple(base.classes)
    classes = base_classes + new_classes
    icn, _ = grow_icn(base.icn, IcnConfig(classes=base_classes), classes)
    icn_freeze_before(icn, cfg.icn_learns_from)
    train_set, val_set, soft = _icn_sets(
        base_model, classes, stamps_train, stamps_held, tracklets_train, cfg, report
    )
    report(
        ICN_SPAN[0],
        f"training the ICN on {len(train_set.labels)} stamps "
        f"({len(stamps_train)} labelled, new classes: {list(new_classes) or 'none'})",
    )
    # flips only, as the baseline was trained: bands along rows and bleed trails along columns
    # are what tells glare from a burn; bf16 where the CPU has it
    icn_training = IcnTraining(
        "retrain",
        optimizer="adamw",
        lr=cfg.icn_lr,
        batch_size=cfg.icn_batch,
        max_epochs=cfg.icn_epochs,
        schedule="cosine",
        weight_decay=1e-4,
        patience=cfg.icn_epochs,
        augmentation=cfg.icn_augmentation,
        precision="auto",
        batch_norm=cfg.icn_batch_norm,
    )
    on_batch, on_epoch = _icn_reports(report, cfg.icn_epochs, started)
    icn, history = train_icn(
        train_set,
        val_set,
        icn_training,
        base.preprocessing,
        device=device,
        seed=cfg.seed,
        progress=False,
        model=icn,
        targets=soft,
        on_batch=on_batch,
        on_epoch=on_epoch,
    )
    round_to_half(icn)  # the candidate is kept in fp16: its threshold is chosen on what it gives
    return icn, history


@dataclass
class _TcnStage:
    """The candidate's TCN: the network, its config, its (calibrated) scores of the validation
    tracklets, its calibration, and whether only the new classes' input weights were trained
    (so that tracklets without them score as under the base)."""

    model: Any
    config: TcnConfig
    val_scores: np.ndarray
    calibration: dict[str, Any] | None = None
    new_inputs_only: bool = False


def _tcn_targets(
    synthetic: TrackletSet,
    labelled: list[LabelledTracklet],
    repeat: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(verdicts, loss weights) of the synthetic tracklets, then of the labelled ones as
    `repeat` repeats them (in the order their inputs are repeated)."""
    y = [synthetic.real.astype(np.float32)]
    w = [np.ones(len(synthetic.real), np.float32)]
    if labelled:
        y.append(repeat(np.array([t.real for t in labelled], np.float32)))
        w.append(repeat(np.array([t.weight for t in labelled], np.float32)))
    return np.concatenate(y), np.concatenate(w)


def _set_tcn_stage(
    base: ScreeningModel,
    icn,
    classes: tuple[str, ...],
    new_classes: tuple[str, ...],
    synthetic: TrackletSet,
    synthetic_val: TrackletSet,
    tracklets_train: list[LabelledTracklet],
    cfg: RetrainConfig,
    *,
    base_calibration: dict[str, Any] | None,
    device: str,
    on_epoch,
) -> _TcnStage:
    """The set TCN grows inputs for the new classes (zero weights: it scores as before) and is
    fine-tuned on synthetic tracklets plus the labelled ones, cues and all (a labelled tracklet
    without metadata is left out); its logit is calibrated anew unless it keeps the base's.

    A new class enters as the tracklet's share of it (`RetrainConfig.new_class_input`), taken
    by `RetrainConfig.share_statistic`: by default the second highest probability of it, so
    one stamp of a real mover misread as the new class changes nothing; a real tracklet with
    two or more such stamps (a bright comet read as glare) can still be lost."""
    pre = base.preprocessing
    tcn, tcn_cfg = grow_tcn(
        base.tcn,
        base.tcn_config,
        tuple(base.classes),
        classes,
        shares=cfg.new_class_input == "share",
        share_statistic=cfg.share_statistic,
    )
    if tcn_cfg.cues >= 3:  # as the base learned it: with and without the exposure's seeing
        synthetic = replace(synthetic, det_raw=without_seeing(synthetic, SEEING_DROPOUT, cfg.seed))
    parts = [set_inputs_of(icn, synthetic, device, tcn_cfg.cues)]
    usable = [t for t in tracklets_train if t.meta is not None]
    k = cfg.labelled_tracklet_weight
    if usable:
        raw = np.concatenate([t.pixels for t in usable]).astype(np.float32)
        lengths = np.array([len(t.pixels) for t in usable])
        det, trk = batch_inputs(_meta_of(usable), raw, lengths, tcn_cfg.cues)
        images = prepare(raw, pre, fwhm=_seeing(usable))
        labelled = SetInputs(predict_icn(icn, images, device), det, trk, lengths)
        parts += [labelled] * k  # the labelled tracklets k times over, as a block
    y, weights = _tcn_targets(synthetic, usable, lambda a: np.tile(a, k))
    lr = cfg.tcn_lr or (3e-2 if cfg.tcn_mode == "new-inputs" else 1e-3)
    tcn_training = TcnTraining(
        kind="set",
        epochs=cfg.tcn_epochs,
        lr=lr,
        batch_size=128,
        weight_decay=1e-4,
        calibrate=True,
    )
    # "new-inputs": only the weights from the new classes' probabilities learn, so the TCN
    # scores tracklets without them as the base did (real recall kept); "full" fine-tunes
    # every weight.
    columns = share_columns = None
    if cfg.tcn_mode == "new-inputs" and new_classes:
        if tcn_cfg.share_classes:  # the new classes are the last shares of the tracklet network
            width = tcn.rho[0].weight.shape[1]
            share_columns = list(range(width - len(new_classes), width))
        else:
            columns = [classes.index(c) for c in new_classes]
    tcn = train_set_tcn(
        SetInputs.concat(parts),
        y,
        tcn_training,
        tcn_cfg,
        device=device,
        seed=cfg.seed,
        progress=False,
        weights=weights,
        model=tcn.to(device),
        input_columns=columns,
        on_epoch=on_epoch,
        share_columns=share_columns,
    )
    round_to_half(tcn)
    val_logits = predict_set_tcn(
        tcn, set_inputs_of(icn, synthetic_val, device, tcn_cfg.cues), device
    )
    new_inputs_only = columns is not None or share_columns is not None
    if new_inputs_only and base_calibration:
        # Tracklets without a new class score as before: so does their calibration.
        calibration = dict(base_calibration)
    else:
        real_val = synthetic_val.real.astype(np.float32)
        calibration = fit_platt(val_logits, real_val, balanced=True)
    return _TcnStage(
        tcn, tcn_cfg, calibrate_logits(val_logits, calibration), calibration, new_inputs_only
    )


def _mlp4_tcn_stage(
    base: ScreeningModel,
    icn,
    classes: tuple[str, ...],
    synthetic: TrackletSet,
    synthetic_val: TrackletSet,
    tracklets_train: list[LabelledTracklet],
    cfg: RetrainConfig,
    *,
    device: str,
    on_epoch,
) -> _TcnStage:
    """The paper's TCN (on 4 detections' ICN scores) is trained anew for the grown classes on
    synthetic tracklets plus the labelled ones; its score is the plain sigmoid."""
    x_parts = [tcn_inputs(predict_icn(icn, synthetic.images, device), synthetic.lengths)]
    k = cfg.labelled_tracklet_weight
    if tracklets_train:
        raw = np.concatenate([t.pixels for t in tracklets_train]).astype(np.float32)
        x_lab = tcn_inputs(
            predict_icn(
                icn, prepare(raw, base.preprocessing, fwhm=_seeing(tracklets_train)), device
            ),
            [len(t.pixels) for t in tracklets_train],
        )
        x_parts.append(np.repeat(x_lab, k, axis=0))  # each labelled tracklet k times in a row
    y, weights = _tcn_targets(synthetic, tracklets_train, lambda a: np.repeat(a, k, axis=0))
    tcn = train_tcn(
        np.concatenate(x_parts),
        y,
        TcnTraining(epochs=cfg.tcn_epochs),
        len(classes),
        device=device,
        seed=cfg.seed,
        progress=False,
        weights=weights,
        on_epoch=on_epoch,
    )
    x_val = tcn_inputs(predict_icn(icn, synthetic_val.images, device), synthetic_val.lengths)
    return _TcnStage(tcn, TcnConfig(n_classes=len(classes)), predict_tcn(tcn, x_val, device))


# A retrained model moves every tracklet's score a little (the ICN is fine-tuned, the TCN
# retrained): a real tracklet the base kept just above its threshold can fall below it on a night
# the candidate never saw. The candidate's threshold is lowered by this quantile of the score
# drops of the real tracklets the base keeps (logits, on unseen validation tracklets), at most
# by DRIFT_MAX_LOGIT, and by no more than costs DRIFT_MAX_BOGUS of the bogus tracklets rejected.
# The cap holds for a whole lineage: a model retrained from a retrained one is never lowered
# more than DRIFT_MAX_LOGIT below the threshold of the first model it descends from (its
# "drift anchor", kept in each candidate's training record), so retraining does not ratchet it.
DRIFT_QUANTILE = 0.99
DRIFT_MAX_LOGIT = 1.0
DRIFT_MAX_BOGUS = 0.01


def _logit(p: np.ndarray | float) -> np.ndarray:
    return logit(p, eps=1e-7)


def drift_anchor(base: ScreeningModel) -> float:
    """The threshold of the first model of `base`'s lineage (its own where it was not made by
    retraining with a drift margin)."""
    return float((base.training or {}).get("drift_anchor", base.threshold))


def drift_margin(
    base_scores: np.ndarray,
    scores: np.ndarray,
    real: np.ndarray,
    base_threshold: float,
    threshold: float,
    anchor: float | None = None,
) -> tuple[float, dict[str, float]]:
    """The candidate's threshold lowered by the drift of its scores from the base's on the real
    tracklets the base keeps, and what was measured: (threshold, figures).

    The margin is the DRIFT_QUANTILE of the logit drops (base less candidate, 0 where the score
    rose) so that a real tracklet the base keeps near its threshold stays kept; it is capped at
    DRIFT_MAX_LOGIT (below `anchor`, the lineage's first threshold, where given) and halved
    until lowering the threshold costs no more than DRIFT_MAX_BOGUS of the bogus tracklets
    rejected (keeping real tracklets comes first, within a bound).
    """
    from scipy.special import expit

    real = np.asarray(real, dtype=bool)
    kept = real & (np.asarray(base_scores) >= base_threshold)
    figures = {"quantile": DRIFT_QUANTILE, "logit": 0.0, "threshold_before": float(threshold)}
    if not kept.any():
        return threshold, figures
    at = float(_logit(threshold))
    drops = np.maximum(_logit(base_scores[kept]) - _logit(scores[kept]), 0.0)
    wanted = min(float(np.quantile(drops, DRIFT_QUANTILE)), DRIFT_MAX_LOGIT)
    if anchor is not None:
        wanted = max(0.0, min(wanted, at - float(_logit(anchor)) + DRIFT_MAX_LOGIT))
        figures["anchor"] = float(anchor)
    bogus = scores[~real]

    def rejected(t: float) -> float:
        return float((bogus < t).mean()) if len(bogus) else 0.0

    margin = wanted
    while margin > 1e-3 and rejected(expit(at - margin)) < rejected(threshold) - DRIFT_MAX_BOGUS:
        margin *= 0.5
    margin = margin if margin > 1e-3 else 0.0
    new = float(expit(at - margin)) if margin else threshold
    figures.update(
        wanted_logit=wanted,
        logit=margin,
        real_kept_by_base=int(kept.sum()),
        lost_before=int((scores[kept] < threshold).sum()),
        lost_after=int((scores[kept] < new).sum()),
    )
    return new, figures


def _choose_threshold(
    stage: _TcnStage,
    base_model: ScreeningModel,
    base_calibration: dict[str, Any] | None,
    synthetic_val: TrackletSet,
    cfg: RetrainConfig,
) -> tuple[float, dict[str, Any]]:
    """The candidate's threshold and its figures on the validation tracklets.

    On tracklets neither network has seen: the labelled ones it trained on score higher than
    new ones would, and the held-out ones are kept for the comparison with the base model.
    Keeping real tracklets comes first: where the base model keeps more of these real
    tracklets than the target asks, the candidate must keep as many.
    """
    real_val, val_scores = synthetic_val.real, stage.val_scores
    # the networks' scores, as the candidate's (`stage.val_scores`): a threshold is chosen on
    # them, the motion rule being applied after it
    _, base_val_scores = score_set(base_model, synthetic_val, motion_rule=False)
    base_val_recall = float((base_val_scores[real_val] >= base_model.threshold).mean())
    recall_floor = max(cfg.target_recall, base_val_recall)
    threshold = threshold_for_recall(val_scores, real_val, recall_floor)
    kept_base_threshold = stage.new_inputs_only and stage.calibration == base_calibration
    if kept_base_threshold:
        # Scores keep the base's meaning (its calibration, its TCN weights for tracklets without
        # a new class): the base's threshold, chosen on far more real tracklets than these, is
        # kept unless the recall floor asks for a lower one.
        threshold = min(threshold, float(base_model.threshold))
    threshold, margin = drift_margin(
        base_val_scores,
        val_scores,
        real_val,
        float(base_model.threshold),
        threshold,
        anchor=drift_anchor(base_model),
    )
    validation = {
        "real": int(real_val.sum()),
        "bogus": int((~real_val).sum()),
        "recall_floor": recall_floor,
        "base_recall": base_val_recall,
        "kept_base_threshold": bool(kept_base_threshold),
        "drift_margin": margin,
        **operating_point(val_scores, real_val, threshold),
    }
    if (~real_val).any():
        validation["auc"] = roc_auc(val_scores, real_val)
        validation["reliability"] = reliability(val_scores, real_val)
    return threshold, validation


def _comparison(
    candidate: ScreeningModel,
    base_model: ScreeningModel,
    base_version: str,
    new_classes: tuple[str, ...],
    tracklets_held: list[LabelledTracklet],
    stamps_held: list[LabelledStamp],
    cfg: RetrainConfig,
    report: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Candidate and base on the held-out labels and on the fixed synthetic evaluation set
    (`metrics["comparison"]` of the candidate; screening.registry.comparison shows it)."""
    models = {"candidate": candidate, "base": base_model}
    outputs = held_out_outputs(models, tracklets_held)
    scores = {name: output[1] for name, output in outputs.items()}
    return {
        "base_version": base_version,
        "new_classes": list(new_classes),
        "holdout": {
            "candidate": holdout_figures(candidate, tracklets_held, scores.get("candidate")),
            "base": holdout_figures(base_model, tracklets_held, scores.get("base")),
        },
        "holdout_new_classes": new_class_passing(
            models, tracklets_held, stamps_held, new_classes, outputs
        ),
        "holdout_lost": holdout_lost(models, tracklets_held, outputs),
        "holdout_stamps": {
            "candidate": stamp_accuracy(candidate, stamps_held),
            "base": stamp_accuracy(base_model, stamps_held),
        },
        "synthetic": synthetic_evaluation(
            models,
            cfg.eval_real,
            cfg.eval_bogus,
            planet_bogus=cfg.eval_planet,
            workers=cfg.workers,
            cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
            scored=None
            if report is None
            else lambda name: report(
                0.91 if name == "candidate" else 0.96,
                f"the {name} scored on the synthetic evaluation set",
            ),
        ),
    }


def retrain(
    base_checkpoint: Path,
    labels: Labels,
    out_dir: Path,
    cfg: RetrainConfig | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train a candidate from `base_checkpoint` and the labels; return its checkpoint and payload.

    The stages: the ICN grows by the new classes and is fine-tuned (`_icn_stage`), the TCN is
    trained on its scores (`_set_tcn_stage` or `_mlp4_tcn_stage`, as the base's TCN is), the
    threshold is chosen (`_choose_threshold`), and candidate and base are compared
    (`_comparison`). The payload's metrics hold both models' figures on the held-out labels and
    on the fixed synthetic evaluation set (`metrics["comparison"]`).
    """
    cfg = cfg or RetrainConfig()
    report = progress or (lambda fraction, step, log=True: None)
    device = resolve_device(cfg.device)
    started = time.time()
    if not labels.stamps and not labels.tracklets:
        raise RetrainError("there are no stamp labels or verdicts to train on")

    report(0.02, "loading the base model")
    base_payload = load_checkpoint(Path(base_checkpoint))
    base = model_from_checkpoint(base_payload)
    pre = base.preprocessing
    base_classes = tuple(base.classes)
    new_classes = tuple(
        dict.fromkeys(s.stamp_class for s in labels.stamps if s.stamp_class not in base_classes)
    )
    classes = base_classes + new_classes
    unknown = [c for c in classes if c not in labels.real_classes and c in new_classes]
    if unknown:
        raise RetrainError(f"no real/bogus category for the new classes {unknown}")
    runtime = Runtime.for_device(device)
    base_model = model_from_checkpoint(base_payload, runtime)  # kept as it is: base.icn grows
    base_calibration = base_payload.get("calibration")
    stamps_train, stamps_held = _split(labels.stamps, cfg.holdout_fraction)
    tracklets_train, tracklets_held = _split(labels.tracklets, cfg.holdout_fraction)

    icn, history = _icn_stage(
        base,
        base_model,
        new_classes,
        stamps_train,
        stamps_held,
        tracklets_train,
        cfg,
        device=device,
        report=report,
        started=started,
    )

    report(ICN_SPAN[1], "simulating tracklets for the TCN")
    synthetic, synthetic_val = tcn_sets(cfg, pre, base_classes)
    report(TCN_SPAN[0], f"training the TCN ({len(tracklets_train)} labelled tracklets)")
    on_epoch = _tcn_report(report, started)
    if base.needs_metadata:
        tcn = _set_tcn_stage(
            base,
            icn,
            classes,
            new_classes,
            synthetic,
            synthetic_val,
            tracklets_train,
            cfg,
            base_calibration=base_calibration,
            device=device,
            on_epoch=on_epoch,
        )
    else:
        tcn = _mlp4_tcn_stage(
            base,
            icn,
            classes,
            synthetic,
            synthetic_val,
            tracklets_train,
            cfg,
            device=device,
            on_epoch=on_epoch,
        )

    report(
        TCN_SPAN[1],
        f"choosing the threshold for {cfg.target_recall:.1%} real recall "
        "(and no less than the base model's on the same tracklets)",
    )
    threshold, validation = _choose_threshold(tcn, base_model, base_calibration, synthetic_val, cfg)
    drift = validation["drift_margin"]
    report(
        TCN_SPAN[1],
        f"threshold {threshold:.4f} ({drift['threshold_before']:.4f} lowered by "
        f"{drift['logit']:.2f} in logit, the {drift['quantile']:.0%} drop of the real tracklets "
        f"the base keeps: {drift.get('lost_before', 0)} -> {drift.get('lost_after', 0)} of them "
        "below it)",
    )

    training = {
        "kind": "retrain",
        "base_version": base_payload.get("version") or Path(base_checkpoint).stem,
        "config": asdict(cfg),
        "new_classes": list(new_classes),
        "drift_anchor": drift_anchor(base_model),
        "labels": {
            "stamps_train": len(stamps_train),
            "stamps_held_out": len(stamps_held),
            "tracklets_train": len(tracklets_train),
            "tracklets_held_out": len(tracklets_held),
        },
        "icn_history": history,
    }
    base_real = set(base_payload.get("real_classes", []))
    real_classes = [c for c in classes if labels.real_classes.get(c, c in base_real)]
    payload = checkpoint_payload(
        icn,
        IcnConfig(classes=classes),
        tcn.model,
        tcn.config,
        pre,
        threshold,
        {},
        plain(training),
        half=True,
        calibration=tcn.calibration,
    )
    payload["real_classes"] = real_classes

    report(0.85, "evaluating candidate and base on held-out labels and the synthetic set")
    # Both from their checkpoint dicts (half-precision weights, as a worker would load them).
    candidate = model_from_checkpoint(payload, runtime)
    comparison = _comparison(
        candidate,
        base_model,
        training["base_version"],
        new_classes,
        tracklets_held,
        stamps_held,
        cfg,
        report,
    )
    training["seconds"] = time.time() - started
    payload["metrics"] = plain(
        {
            "validation": {"icn": history[-1] if history else {}, "tcn": validation},
            "comparison": comparison,
        }
    )
    payload["training"] = plain(training)
    final = save_checkpoint(payload, Path(out_dir))
    report(0.97, "measuring where the candidate's training data lies (classifier.novelty)")
    reference = novelty_reference(candidate, synthetic, synthetic_val, stamps_train, stamps_held)
    replace(reference, model_version=file_hash(final)).save(reference_path(final))
    report(1.0, f"candidate {final.stem} written")
    return final, payload


def novelty_reference(
    candidate: ScreeningModel,
    synthetic: TrackletSet,
    synthetic_val: TrackletSet,
    stamps_train: list[LabelledStamp],
    stamps_held: list[LabelledStamp],
) -> NoveltyReference:
    """Where a candidate's training data lies: the simulated tracklets its TCN was trained on
    and the reviewers' labelled stamps (a new class is known from them alone), so that what
    the reviewers taught it is not unlike training; the limit from the validation tracklets
    and the held-out labels."""
    pre = candidate.preprocessing

    def prepared(stamps: list[LabelledStamp]) -> np.ndarray:
        if not stamps:
            return np.zeros((0, pre.crop, pre.crop), np.float32)
        return prepare(np.stack([s.pixels for s in stamps]), pre, fwhm=_seeing(stamps))

    images = np.concatenate([np.asarray(synthetic.images, np.float32), prepared(stamps_train)])
    labels = np.concatenate(
        [
            class_indices(candidate, synthetic.det_classes),
            class_indices(candidate, [s.stamp_class for s in stamps_train]),
        ]
    )
    held = np.concatenate([np.asarray(synthetic_val.images, np.float32), prepared(stamps_held)])
    # at most NOVELTY_STAMPS fitted and half as many held out: a minute on a CPU, not three
    rng = np.random.default_rng(0)
    fit = np.sort(rng.permutation(len(images))[:NOVELTY_STAMPS])
    fit = np.union1d(fit, np.arange(len(synthetic.images), len(images)))  # every labelled one
    held = held[np.sort(rng.permutation(len(held))[: NOVELTY_STAMPS // 2])]
    return reference_from(
        candidate,
        images[fit],
        labels[fit],
        held,
        np.concatenate([synthetic.trk_raw, synthetic_val.trk_raw]),
        made={"from": "the retraining run's simulated tracklets and labelled stamps"},
    )

"""Training: the ICN on per-class stamps, the TCN on ICN scores of tracklets, threshold choice.

Functions first (the Celery training job and the CLI call the same code), shaped like
torchvision's reference script: `train_icn_epoch` / `evaluate_icn` / `train_icn` / `train_model`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifier.classes import PAPER_CLASSES, is_real
from classifier.datasets import StampSet, TrackletSet, build_stamp_set, build_tracklet_set
from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn, tcn_inputs
from classifier.preprocess import Preprocessing, centre_crop
from classifier.simulate import SimConfig

if TYPE_CHECKING:
    import torch

DEFAULT_THRESHOLD = 0.8
TCN_VALIDATION_OFFSET = 1_000_000  # tracklet indices of the TCN validation split


@dataclass(frozen=True)
class IcnTraining:
    """How the ICN is trained: optimiser, schedule, early stopping, stamps per class."""

    name: str
    optimizer: str = "adam"
    lr: float = 0.01
    batch_size: int = 15
    max_epochs: int = 12
    patience: int = 3
    schedule: str = "plateau"  # plateau: x0.3 after a flat epoch; cosine: to 0 over max_epochs
    weight_decay: float = 0.0
    n_train: int = 470
    n_val: int = 30
    jitter: int = 4  # random crop offset (px) around the centre


@dataclass(frozen=True)
class TcnTraining:
    """How the TCN is trained (weights 1 bogus, real_weight real) and on how many tracklets."""

    loss: str = "bce"  # bce, or mse (the paper's)
    optimizer: str = "adam"  # adam, or sgd (the paper's, lr 0.1, batch 1)
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 40
    real_weight: float = 4.0
    n_real: int = 1200
    n_bogus: int = 1200
    n_val_real: int = 1500
    n_val_bogus: int = 1500


PRESETS: dict[str, tuple[IcnTraining, TcnTraining]] = {
    "paper": (
        IcnTraining("paper"),
        TcnTraining(loss="mse", optimizer="sgd", lr=0.1, batch_size=1, epochs=10),
    ),
    "default": (
        IcnTraining("default", optimizer="adamw", lr=2e-3, batch_size=32, schedule="cosine",
                    weight_decay=1e-4, patience=4),
        TcnTraining(),
    ),
}


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def augment(x: torch.Tensor, gen: torch.Generator, crop: int, jitter: int) -> torch.Tensor:
    """Per-sample random 90-degree rotation, flips, and a crop jittered around the centre."""
    import torch

    out = []
    size = x.shape[-1]
    c0 = (size - crop) // 2
    for img in x:
        k = int(torch.randint(0, 4, (1,), generator=gen))
        img = torch.rot90(img, k, dims=(-2, -1))
        if torch.rand(1, generator=gen) < 0.5:
            img = img.flip(-1)
        oy, ox = (torch.randint(-jitter, jitter + 1, (2,), generator=gen) + c0).tolist()
        oy, ox = min(max(oy, 0), size - crop), min(max(ox, 0), size - crop)
        out.append(img[..., oy : oy + crop, ox : ox + crop])
    return torch.stack(out)


def _optimizer(params, name: str, lr: float, weight_decay: float):
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def train_icn_epoch(model, images: torch.Tensor, labels: torch.Tensor, opt, cfg: IcnTraining,
                    crop: int, gen: torch.Generator, device: str, progress: bool) -> float:
    """One pass over the training stamps in random order; returns the mean loss."""
    import torch
    from tqdm import tqdm

    model.train()
    order = torch.randperm(len(images), generator=gen)
    total, count = 0.0, 0
    batches = range(0, len(order), cfg.batch_size)
    for start in tqdm(batches, desc="icn epoch", leave=False, disable=not progress):
        idx = order[start : start + cfg.batch_size]
        if len(idx) < 2:
            continue  # BatchNorm needs two samples
        x = augment(images[idx], gen, crop, cfg.jitter).to(device, torch.float32)
        y = labels[idx].to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / max(count, 1)


def predict_icn(model, images: np.ndarray | torch.Tensor, device: str,
                batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, C) of prepared, cropped stamps, in batches under inference_mode."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = torch.as_tensor(np.asarray(images[start : start + batch_size]))
            x = chunk.to(device, torch.float32).unsqueeze(1)
            out.append(torch.softmax(model(x), dim=1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.fc.out_features), np.float32)


def evaluate_icn(model, images: np.ndarray, labels: np.ndarray, device: str) -> dict[str, float]:
    """Validation loss and accuracy on prepared, cropped stamps."""
    probs = predict_icn(model, images, device)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-9, 1)).mean())
    return {"loss": loss, "accuracy": float((probs.argmax(1) == labels).mean())}


def train_icn(train: StampSet, val: StampSet, cfg: IcnTraining, pre: Preprocessing, *,
              device: str = "cpu", seed: int = 0, progress: bool = True,
              model=None) -> tuple[Any, list[dict[str, float]]]:
    """Train (or continue training) the ICN with early stopping on validation loss."""
    import torch
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model or build_icn(IcnConfig(classes=train.classes))
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    images = torch.as_tensor(train.images).unsqueeze(1)
    labels = torch.as_tensor(train.labels)
    val_images = centre_crop(val.images, pre.crop)
    opt = _optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=0)
    best, best_state, stale, history = math.inf, None, 0, []
    for epoch in tqdm(range(cfg.max_epochs), desc="icn", disable=not progress):
        t0 = time.time()
        loss = train_icn_epoch(model, images, labels, opt, cfg, pre.crop, gen, device, progress)
        metrics = evaluate_icn(model, val_images, val.labels, device)
        history.append({"epoch": epoch, "train_loss": loss, "val_loss": metrics["loss"],
                        "val_accuracy": metrics["accuracy"], "lr": opt.param_groups[0]["lr"],
                        "seconds": time.time() - t0})
        if cfg.schedule == "cosine":
            sched.step()
        else:
            sched.step(metrics["loss"])
        if metrics["loss"] < best:
            best, stale = metrics["loss"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, history


def tracklet_labels(tset: TrackletSet) -> np.ndarray:
    return tset.real.astype(np.float32)


def train_tcn(x: np.ndarray, y: np.ndarray, cfg: TcnTraining, n_classes: int, *,
              device: str = "cpu", seed: int = 0, progress: bool = True):
    """Train the TCN on (T, 4*C) inputs; loss weighted 1 for bogus and real_weight for real."""
    import torch
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_tcn(TcnConfig(n_classes=n_classes)).to(device)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    opt = _optimizer(model.parameters(), cfg.optimizer, cfg.lr, 0.0)
    for _ in tqdm(range(cfg.epochs), desc="tcn", disable=not progress):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            xb, yb = xt[idx].to(device), yt[idx].to(device)
            weight = 1.0 + (cfg.real_weight - 1.0) * yb
            logit = model(xb).squeeze(1)
            if cfg.loss == "mse":
                loss = (weight * (torch.sigmoid(logit) - yb) ** 2).mean()
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yb, weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def predict_tcn(model, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        logits = model(torch.as_tensor(x, dtype=torch.float32, device=device)).squeeze(1)
        return torch.sigmoid(logits).float().cpu().numpy()


def threshold_for_recall(scores: np.ndarray, real: np.ndarray, target: float) -> float:
    """The highest threshold t with recall(score >= t) >= target on the real tracklets."""
    real_scores = np.sort(scores[real])
    if not len(real_scores):
        raise ValueError("no real tracklets to choose a threshold on")
    allowed_misses = int(math.floor((1.0 - target) * len(real_scores) + 1e-9))
    return float(real_scores[allowed_misses])


def roc_auc(scores: np.ndarray, real: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by ranks."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos, n_neg = int(real.sum()), int((~real).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[real].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def operating_point(scores: np.ndarray, real: np.ndarray, threshold: float) -> dict[str, float]:
    keep = scores >= threshold
    return {"threshold": float(threshold),
            "real_recall": float(keep[real].mean()) if real.any() else float("nan"),
            "bogus_rejection": float((~keep[~real]).mean()) if (~real).any() else float("nan")}


def state_dict_for_checkpoint(model, half: bool) -> dict[str, Any]:
    """Weights of the unwrapped model on CPU, floating tensors in fp16 when half."""
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        out[key] = value.half() if half and value.is_floating_point() else value.clone()
    return out


def checkpoint_payload(icn, icn_cfg: IcnConfig, tcn, tcn_cfg: TcnConfig, pre: Preprocessing,
                       threshold: float, metrics: dict[str, Any], training: dict[str, Any],
                       half: bool) -> dict[str, Any]:
    """The plain-dict checkpoint of a model pair."""
    return {
        "kind": "screening-model",
        "classes": list(icn_cfg.classes),
        "real_classes": [c for c in icn_cfg.classes if is_real(c)],
        "preprocessing": pre.to_dict(),
        "threshold": float(threshold),
        "icn": {"config": icn_cfg.to_dict(), "state_dict": state_dict_for_checkpoint(icn, half)},
        "tcn": {"config": tcn_cfg.to_dict(), "state_dict": state_dict_for_checkpoint(tcn, half)},
        "metrics": metrics,
        "training": training,
    }


def split_per_class(stamps: StampSet, n_train: int) -> tuple[StampSet, StampSet]:
    """The first n_train stamps of each class train, the rest validate."""
    rank = np.zeros(len(stamps.labels), dtype=int)
    for label in np.unique(stamps.labels):
        where = np.flatnonzero(stamps.labels == label)
        rank[where] = np.arange(len(where))
    is_train = rank < n_train
    pick = [np.flatnonzero(is_train), np.flatnonzero(~is_train)]
    return tuple(  # type: ignore[return-value]
        StampSet(stamps.images[p], stamps.labels[p], stamps.classes,
                 [stamps.latents[i] for i in p]) for p in pick
    )


def train_model(*, seed: int, preset: str = "default", out_dir: Path,
                classes: tuple[str, ...] = PAPER_CLASSES, device: str = "auto",
                workers: int | None = None, half: bool = True,
                threshold: float | None = DEFAULT_THRESHOLD, target_recall: float | None = None,
                icn_overrides: dict[str, Any] | None = None,
                tcn_overrides: dict[str, Any] | None = None,
                pre: Preprocessing | None = None, progress: bool = True,
                curated_snr_slope: float | None = None,
                command: str = "") -> tuple[Path, dict[str, Any]]:
    """Simulate data from `seed`, train ICN then TCN, choose the threshold, save a checkpoint.

    `curated_snr_slope` changes only the SNR law of the ICN's per-class (curated) stamps, e.g.
    1.0 for log-uniform, so that bright examples are not rare; tracklets keep the physical law.
    """
    device = resolve_device(device)
    icn_cfg_t, tcn_cfg_t = PRESETS[preset]
    icn_cfg_t = replace(icn_cfg_t, **(icn_overrides or {}))
    tcn_cfg_t = replace(tcn_cfg_t, **(tcn_overrides or {}))
    pre = pre or Preprocessing()
    glare = "GLARE" in classes
    timings: dict[str, float] = {}
    t0 = time.time()
    stamp_cfg = None if curated_snr_slope is None else SimConfig(snr_slope=curated_snr_slope)
    stamps = build_stamp_set(seed, classes, icn_cfg_t.n_train + icn_cfg_t.n_val, pre,
                             cfg=stamp_cfg, workers=workers, progress=progress)
    train_set, val_set = split_per_class(stamps, icn_cfg_t.n_train)
    timings["simulate_stamps_s"] = time.time() - t0

    t0 = time.time()
    icn, history = train_icn(train_set, val_set, icn_cfg_t, pre, device=device, seed=seed,
                             progress=progress)
    timings["train_icn_s"] = time.time() - t0

    t0 = time.time()
    tcn_train = build_tracklet_set(seed, tcn_cfg_t.n_real, tcn_cfg_t.n_bogus, pre, glare=glare,
                                   workers=workers, progress=progress)
    tcn_val = build_tracklet_set(seed, tcn_cfg_t.n_val_real, tcn_cfg_t.n_val_bogus, pre,
                                 glare=glare, first_index=TCN_VALIDATION_OFFSET,
                                 workers=workers, progress=progress)
    timings["simulate_tracklets_s"] = time.time() - t0
    t0 = time.time()
    x_train = tcn_inputs(predict_icn(icn, tcn_train.images, device), tcn_train.lengths)
    x_val = tcn_inputs(predict_icn(icn, tcn_val.images, device), tcn_val.lengths)
    timings["score_tracklets_s"] = time.time() - t0
    t0 = time.time()
    tcn = train_tcn(x_train, tracklet_labels(tcn_train), tcn_cfg_t, len(classes), device=device,
                    seed=seed, progress=progress)
    timings["train_tcn_s"] = time.time() - t0

    val_scores = predict_tcn(tcn, x_val, device)
    if target_recall is not None:
        threshold = threshold_for_recall(val_scores, tcn_val.real, target_recall)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    metrics = {
        "validation": {
            "icn": history[-1] if history else {},
            "tcn_auc": roc_auc(val_scores, tcn_val.real),
            **operating_point(val_scores, tcn_val.real, threshold),
            "tracklets": {"real": int(tcn_val.real.sum()), "bogus": int((~tcn_val.real).sum())},
        },
        "icn_history": history,
    }
    timings["total_s"] = sum(timings.values())
    training = {"seed": seed, "preset": preset, "device": device, "icn": asdict(icn_cfg_t),
                "tcn": asdict(tcn_cfg_t), "target_recall": target_recall, "timings": timings,
                "half_precision": half, "curated_snr_slope": curated_snr_slope,
                "command": command}
    payload = checkpoint_payload(icn, IcnConfig(classes=tuple(classes)), tcn,
                                 TcnConfig(n_classes=len(classes)), pre, threshold, metrics,
                                 training, half)
    from classifier.checkpoint import save_checkpoint

    return save_checkpoint(payload, out_dir), payload

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

from classifier.calibration import calibrate_logits, fit_platt
from classifier.checkpoint import checkpoint_payload, save_checkpoint
from classifier.classes import PAPER_CLASSES
from classifier.datasets import StampSet, TrackletSet, build_stamp_set, build_tracklet_set
from classifier.features import CUES
from classifier.hardware import resolve_device, training_precision
from classifier.metrics import operating_point, reliability, roc_auc, threshold_for_recall
from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn, tcn_inputs
from classifier.preprocess import Preprocessing, centre_crop
from classifier.simulate import SimConfig

if TYPE_CHECKING:
    import torch

DEFAULT_THRESHOLD = 0.8
TCN_VALIDATION_OFFSET = 1_000_000  # tracklet indices of the TCN validation split


BATCH_NORM_MODES = ("learn", "kept")  # IcnTraining.batch_norm


def _modes() -> str:
    return " or ".join(repr(m) for m in BATCH_NORM_MODES)


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
    # d4: 90-degree rotations and flips; flips: flips only, which keeps what a survey never
    # rotates (bleed trails along columns, glare bands along rows, spikes at 45 degrees)
    augmentation: str = "d4"
    precision: str = "fp32"  # fp32, bf16 (autocast), or auto (bf16 where the hardware has it)
    warmup_epochs: float = 0.0  # linear warm-up of the per-step cosine schedule
    label_smoothing: float = 0.0
    snr_slope: float | None = None  # SNR law of the curated stamps (None: the simulator's)
    widened: bool = False  # domain randomisation (SimConfig.widened) for the curated stamps
    wider: bool = False  # beyond one survey (SimConfig.wider: seeing, smaller stamps)
    # a checkpoint whose ICN the training starts from (fine-tuning it) instead of from scratch
    init_from: str = ""
    # "learn": BatchNorm normalises each batch by its own statistics and moves its running
    # ones (training from scratch); "kept": every BatchNorm normalises by the running statistics
    # it starts with and keeps them (a fine-tuning whose new stamps must not shift what the
    # network makes of the old ones); its scale and shift still learn
    batch_norm: str = "learn"

    def __post_init__(self) -> None:
        if self.batch_norm not in BATCH_NORM_MODES:
            raise ValueError(f"batch_norm must be {_modes()}, got {self.batch_norm!r}")


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
    kind: str = "mlp4"  # mlp4 (the paper's) or set (metadata, any length: networks.TcnConfig)
    weight_decay: float = 0.0
    calibrate: bool = False  # Platt-scale the logit on the validation split
    cues: int = 1  # the set TCN's cue set (classifier.features.CUES)
    # extra mixed linkages among the training tracklets (not the validation split's): the
    # simulator draws them as 2% of bogus tracklets, too few to learn from
    n_mixed: int = 0


PRESETS: dict[str, tuple[IcnTraining, TcnTraining]] = {
    "paper": (
        IcnTraining("paper"),
        TcnTraining(loss="mse", optimizer="sgd", lr=0.1, batch_size=1, epochs=10),
    ),
    "default": (
        IcnTraining(
            "default",
            optimizer="adamw",
            lr=2e-3,
            batch_size=32,
            schedule="cosine",
            weight_decay=1e-4,
            patience=4,
        ),
        TcnTraining(),
    ),
    # The shipped baseline: tens of thousands of domain-randomised stamps a class, a per-step
    # cosine schedule, flips only (a survey never rotates its columns), bf16 where it is fast.
    "metadata": (
        IcnTraining(
            "metadata",
            optimizer="adamw",
            lr=2e-3,
            batch_size=128,
            max_epochs=6,
            patience=3,
            schedule="cosine_steps",
            weight_decay=5e-4,
            n_train=20_000,
            n_val=1_000,
            jitter=3,
            augmentation="flips",
            precision="auto",
            warmup_epochs=0.3,
            label_smoothing=0.05,
            snr_slope=1.8,
            widened=True,
        ),
        TcnTraining(
            kind="set",
            lr=2e-3,
            batch_size=256,
            epochs=60,
            n_real=6000,
            n_bogus=6000,
            n_val_real=2500,
            n_val_bogus=2500,
            weight_decay=1e-4,
            calibrate=True,
        ),
    ),
}
# Issue 25's recipe: the metadata preset on the wider simulator (seeing 1.0-5.5 px, stamps
# smaller than the input) with the physical-invariant cues (cue set 2: residuals in units of
# each detection's expected error, the motion's significance; cue set 3 adds the source's width
# over the exposure's seeing where the survey sends it), so that it transfers to other surveys.
PRESETS["robust"] = (
    replace(PRESETS["metadata"][0], name="robust", wider=True),
    replace(PRESETS["metadata"][1], cues=3),
)


def augment(
    x: torch.Tensor, gen: torch.Generator, crop: int, jitter: int, mode: str = "d4"
) -> torch.Tensor:
    """Per-sample random flips (and 90-degree rotations in mode d4), crop jittered around centre."""
    import torch

    if mode not in ("d4", "flips"):
        raise ValueError(f"unknown augmentation {mode!r}")
    out = []
    size = x.shape[-1]
    c0 = (size - crop) // 2
    for img in x:
        if mode == "d4":
            k = int(torch.randint(0, 4, (1,), generator=gen))
            img = torch.rot90(img, k, dims=(-2, -1))
        elif torch.rand(1, generator=gen) < 0.5:
            img = img.flip(-2)
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


def train_icn_epoch(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    opt,
    cfg: IcnTraining,
    crop: int,
    gen: torch.Generator,
    device: str,
    progress: bool,
    step_schedule=None,
    targets: torch.Tensor | None = None,
    on_batch=None,
) -> float:
    """One pass over the training stamps in random order; returns the mean loss.

    With `targets` (N, C) class distributions, the loss is the cross-entropy against them
    instead of against `labels` (retraining keeps the base model's answers on old stamps so).
    `on_batch(done, total)` is called after each batch (a long epoch's progress).
    """
    import torch
    from tqdm import tqdm

    precision = training_precision(device) if cfg.precision == "auto" else cfg.precision
    channels_last = precision == "bf16"
    model.train()
    if cfg.batch_norm == "kept":
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    order = torch.randperm(len(images), generator=gen)
    total, count = 0.0, 0
    batches = range(0, len(order), cfg.batch_size)
    for done, start in enumerate(
        tqdm(batches, desc="icn epoch", leave=False, disable=not progress), 1
    ):
        idx = order[start : start + cfg.batch_size]
        if len(idx) < 2:
            continue  # BatchNorm needs two samples
        x = augment(images[idx], gen, crop, cfg.jitter, cfg.augmentation)
        x = x.to(device, torch.float32)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx].to(device)
        with torch.autocast(
            device_type="cuda" if device.startswith("cuda") else "cpu",
            dtype=torch.bfloat16,
            enabled=precision == "bf16",
        ):
            logits = model(x)
        if targets is None:
            loss = torch.nn.functional.cross_entropy(
                logits.float(), y, label_smoothing=cfg.label_smoothing
            )
        else:
            q = targets[idx].to(device, torch.float32)
            loss = -(q * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step_schedule is not None:
            step_schedule.step()
        total += loss.item() * len(idx)
        count += len(idx)
        if on_batch is not None:
            on_batch(done, len(batches))
    return total / max(count, 1)


def predict_icn(
    model, images: np.ndarray | torch.Tensor, device: str, batch_size: int = 512
) -> np.ndarray:
    """Class probabilities (N, C) of prepared, cropped stamps, in batches under inference_mode."""
    import torch

    model.eval()
    model.to(memory_format=torch.channels_last)  # 1.5x on a CPU, and the same on a GPU
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = torch.as_tensor(np.asarray(images[start : start + batch_size]))
            x = chunk.to(device, torch.float32).unsqueeze(1)
            x = x.contiguous(memory_format=torch.channels_last)
            out.append(torch.softmax(model(x), dim=1).float().cpu().numpy())
    model.to(memory_format=torch.contiguous_format)
    return np.concatenate(out) if out else np.zeros((0, model.fc.out_features), np.float32)


def evaluate_icn(model, images: np.ndarray, labels: np.ndarray, device: str) -> dict[str, float]:
    """Validation loss and accuracy on prepared, cropped stamps."""
    probs = predict_icn(model, images, device)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-9, 1)).mean())
    return {"loss": loss, "accuracy": float((probs.argmax(1) == labels).mean())}


def _step_cosine(opt, cfg: IcnTraining, steps_per_epoch: int):
    """Per-step schedule: linear warm-up, then cosine to zero over max_epochs."""
    import torch

    total = max(1, cfg.max_epochs * steps_per_epoch)
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_icn(
    train: StampSet,
    val: StampSet,
    cfg: IcnTraining,
    pre: Preprocessing,
    *,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    model=None,
    checkpoint_dir: Path | None = None,
    on_epoch=None,
    targets: np.ndarray | None = None,
    on_batch=None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train (or continue training) the ICN with early stopping on validation loss.

    `targets` (N, C), if given, are the class distributions to learn instead of the labels.

    With `checkpoint_dir`, the state after every epoch is saved there and a later call with the
    same directory resumes from the last saved epoch (a long CPU run survives being stopped).
    `on_epoch(history_row)` is called after each epoch (the CLI logs with it), and
    `on_batch(epoch, done, total)` after each batch of an epoch (`done` of `total` batches).
    """
    import torch
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model or build_icn(IcnConfig(classes=train.classes))
    model.to(device)
    precision = training_precision(device) if cfg.precision == "auto" else cfg.precision
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(seed)
    images = torch.as_tensor(train.images).unsqueeze(1)
    labels = torch.as_tensor(train.labels)
    val_images = centre_crop(val.images, pre.crop)
    opt = _optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    step_schedule = None
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
    elif cfg.schedule == "cosine_steps":
        sched = step_schedule = _step_cosine(opt, cfg, math.ceil(len(images) / cfg.batch_size))
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=0)
    best, best_state, stale, history, first_epoch = math.inf, None, 0, [], 0
    state_file = checkpoint_dir / "icn-state.pt" if checkpoint_dir else None
    if state_file is not None and state_file.exists():
        state = torch.load(state_file, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        best, best_state, stale = state["best"], state["best_state"], state["stale"]
        history, first_epoch = state["history"], state["epoch"] + 1
        if progress:
            print(f"icn: resuming after epoch {state['epoch']} from {state_file}", flush=True)
    for epoch in tqdm(
        range(first_epoch, cfg.max_epochs),
        desc="icn",
        disable=not progress,
        initial=first_epoch,
        total=cfg.max_epochs,
    ):
        if stale >= cfg.patience:
            break
        t0 = time.time()
        batch_report = None
        if on_batch is not None:

            def batch_report(done: int, total: int, epoch: int = epoch) -> None:
                on_batch(epoch, done, total)

        loss = train_icn_epoch(
            model,
            images,
            labels,
            opt,
            cfg,
            pre.crop,
            gen,
            device,
            progress,
            step_schedule,
            None if targets is None else torch.as_tensor(targets),
            on_batch=batch_report,
        )
        metrics = evaluate_icn(model, val_images, val.labels, device)
        history.append(
            {
                "epoch": epoch,
                "train_loss": loss,
                "val_loss": metrics["loss"],
                "val_accuracy": metrics["accuracy"],
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.time() - t0,
            }
        )
        if cfg.schedule == "cosine":
            sched.step()
        elif cfg.schedule != "cosine_steps":
            sched.step(metrics["loss"])
        if metrics["loss"] < best:
            best, stale = metrics["loss"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(history[-1])
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = state_file.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "gen": gen.get_state(),
                    "best": best,
                    "best_state": best_state,
                    "stale": stale,
                    "history": history,
                    "epoch": epoch,
                },
                tmp,
            )
            tmp.replace(state_file)
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.to(memory_format=torch.contiguous_format), history


def tracklet_labels(tset: TrackletSet) -> np.ndarray:
    return tset.real.astype(np.float32)


def train_tcn(
    x: np.ndarray,
    y: np.ndarray,
    cfg: TcnTraining,
    n_classes: int,
    *,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    weights: np.ndarray | None = None,
    on_epoch=None,
):
    """Train the TCN on (T, 4*C) inputs; loss weighted 1 for bogus and real_weight for real
    (times `weights`, one per tracklet, when given). `on_epoch` as `train_set_tcn`'s."""
    import torch
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_tcn(TcnConfig(n_classes=n_classes)).to(device)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    wt = torch.as_tensor(np.ones(len(y)) if weights is None else weights, dtype=torch.float32)
    opt = _optimizer(model.parameters(), cfg.optimizer, cfg.lr, 0.0)
    for epoch in tqdm(range(cfg.epochs), desc="tcn", disable=not progress):
        model.train()
        tally = _EpochTally(on_epoch, epoch, cfg.epochs)
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            xb, yb = xt[idx].to(device), yt[idx].to(device)
            weight = (1.0 + (cfg.real_weight - 1.0) * yb) * wt[idx].to(device)
            logit = model(xb).squeeze(1)
            if cfg.loss == "mse":
                loss = (weight * (torch.sigmoid(logit) - yb) ** 2).mean()
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yb, weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tally.add(loss, logit, yb)
        tally.report()
    model.eval()
    return model


class _EpochTally:
    """A TCN epoch's mean loss and training accuracy (score 0.5 as the cut), summed on the
    device without a sync per batch, for `on_epoch({"epoch", "epochs", "loss", "accuracy",
    "seconds"})`; nothing at all without a callback."""

    def __init__(self, on_epoch, epoch: int, epochs: int) -> None:
        self.on_epoch, self.epoch, self.epochs = on_epoch, epoch, epochs
        self.started = time.time()
        self.loss = self.right = None
        self.count = 0

    def add(self, loss, logit, y) -> None:
        if self.on_epoch is None:
            return
        n = len(y)
        loss, right = loss.detach() * n, ((logit.detach() > 0) == (y > 0.5)).sum()
        self.loss = loss if self.loss is None else self.loss + loss
        self.right = right if self.right is None else self.right + right
        self.count += n

    def report(self) -> None:
        if self.on_epoch is None:
            return
        n = max(self.count, 1)
        self.on_epoch(
            {
                "epoch": self.epoch,
                "epochs": self.epochs,
                "loss": float(self.loss) / n if self.loss is not None else math.nan,
                "accuracy": float(self.right) / n if self.right is not None else math.nan,
                "seconds": time.time() - self.started,
            }
        )


@dataclass
class SetInputs:
    """What a set TCN takes for consecutive tracklets (NumPy, float32)."""

    probs: np.ndarray  # (N, C) ICN probabilities
    det: np.ndarray  # (N, N_DETECTION_INPUTS)
    trk: np.ndarray  # (T, N_TRACKLET_INPUTS)
    lengths: np.ndarray  # (T,)

    @classmethod
    def concat(cls, parts: list[SetInputs]) -> SetInputs:
        return cls(
            *(
                np.concatenate([getattr(p, k) for p in parts])
                for k in ("probs", "det", "trk", "lengths")
            )
        )

    def select(self, index: np.ndarray) -> SetInputs:
        """The tracklets at `index` (in that order)."""
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        rows = (
            np.concatenate([np.arange(starts[i], starts[i] + self.lengths[i]) for i in index])
            if len(index)
            else np.zeros(0, int)
        )
        return SetInputs(self.probs[rows], self.det[rows], self.trk[index], self.lengths[index])


def _packed(inputs: SetInputs, device: str):
    """(packed (T, L, C + D), mask (T, L), tracklet inputs (T, F)) tensors on `device`."""
    import torch

    from classifier.networks import pack_set_inputs

    probs = torch.as_tensor(inputs.probs, dtype=torch.float32, device=device)
    det = torch.as_tensor(inputs.det, dtype=torch.float32, device=device)
    packed, mask = pack_set_inputs(probs, det, torch.as_tensor(inputs.lengths, device=device))
    return packed, mask, torch.as_tensor(inputs.trk, dtype=torch.float32, device=device)


def set_tcn_logits(model, inputs: SetInputs, device: str, batch: int = 4096):
    """(T,) logits of a set TCN (a tensor with gradients while training)."""
    import torch

    packed, mask, trk = _packed(inputs, device)
    out = [
        model(packed[s : s + batch], mask[s : s + batch], trk[s : s + batch]).squeeze(1)
        for s in range(0, len(trk), batch)
    ]
    return torch.cat(out) if out else torch.zeros(0, device=device)


def train_set_tcn(
    inputs: SetInputs,
    y: np.ndarray,
    cfg: TcnTraining,
    tcn_cfg: TcnConfig,
    *,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    weights: np.ndarray | None = None,
    model=None,
    input_columns: list[int] | None = None,
    on_epoch=None,
    share_columns: list[int] | None = None,
):
    """Train a set TCN: weighted BCE (1 bogus, real_weight real, times `weights`), cosine lr.

    With `input_columns` only the first layer's weights from those inputs (a new class's
    probability) are trained, and with `share_columns` only the tracklet network's weights
    from those of its inputs (a new class's share, `TcnConfig.share_classes`); everything else
    stays as it was: the TCN learns what the new class means and scores tracklets without it
    exactly as before.
    `on_epoch({"epoch", "epochs", "loss", "accuracy", "seconds"})` is called after each epoch
    (the mean training loss and the training accuracy at a score of 0.5).
    """
    import torch
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (model or build_tcn(tcn_cfg)).to(device)
    gen = torch.Generator().manual_seed(seed)
    yt = torch.as_tensor(y, dtype=torch.float32, device=device)
    wt = torch.as_tensor(
        np.ones(len(y)) if weights is None else weights, dtype=torch.float32, device=device
    )
    params = model.parameters()
    decay = cfg.weight_decay
    if input_columns is not None or share_columns is not None:
        for p in model.parameters():
            p.requires_grad_(False)
        params, decay = [], 0.0  # no decay: the other columns must not shrink
        for layer, columns in ((model.phi[0], input_columns), (model.rho[0], share_columns)):
            if columns:
                weight = layer.weight
                weight.requires_grad_(True)
                keep = torch.zeros_like(weight)
                keep[:, columns] = 1.0
                weight.register_hook(lambda grad, keep=keep: grad * keep)
                params.append(weight)
    opt = _optimizer(params, "adamw" if cfg.optimizer == "adam" else cfg.optimizer, cfg.lr, decay)
    steps = cfg.epochs * math.ceil(len(y) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, steps))
    import torch.nn.functional as F

    packed, mask, trk = _packed(inputs, device)  # once; batches are slices of it
    for epoch in tqdm(range(cfg.epochs), desc="tcn", disable=not progress):
        model.train()
        tally = _EpochTally(on_epoch, epoch, cfg.epochs)
        order = torch.randperm(len(y), generator=gen).to(device)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            logit = model(packed[idx], mask[idx], trk[idx]).squeeze(1)
            weight = (1.0 + (cfg.real_weight - 1.0) * yt[idx]) * wt[idx]
            loss = F.binary_cross_entropy_with_logits(logit, yt[idx], weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tally.add(loss, logit, yt[idx])
        tally.report()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def predict_set_tcn(model, inputs: SetInputs, device: str) -> np.ndarray:
    """(T,) logits of a set TCN, no gradients."""
    import torch

    model.eval()
    with torch.inference_mode():
        return set_tcn_logits(model, inputs, device).float().cpu().numpy()


SEEING_DROPOUT = 0.3  # the fraction of training tracklets whose seeing is hidden (cue set 3)


def without_seeing(tset: TrackletSet, fraction: float, seed: int) -> np.ndarray:
    """The set's raw detection cues with the seeing hidden (NaN, as when a survey does not send
    it) for a random `fraction` of its tracklets. Cue set 5's matched-filter columns stay as
    they were measured, at the seeing's width (the raw stamps are not kept to measure them again
    at the source's own width, as scoring without the seeing does: within about 5%)."""
    from classifier.features import DETECTION_FEATURES

    rng = np.random.default_rng([seed, 3])
    hidden = np.repeat(rng.random(len(tset.lengths)) < fraction, tset.lengths)
    raw = np.array(tset.det_raw, dtype=np.float64, copy=True)
    raw[hidden, DETECTION_FEATURES.index("fwhm_px")] = np.nan
    return raw


def set_inputs_of(icn, tset: TrackletSet, device: str, cues: int = 1) -> SetInputs:
    """ICN probabilities and measured cues (cue set `cues`) of a tracklet set, as a set TCN
    takes them."""
    return SetInputs(
        predict_icn(icn, tset.images, device),
        tset.det_inputs(cues),
        tset.trk_inputs(cues),
        tset.lengths,
    )


def predict_tcn(model, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        logits = model(torch.as_tensor(x, dtype=torch.float32, device=device)).squeeze(1)
        return torch.sigmoid(logits).float().cpu().numpy()


def split_per_class(stamps: StampSet, n_train: int) -> tuple[StampSet, StampSet]:
    """The first n_train stamps of each class train, the rest validate."""
    rank = np.zeros(len(stamps.labels), dtype=int)
    for label in np.unique(stamps.labels):
        where = np.flatnonzero(stamps.labels == label)
        rank[where] = np.arange(len(where))
    is_train = rank < n_train
    pick = [np.flatnonzero(is_train), np.flatnonzero(~is_train)]
    return tuple(  # type: ignore[return-value]
        StampSet(
            stamps.images[p],
            stamps.labels[p],
            stamps.classes,
            [stamps.latents[i] for i in p] if stamps.latents else [],
        )
        for p in pick
    )


def simulator_of(cfg: IcnTraining) -> SimConfig:
    """The simulator ranges a training recipe draws from: nominal, widened or wider."""
    if cfg.wider:
        return SimConfig().wider()
    return SimConfig().widened() if cfg.widened else SimConfig()


def training_ranges(payload: dict) -> SimConfig:
    """The simulator ranges a saved model's recipe trained on (from its checkpoint's record)."""
    icn = payload["training"]["icn"]
    widened, wider = icn.get("widened", False), icn.get("wider", False)
    return simulator_of(IcnTraining(name=icn["name"], widened=widened, wider=wider))


def stamp_config(cfg: IcnTraining, curated_snr_slope: float | None = None) -> SimConfig:
    """The simulator settings of the ICN's curated stamps under a training recipe."""
    sim = simulator_of(cfg)
    slope = curated_snr_slope if curated_snr_slope is not None else cfg.snr_slope
    return sim if slope is None else replace(sim, snr_slope=slope)


def icn_of_checkpoint(path: Path, classes: tuple[str, ...]):
    """The ICN of a checkpoint (float32) to fine-tune; its classes must be `classes`."""
    from classifier.checkpoint import float_weights, load_checkpoint

    payload = load_checkpoint(path)
    if tuple(payload["classes"]) != tuple(classes):
        raise ValueError(
            f"{path} has classes {list(payload['classes'])}, this training {list(classes)}"
        )
    icn = build_icn(IcnConfig.from_dict(payload["icn"]["config"]))
    icn.load_state_dict(float_weights(payload["icn"]["state_dict"]))
    return icn


def icn_stage(
    seed: int,
    classes: tuple[str, ...],
    cfg: IcnTraining,
    pre: Preprocessing,
    *,
    device: str,
    workers: int | None,
    progress: bool,
    curated_snr_slope: float | None = None,
    stamp_cache: Path | None = None,
    state_dir: Path | None = None,
):
    """Simulate the curated stamps and train the ICN; returns (icn, history, timings).

    With `stamp_cache` (say ``var/cache/stamps``) the stamps are kept there in chunks; with
    `state_dir` (say ``~/.cache/screening/train``) the training state is saved after every epoch
    under ``state_dir/<key>``: a stopped run resumes where it was, a finished one is reused.
    """
    import hashlib
    import json

    import torch

    from classifier.datasets import cached_stamp_set, stamp_cache_key

    timings: dict[str, float] = {}
    if cfg.max_epochs == 0:
        # the ICN as it is (a new TCN or cue set on a trained ICN): no stamps, no training
        if not cfg.init_from:
            raise ValueError("0 ICN epochs needs the ICN to start from (--init-icn)")
        if progress:
            print(f"icn: the ICN of {cfg.init_from} as it is (0 epochs)", flush=True)
        return icn_of_checkpoint(Path(cfg.init_from), classes).to(device), [], timings
    sim = stamp_config(cfg, curated_snr_slope)
    n = cfg.n_train + cfg.n_val
    t0 = time.time()
    run_dir = None
    if state_dir is not None:
        key = json.dumps(
            {
                "stamps": stamp_cache_key(seed, classes, pre, sim),
                "n": n,
                "icn": asdict(cfg),
                "device": device.split(":")[0],
            },
            sort_keys=True,
        )
        run_dir = Path(state_dir) / hashlib.sha256(key.encode()).hexdigest()[:16]
        final = run_dir / "icn-final.pt"
        if final.exists():
            done = torch.load(final, map_location="cpu", weights_only=False)
            icn = build_icn(IcnConfig(classes=tuple(classes)))
            icn.load_state_dict(done["state_dict"])
            if progress:
                print(f"icn: reusing the finished ICN in {final}", flush=True)
            return icn.to(device), done["history"], done["timings"]
    if stamp_cache is not None:
        stamps = cached_stamp_set(
            seed, classes, n, pre, Path(stamp_cache), cfg=sim, workers=workers, progress=progress
        )
    else:
        stamps = build_stamp_set(seed, classes, n, pre, cfg=sim, workers=workers, progress=progress)
    train_set, val_set = split_per_class(stamps, cfg.n_train)
    del stamps
    timings["simulate_stamps_s"] = time.time() - t0
    start = icn_of_checkpoint(Path(cfg.init_from), classes) if cfg.init_from else None
    t0 = time.time()

    def log_epoch(row: dict[str, float]) -> None:
        if progress:
            print("icn epoch " + json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)

    icn, history = train_icn(
        train_set,
        val_set,
        cfg,
        pre,
        device=device,
        seed=seed,
        progress=progress,
        checkpoint_dir=run_dir,
        on_epoch=log_epoch,
        model=start,
    )
    timings["train_icn_s"] = time.time() - t0
    if run_dir is not None:
        torch.save(
            {"state_dict": icn.state_dict(), "history": history, "timings": timings},
            run_dir / "icn-final.pt",
        )
    return icn, history, timings


def train_model(
    *,
    seed: int,
    preset: str = "default",
    out_dir: Path,
    classes: tuple[str, ...] = PAPER_CLASSES,
    device: str = "auto",
    workers: int | None = None,
    half: bool = True,
    threshold: float | None = DEFAULT_THRESHOLD,
    target_recall: float | None = None,
    icn_overrides: dict[str, Any] | None = None,
    tcn_overrides: dict[str, Any] | None = None,
    pre: Preprocessing | None = None,
    progress: bool = True,
    curated_snr_slope: float | None = None,
    stamp_cache: Path | None = None,
    state_dir: Path | None = None,
    command: str = "",
) -> tuple[Path, dict[str, Any]]:
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
    icn, history, icn_timings = icn_stage(
        seed,
        classes,
        icn_cfg_t,
        pre,
        device=device,
        workers=workers,
        progress=progress,
        curated_snr_slope=curated_snr_slope,
        stamp_cache=stamp_cache,
        state_dir=state_dir,
    )
    timings.update(icn_timings)

    t0 = time.time()
    # domain randomisation for the TCN's training tracklets as for the ICN's stamps; the
    # validation split (threshold, calibration) has the simulator's nominal ranges
    train_sim = simulator_of(icn_cfg_t)
    tcn_train = build_tracklet_set(
        seed,
        tcn_cfg_t.n_real,
        tcn_cfg_t.n_bogus,
        pre,
        glare=glare,
        cfg=train_sim,
        workers=workers,
        progress=progress,
        mixed_bogus=tcn_cfg_t.n_mixed,
    )
    tcn_val = build_tracklet_set(
        seed,
        tcn_cfg_t.n_val_real,
        tcn_cfg_t.n_val_bogus,
        pre,
        glare=glare,
        first_index=TCN_VALIDATION_OFFSET,
        workers=workers,
        progress=progress,
    )
    timings["simulate_tracklets_s"] = time.time() - t0
    t0 = time.time()
    calibration = None
    if tcn_cfg_t.kind == "set":
        tcn_cfg = TcnConfig(
            n_classes=len(classes),
            kind="set",
            n_detection_features=CUES[tcn_cfg_t.cues][0],
            n_tracklet_features=CUES[tcn_cfg_t.cues][1],
            cues=tcn_cfg_t.cues,
        )
        if tcn_cfg.cues >= 3:  # sets 3-5 read the seeing
            # the seeing is not sent by every survey: the TCN learns to do without it too
            tcn_train.det_raw = without_seeing(tcn_train, SEEING_DROPOUT, seed)
        in_train = set_inputs_of(icn, tcn_train, device, tcn_cfg.cues)
        in_val = set_inputs_of(icn, tcn_val, device, tcn_cfg.cues)
        timings["score_tracklets_s"] = time.time() - t0
        t0 = time.time()
        tcn = train_set_tcn(
            in_train,
            tracklet_labels(tcn_train),
            tcn_cfg_t,
            tcn_cfg,
            device=device,
            seed=seed,
            progress=progress,
        )
        val_logits = predict_set_tcn(tcn, in_val, device)
    else:
        tcn_cfg = TcnConfig(n_classes=len(classes))
        x_train = tcn_inputs(predict_icn(icn, tcn_train.images, device), tcn_train.lengths)
        x_val = tcn_inputs(predict_icn(icn, tcn_val.images, device), tcn_val.lengths)
        timings["score_tracklets_s"] = time.time() - t0
        t0 = time.time()
        tcn = train_tcn(
            x_train,
            tracklet_labels(tcn_train),
            tcn_cfg_t,
            len(classes),
            device=device,
            seed=seed,
            progress=progress,
        )
        val_logits = None
        val_scores = predict_tcn(tcn, x_val, device)
    timings["train_tcn_s"] = time.time() - t0
    if val_logits is not None:
        if tcn_cfg_t.calibrate:
            calibration = fit_platt(val_logits, tracklet_labels(tcn_val))
        val_scores = calibrate_logits(val_logits, calibration)
    if target_recall is not None:
        threshold = threshold_for_recall(val_scores, tcn_val.real, target_recall)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    metrics = {
        "validation": {
            "icn": history[-1] if history else {},
            "tcn_auc": roc_auc(val_scores, tcn_val.real),
            **operating_point(val_scores, tcn_val.real, threshold),
            "tracklets": {"real": int(tcn_val.real.sum()), "bogus": int((~tcn_val.real).sum())},
            "reliability": reliability(val_scores, tcn_val.real),
        },
        "icn_history": history,
    }
    timings["total_s"] = sum(timings.values())
    training = {
        "seed": seed,
        "preset": preset,
        "device": device,
        "icn": asdict(icn_cfg_t),
        "tcn": asdict(tcn_cfg_t),
        "target_recall": target_recall,
        "timings": timings,
        "half_precision": half,
        "curated_snr_slope": curated_snr_slope,
        "command": command,
    }
    payload = checkpoint_payload(
        icn,
        IcnConfig(classes=tuple(classes)),
        tcn,
        tcn_cfg,
        pre,
        threshold,
        metrics,
        training,
        half,
        calibration=calibration,
    )
    return save_checkpoint(payload, out_dir), payload

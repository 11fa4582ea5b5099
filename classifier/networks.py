"""The two networks: ICN (ResNet-18 on one stamp) and TCN (MLP on a tracklet's ICN scores).

Each is built from a frozen dataclass config that the checkpoint stores as a plain dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

TCN_DETECTIONS = 4


@dataclass(frozen=True)
class IcnConfig:
    """Image classification network: torchvision ResNet-18, one input channel, one output/class."""

    classes: tuple[str, ...]
    arch: str = "resnet18"
    in_channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IcnConfig:
        return cls(**{**data, "classes": tuple(data["classes"])})


TCN_KINDS = ("mlp4", "set")
SHARE_STATISTICS = ("mean", "mean-but-top", "second")


@dataclass(frozen=True)
class TcnConfig:
    """Tracklet classification network.

    kind "mlp4" (the paper's): an MLP on the class scores of the first 4 detections.
    kind "set": a masked set model over every detection (any number, 3 to 16 and beyond): each
    detection's class probabilities and measured cues (classifier.features) go through a shared
    MLP, are pooled by mean and max over the tracklet's detections, joined with the tracklet's
    own cues (rate, fit RMS, magnitude scatter...) and a second MLP gives one logit.
    """

    n_classes: int
    n_detections: int = TCN_DETECTIONS
    hidden: tuple[int, ...] = (64, 32)
    kind: str = "mlp4"
    n_detection_features: int = 0
    n_tracklet_features: int = 0
    width: int = 64
    cues: int = 1  # which cue set its inputs are (classifier.features.CUES)
    # The last `share_classes` classes (ones reviewers taught a retrained model) also enter as
    # the tracklet's mean probability of each (the share of its stamps read so) beside the
    # pooled detections: a class learned there can reject a tracklet made of such stamps
    # without one misread stamp of a real mover doing the same through the max pooling.
    share_classes: int = 0
    # How the share is taken: "mean" over the tracklet's stamps; "mean-but-top", the mean
    # without its stamp most read as the class; "second", the second highest probability of it
    # (two stamps must agree). With either of the last two one stamp alone never counts.
    share_statistic: str = "mean"

    def __post_init__(self) -> None:
        if self.kind not in TCN_KINDS:
            raise ValueError(f"unknown TCN kind {self.kind!r}; known: {TCN_KINDS}")
        if self.share_statistic not in SHARE_STATISTICS:
            raise ValueError(
                f"unknown share statistic {self.share_statistic!r}; known: {SHARE_STATISTICS}"
            )

    @property
    def uses_metadata(self) -> bool:
        return self.kind == "set"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TcnConfig:
        return cls(**{**data, "hidden": tuple(data["hidden"])})


def build_icn(cfg: IcnConfig) -> torch.nn.Module:
    """torchvision ResNet-18 (no pretrained weights), first layer taking one channel."""
    import torch
    import torchvision

    if cfg.arch != "resnet18":
        raise ValueError(f"unsupported ICN architecture {cfg.arch!r}")
    model = torchvision.models.resnet18(weights=None, num_classes=len(cfg.classes))
    model.conv1 = torch.nn.Conv2d(
        cfg.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False
    )
    return model


def grow_icn(
    model: torch.nn.Module, old: IcnConfig, classes: tuple[str, ...]
) -> tuple[torch.nn.Module, IcnConfig]:
    """Give the ICN outputs for `classes` (a superset of the old), keeping all other weights."""
    import torch

    missing = [c for c in old.classes if c not in classes]
    if missing:
        raise ValueError(f"a grown class list must keep every old class; missing {missing}")
    fc_old = model.fc
    fc = torch.nn.Linear(fc_old.in_features, len(classes))
    with torch.no_grad():
        fc.weight.mul_(0.1)
        fc.bias.zero_()
        for new_index, name in enumerate(classes):
            if name in old.classes:
                fc.weight[new_index] = fc_old.weight[old.classes.index(name)]
                fc.bias[new_index] = fc_old.bias[old.classes.index(name)]
    model.fc = fc.to(fc_old.weight.device)
    return model, IcnConfig(classes=tuple(classes), arch=old.arch, in_channels=old.in_channels)


def _set_tcn_class():
    import torch

    class SetTcn(torch.nn.Module):
        """Masked set model: shared per-detection MLP, mean+max pooling, tracklet MLP."""

        def __init__(self, cfg: TcnConfig) -> None:
            super().__init__()
            w = cfg.width
            self.phi = torch.nn.Sequential(
                torch.nn.Linear(cfg.n_classes + cfg.n_detection_features, w),
                torch.nn.ReLU(),
                torch.nn.Linear(w, w),
                torch.nn.ReLU(),
            )
            layers: list[torch.nn.Module] = []
            self.n_classes, self.share_classes = cfg.n_classes, cfg.share_classes
            self.share_statistic = cfg.share_statistic
            width = 2 * w + cfg.n_tracklet_features + cfg.share_classes
            for h in cfg.hidden:
                layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
                width = h
            layers.append(torch.nn.Linear(width, 1))
            self.rho = torch.nn.Sequential(*layers)

        def forward(self, det: torch.Tensor, mask: torch.Tensor, trk: torch.Tensor) -> torch.Tensor:
            """det (T, L, C + D), mask (T, L) True for a detection, trk (T, F) -> (T, 1)."""
            h = self.phi(det)
            m = mask.unsqueeze(-1).to(h.dtype)
            mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            peak = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
            peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
            pooled = [mean, peak, trk]
            if self.share_classes:
                probs = det[..., self.n_classes - self.share_classes : self.n_classes]
                pooled.append(self._share(probs, mask, m))
            return self.rho(torch.cat(pooled, dim=1))

        def _share(self, probs, mask, m):
            """(T, share_classes): each shared class's share of the tracklet's stamps."""
            total, count = (probs * m).sum(1), m.sum(1)
            if self.share_statistic == "mean":
                return total / count.clamp(min=1.0)
            present = probs.masked_fill(~mask.unsqueeze(-1), 0.0)
            several = count > 1  # a tracklet of one detection keeps its own
            if self.share_statistic == "second":
                top2 = present.topk(min(2, present.shape[1]), dim=1).values
                return torch.where(several, top2[:, -1], top2[:, 0])
            top = present.amax(1)
            total = torch.where(several, total - top, total)
            return total / torch.where(several, count - 1, count).clamp(min=1.0)

    return SetTcn


def build_tcn(cfg: TcnConfig) -> torch.nn.Module:
    """The TCN of `cfg.kind`: the paper's MLP on 4 detections' scores, or the set model."""
    import torch

    if cfg.kind == "set":
        return _set_tcn_class()(cfg)
    layers: list[torch.nn.Module] = []
    width = cfg.n_detections * cfg.n_classes
    for h in cfg.hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def tcn_inputs_tensor(
    probs: torch.Tensor, lengths: torch.Tensor, n_detections: int = TCN_DETECTIONS
) -> torch.Tensor:
    """(T, n_detections * C) TCN inputs from per-stamp probabilities of consecutive tracklets.

    The first `n_detections` detections of each tracklet in time order are used; a shorter
    tracklet (3 detections) is padded with the mean of its own detections' scores, so that
    padding looks like one more typical detection of the same tracklet, never like a class.
    Runs on the device of `probs` (lengths: int64 tensor on the same device).
    """
    import torch

    if int(lengths.sum()) != len(probs):
        raise ValueError(f"lengths sum to {int(lengths.sum())} but there are {len(probs)} stamps")
    if bool((lengths < 1).any()):
        raise ValueError("every tracklet needs at least one detection")
    count = len(lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    owner = torch.repeat_interleave(torch.arange(count, device=probs.device), lengths)
    means = torch.zeros((count, probs.shape[1]), dtype=probs.dtype, device=probs.device)
    means.index_add_(0, owner, probs)
    means /= lengths[:, None].to(probs.dtype)
    columns = []
    for j in range(n_detections):
        row = probs[(starts + j).clamp(max=len(probs) - 1)]
        columns.append(torch.where((lengths > j)[:, None], row, means))
    return torch.stack(columns, dim=1).reshape(count, -1)


def tcn_inputs(
    probs: np.ndarray, lengths: list[int] | np.ndarray, n_detections: int = TCN_DETECTIONS
) -> np.ndarray:
    """NumPy form of `tcn_inputs_tensor` (training builds its TCN sets with it)."""
    import torch

    with torch.inference_mode():
        return tcn_inputs_tensor(
            torch.as_tensor(np.asarray(probs, dtype=np.float32)),
            torch.as_tensor(np.asarray(lengths, dtype=np.int64).reshape(-1)),
            n_detections,
        ).numpy()


def pack_set_inputs(
    probs: torch.Tensor, det_features: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, L, C + D) padded per-detection inputs and the (T, L) mask, L the longest tracklet.

    `probs` (N, C) and `det_features` (N, D) hold consecutive tracklets' detections; runs on
    their device.
    """
    import torch

    if int(lengths.sum()) != len(probs) or len(det_features) != len(probs):
        raise ValueError(
            f"lengths sum to {int(lengths.sum())}, probs have {len(probs)} rows "
            f"and features {len(det_features)}"
        )
    count, longest = len(lengths), int(lengths.max()) if len(lengths) else 0
    starts = torch.cumsum(lengths, 0) - lengths
    owner = torch.repeat_interleave(torch.arange(count, device=probs.device), lengths)
    slot = torch.arange(len(probs), device=probs.device) - starts[owner]
    rows = torch.cat([probs, det_features.to(probs.dtype)], dim=1)
    packed = rows.new_zeros((count, longest, rows.shape[1]))
    packed[owner, slot] = rows
    mask = torch.zeros((count, longest), dtype=torch.bool, device=probs.device)
    mask[owner, slot] = True
    return packed, mask


def grow_tcn(
    model: torch.nn.Module,
    cfg: TcnConfig,
    old_classes: tuple[str, ...],
    classes: tuple[str, ...],
    *,
    shares: bool = False,
    share_statistic: str = "mean",
) -> tuple[torch.nn.Module, TcnConfig]:
    """A set TCN taking probabilities of `classes` (the old ones first, new ones after), old
    weights kept by name; with `shares` the new classes also enter as the tracklet's share of
    them (`TcnConfig.share_classes`), taken by `share_statistic` where the TCN had no shares
    before (one that has keeps its own: its old shares were learned so).

    The inputs of a new class start at zero weight, so the grown TCN scores exactly as before
    until it is trained. (The paper's MLP cannot grow: retraining builds a new one.)
    """
    from dataclasses import replace

    import torch

    if cfg.kind != "set":
        raise ValueError("only a set TCN can grow its classes")
    if tuple(classes[: len(old_classes)]) != tuple(old_classes):
        raise ValueError("a grown class list must start with the old classes, in their order")
    added = len(classes) - len(old_classes)
    # the shared classes are the last ones: once a TCN has some, every class after them is one
    shares = shares or cfg.share_classes > 0
    share_classes = cfg.share_classes + added if shares else cfg.share_classes
    if shares and not cfg.share_classes:
        cfg = replace(cfg, share_statistic=share_statistic)
    new_cfg = replace(cfg, n_classes=len(classes), share_classes=share_classes)
    grown = build_tcn(new_cfg)
    grown.load_state_dict(
        {
            k: v
            for k, v in model.state_dict().items()
            if not k.startswith("phi.0.") and k != "rho.0.weight"
        },
        strict=False,
    )
    old_w, old_b = model.phi[0].weight, model.phi[0].bias
    with torch.no_grad():
        w = torch.zeros_like(grown.phi[0].weight)
        w[:, : len(old_classes)] = old_w[:, : len(old_classes)]
        w[:, len(classes) :] = old_w[:, len(old_classes) :]
        grown.phi[0].weight.copy_(w)
        grown.phi[0].bias.copy_(old_b)
        rho_old = model.rho[0].weight
        rho = torch.zeros_like(grown.rho[0].weight)
        rho[:, : rho_old.shape[1]] = rho_old  # the old shares (if any) first, the new ones 0
        grown.rho[0].weight.copy_(rho)
    return grown.to(old_w.device), new_cfg

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


@dataclass(frozen=True)
class TcnConfig:
    """Tracklet classification network: MLP on the class scores of the first detections."""

    n_classes: int
    n_detections: int = TCN_DETECTIONS
    hidden: tuple[int, ...] = (64, 32)

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
    model.conv1 = torch.nn.Conv2d(cfg.in_channels, 64, kernel_size=7, stride=2, padding=3,
                                  bias=False)
    return model


def grow_icn(model: torch.nn.Module, old: IcnConfig, classes: tuple[str, ...]
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


def build_tcn(cfg: TcnConfig) -> torch.nn.Module:
    """MLP: n_detections x n_classes scores -> hidden layers (ReLU) -> one logit (real = 1)."""
    import torch

    layers: list[torch.nn.Module] = []
    width = cfg.n_detections * cfg.n_classes
    for h in cfg.hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def tcn_inputs_tensor(probs: torch.Tensor, lengths: torch.Tensor,
                      n_detections: int = TCN_DETECTIONS) -> torch.Tensor:
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


def tcn_inputs(probs: np.ndarray, lengths: list[int] | np.ndarray,
               n_detections: int = TCN_DETECTIONS) -> np.ndarray:
    """NumPy form of `tcn_inputs_tensor` (training builds its TCN sets with it)."""
    import torch

    with torch.inference_mode():
        return tcn_inputs_tensor(
            torch.as_tensor(np.asarray(probs, dtype=np.float32)),
            torch.as_tensor(np.asarray(lengths, dtype=np.int64).reshape(-1)),
            n_detections,
        ).numpy()

"""The model the workers use: load a checkpoint once, score stamps and tracklets in batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn, tcn_inputs
from classifier.preprocess import Preprocessing, prepare


@dataclass
class ScreeningModel:
    """An ICN + TCN pair with its classes, preprocessing, threshold and version (content hash)."""

    version: str
    classes: tuple[str, ...]
    threshold: float
    preprocessing: Preprocessing
    icn: Any
    tcn: Any
    device: str
    metrics: dict[str, Any]
    training: dict[str, Any]
    batch_size: int = 256

    def stamp_probabilities(self, prepared: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities of stamps already prepared by `self.preprocessing`."""
        from classifier.train import predict_icn

        return predict_icn(self.icn, prepared, self.device, self.batch_size)

    def tracklet_scores(self, probs: np.ndarray, lengths: list[int] | np.ndarray) -> np.ndarray:
        """(T,) TCN scores, 1 = real, of tracklets whose stamps are consecutive in probs."""
        from classifier.train import predict_tcn

        if len(lengths) == 0:
            return np.zeros(0, dtype=np.float32)
        return predict_tcn(self.tcn, tcn_inputs(probs, lengths), self.device)

    def score(self, stamps: np.ndarray, lengths: list[int] | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Score raw stamps (N, 100, 100) float32 with NaN: (stamp probs (N, C), scores (T,))."""
        stamps = np.asarray(stamps, dtype=np.float32)
        if int(np.sum(lengths)) != len(stamps):
            raise ValueError(f"lengths sum to {int(np.sum(lengths))}, not {len(stamps)} stamps")
        probs = np.concatenate([
            self.stamp_probabilities(prepare(stamps[s : s + 4096], self.preprocessing))
            for s in range(0, len(stamps), 4096)
        ]) if len(stamps) else np.zeros((0, len(self.classes)), np.float32)
        return probs, self.tracklet_scores(probs, lengths)

    def accepts(self, scores: np.ndarray) -> np.ndarray:
        """True where a tracklet score reaches the threshold (kept for review as real)."""
        return np.asarray(scores) >= self.threshold


def model_from_checkpoint(payload: dict[str, Any], device: str = "cpu") -> ScreeningModel:
    """Build the networks of a loaded checkpoint dict on `device` (float32 weights)."""
    icn_cfg = IcnConfig.from_dict(payload["icn"]["config"])
    tcn_cfg = TcnConfig.from_dict(payload["tcn"]["config"])
    icn, tcn = build_icn(icn_cfg), build_tcn(tcn_cfg)
    icn.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in payload["icn"]["state_dict"].items()})
    tcn.load_state_dict({k: v.float() for k, v in payload["tcn"]["state_dict"].items()})
    icn.to(device).eval()
    tcn.to(device).eval()
    return ScreeningModel(
        version=payload.get("version", ""),
        classes=tuple(payload["classes"]),
        threshold=float(payload["threshold"]),
        preprocessing=Preprocessing.from_dict(payload["preprocessing"]),
        icn=icn,
        tcn=tcn,
        device=device,
        metrics=payload.get("metrics", {}),
        training=payload.get("training", {}),
    )


def load_model(path: str | Path, device: str = "cpu") -> ScreeningModel:
    """Load a checkpoint (hash-checked, weights_only) as a ready ScreeningModel."""
    from classifier.checkpoint import load_checkpoint
    from classifier.train import resolve_device

    device = resolve_device(device)
    return model_from_checkpoint(load_checkpoint(Path(path)), device)

"""Named preprocessing presets shared by training and inference, stored in every checkpoint.

Input: stamps as the ingest gives them, float32 (N, 100, 100) in ADU, NaN for missing pixels.
Output: float32 (N, crop, crop) in [0, 1], the network's input. numpy only.

Presets:
- ``equalize`` (the paper's, default): NaN and infinite pixels take the stamp's median, then
  histogram equalisation (each pixel becomes the fraction of the stamp's pixels at or below it),
  then a centre crop.
- ``asinh_sigma``: NaN to median, then asinh of the value in robust-sigma units (MAD), scaled to
  about [0, 1]; it keeps how bright a source is relative to the noise, which equalisation loses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PRESETS = ("equalize", "asinh_sigma")


@dataclass(frozen=True)
class Preprocessing:
    """A preset and its parameters: input size, centre-crop size, asinh softening (sigma)."""

    name: str = "equalize"
    size: int = 100
    crop: int = 80
    softening: float = 3.0

    def __post_init__(self) -> None:
        if self.name not in PRESETS:
            raise ValueError(f"unknown preprocessing preset {self.name!r}; known: {PRESETS}")
        if not 8 <= self.crop <= self.size:
            raise ValueError(f"crop must be between 8 and {self.size}, got {self.crop}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(**data)

    def __call__(self, stamps: np.ndarray) -> np.ndarray:
        return prepare(stamps, self)


def fill_missing(stamps: np.ndarray) -> np.ndarray:
    """Replace NaN/inf by each stamp's median of finite pixels (0 where none is finite)."""
    out = np.array(stamps, dtype=np.float32, copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        for i in np.flatnonzero(bad.reshape(len(out), -1).any(axis=1)):
            finite = out[i][~bad[i]]
            out[i][bad[i]] = np.median(finite) if finite.size else 0.0
    return out


def equalize(stamps: np.ndarray) -> np.ndarray:
    """Histogram-equalise each stamp: pixel -> fraction of the stamp's pixels <= its value."""
    flat = stamps.reshape(len(stamps), -1)
    out = np.empty_like(flat, dtype=np.float32)
    n = flat.shape[1]
    for i, row in enumerate(flat):
        ordered = np.sort(row)
        out[i] = np.searchsorted(ordered, row, side="right") / n
    return out.reshape(stamps.shape)


def asinh_sigma(stamps: np.ndarray, softening: float) -> np.ndarray:
    """asinh of (value - median) / robust sigma, mapped to about [0, 1]."""
    flat = stamps.reshape(len(stamps), -1)
    med = np.median(flat, axis=1, keepdims=True)
    mad = np.median(np.abs(flat - med), axis=1, keepdims=True) * 1.4826
    scaled = np.arcsinh((flat - med) / np.maximum(mad, 1e-6) / softening)
    return ((scaled + 3.0) / 9.0).astype(np.float32).reshape(stamps.shape)


def centre_crop(stamps: np.ndarray, crop: int) -> np.ndarray:
    start = (stamps.shape[-1] - crop) // 2
    return stamps[..., start : start + crop, start : start + crop]


def prepare(stamps: np.ndarray, pre: Preprocessing, crop: bool = True) -> np.ndarray:
    """Apply a preset to (N, size, size) stamps; crop=False keeps the full size (for augmenting)."""
    stamps = np.asarray(stamps)
    if stamps.ndim == 2:
        stamps = stamps[None]
    if stamps.shape[1:] != (pre.size, pre.size):
        raise ValueError(f"stamps must be (N, {pre.size}, {pre.size}), got {stamps.shape}")
    filled = fill_missing(stamps)
    if pre.name == "equalize":
        out = equalize(filled)
    else:
        out = asinh_sigma(filled, pre.softening)
    return np.ascontiguousarray(centre_crop(out, pre.crop) if crop else out, dtype=np.float32)

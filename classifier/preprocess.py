"""Named preprocessing presets shared by training and inference, stored in every checkpoint.

Input: stamps as the ingest gives them, float32 (N, 100, 100) in ADU, NaN for missing pixels.
Output: float32 (N, crop, crop) in [0, 1], the network's input.

One implementation, in PyTorch, serves both: training calls `prepare` on NumPy arrays (it runs
on the CPU), the inference workers call `prepare_tensor` on the device that holds the stamps, so
a GPU worker never sends prepared images back and forth.

Presets:
- ``equalize`` (the paper's, default): NaN and infinite pixels take the median of the stamp's
  finite pixels (0 where there are none), then histogram equalisation (each pixel becomes the
  fraction of the stamp's pixels at or below it), then a centre crop.
- ``asinh_sigma``: missing pixels become noise like the stamp's own (`fill_noise`), then asinh
  of the value in robust-sigma units (MAD), scaled to about [0, 1]; it keeps how bright a source
  is relative to the noise, which equalisation loses.

Why noise and not the median for asinh_sigma: a stamp smaller than the input (ZTF's 63x63, a
30x30 cutout) is NaN-padded to 100x100 by ingest (`stamp_io.fit_to_input`). Filled with one
value, the padding is a flat frame with sharp straight edges around the stamp, which the ICN reads
as an artifact: the baseline called 100% of its own AST stamps SPIKE once centre-cropped to 63x63
or 30x30 and padded, and every real ZTF point source too. Filled with noise of the stamp's own
median and robust sigma (a fixed unit-normal pattern, the same on every device, so the runtimes
agree), the padding looks like empty sky and the stamp reads as it would at full size.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

PRESETS = ("equalize", "asinh_sigma")
FILL_SEED = 20261205  # the fixed unit-normal pattern missing pixels take (asinh_sigma)


@functools.cache
def fill_noise(size: int) -> np.ndarray:
    """(size, size) float32 unit-normal pattern, exactly mean 0 and standard deviation 1: a
    missing pixel of an asinh_sigma stamp becomes median + robust sigma x this pattern."""
    pattern = np.random.default_rng(FILL_SEED).standard_normal((size, size))
    return ((pattern - pattern.mean()) / pattern.std()).astype(np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """A preset and its parameters: input size, centre-crop size, asinh softening (sigma),
    and the seeing (FWHM, px) that stamps taken under broader seeing are shrunk to (0: never;
    see `normalise_seeing`)."""

    name: str = "equalize"
    size: int = 100
    crop: int = 80
    softening: float = 3.0
    seeing: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in PRESETS:
            raise ValueError(f"unknown preprocessing preset {self.name!r}; known: {PRESETS}")
        if not 8 <= self.crop <= self.size:
            raise ValueError(f"crop must be between 8 and {self.size}, got {self.crop}")
        if not (self.seeing == 0 or 0.5 <= self.seeing <= 20):
            raise ValueError(f"seeing must be 0 (off) or 0.5-20 px, got {self.seeing}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.seeing:  # checkpoints and cache keys made before the field stay the same
            del data["seeing"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(**data)

    def __call__(self, stamps: np.ndarray, fwhm: np.ndarray | None = None) -> np.ndarray:
        return prepare(stamps, self, fwhm=fwhm)


def normalise_seeing(stamps: torch.Tensor, fwhm: Any, seeing: float) -> torch.Tensor:
    """Stamps taken under seeing broader than `seeing` (FWHM, px), each shrunk about its centre
    by seeing / its exposure's FWHM, so that its point sources are `seeing` px wide, and
    NaN-padded back to full size (the preset fills missing pixels).

    The physical invariant: a star under 6 px seeing, binned to 3.5 px, is a star under 3.5 px
    seeing seen through coarser pixels; its width relative to the PSF, a trail's length in PSF
    widths and a cosmic ray's sharpness keep their meaning. Binning (area averaging) keeps the
    noise as coarser pixels would. Stamps whose seeing is at most `seeing`, or unknown (NaN),
    are returned as they are. `fwhm`: (N,) the exposure's seeing of each stamp.
    """
    import torch
    import torch.nn.functional as F

    fwhm = np.asarray(
        fwhm.cpu().numpy() if isinstance(fwhm, torch.Tensor) else fwhm, dtype=np.float64
    ).reshape(-1)
    if len(fwhm) != len(stamps):
        raise ValueError(f"{len(fwhm)} seeing values for {len(stamps)} stamps")
    broad = np.flatnonzero(np.isfinite(fwhm) & (fwhm > seeing))
    if not len(broad):
        return stamps
    size = stamps.shape[-1]
    out = stamps.to(torch.float32).clone()
    for i in broad.tolist():
        side = max(8, int(round(size * seeing / fwhm[i])))
        small = F.interpolate(out[i][None, None], size=(side, side), mode="area")[0, 0]
        start = (size - side) // 2
        out[i] = float("nan")
        out[i, start : start + side, start : start + side] = small
    return out


def _sorted_median(ordered: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Median of the first `count` values of each sorted row, as NumPy takes it; 0 if none."""
    import torch

    lower = ((count - 1) // 2).clamp(min=0)
    upper = (count // 2).clamp(max=ordered.shape[1] - 1)
    pair = torch.gather(ordered, 1, torch.stack([lower, upper], dim=1))
    median = (pair[:, 0] + pair[:, 1]) / 2
    return torch.where(count > 0, median, torch.zeros_like(median))


def _sorted_rows(rows: torch.Tensor) -> torch.Tensor:
    """Each row sorted ascending; NumPy's vectorised sort on the CPU is several times faster."""
    import torch

    if rows.device.type == "cpu":
        return torch.from_numpy(np.sort(rows.numpy(), axis=1))
    return torch.sort(rows, dim=1).values


def middle_pairs(
    rows: np.ndarray, finite: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower middle, upper middle, count) of each row's values, or of those where `finite` is
    True, in the rows' dtype: the two middle values (the middle one twice for an odd count) that
    sorting gives, by one partial selection for all rows. A row with none has +-inf ones.

    A row's missing values are set to -inf and +inf in such numbers that the lower middle of
    its finite values lands at the same position in every row; the upper middle is the
    smallest value above that position."""
    n, width = rows.shape
    at = (width - 1) // 2
    values, count = rows, np.full(n, width)
    if finite is not None:
        count = finite.sum(axis=1)
        partial = np.flatnonzero(count < width)  # rows with every value kept are as they are
    if finite is not None and len(partial):
        below = at - (count[partial] - 1) // 2  # -inf values needed under the lower middle
        missing = ~finite[partial]
        rank = np.cumsum(missing, axis=1, dtype=np.int32 if width < 2**31 else np.int64)
        low_side = missing & (rank <= below[:, None])
        values = rows.copy() if len(partial) < n else np.empty_like(rows)
        values[partial] = np.where(
            missing, np.where(low_side, -np.inf, np.inf).astype(rows.dtype), rows[partial]
        )
    parted = np.partition(values, at, axis=1)
    low = parted[:, at]
    high = np.where(count % 2 == 0, parted[:, at + 1 :].min(axis=1), low) if at + 1 < width else low
    return low, high, count


def _middle(rows: np.ndarray, finite: np.ndarray | None = None) -> np.ndarray:
    """Each row's median as `_sorted_median` takes it (the mean of the two middle values, in
    float32), of all its values or of those where `finite` is True (rows with none: 0), by one
    partial selection for all rows (`middle_pairs`): exactly the values sorting gives, several
    times faster."""
    low, high, count = middle_pairs(rows, finite)
    with np.errstate(invalid="ignore"):  # -inf + inf in rows with nothing finite: set to 0
        middle = ((low + high) / np.float32(2)).astype(np.float32)
    return np.where(count > 0, middle, np.float32(0))


def _finite_stats(rows: np.ndarray, finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median and robust sigma (1.4826 MAD) of each row's finite values (0 where it has
    none), as `_sorted_median` of the sorted rows gives them; rows with no missing pixel need
    none (nothing is filled)."""
    med = np.zeros(len(rows), dtype=np.float32)
    sigma = np.zeros(len(rows), dtype=np.float32)
    partial = np.flatnonzero(~finite.all(axis=1))
    if len(partial):
        values, kept = rows[partial], finite[partial]
        med[partial] = _middle(values, kept)
        deviation = np.abs(values - med[partial][:, None])
        sigma[partial] = _middle(deviation, kept) * np.float32(1.4826)
    return med, sigma


def _sorted_stats(flat: torch.Tensor, finite: torch.Tensor, count: torch.Tensor, spread: bool):
    """(rows sorted with missing pixels last, median of the finite pixels, their robust sigma
    or None): `_finite_stats` by sorting, which suits a GPU."""
    import torch

    # Missing pixels sort last (as +inf), so the first `count` values are the finite ones.
    ordered = _sorted_rows(torch.where(finite, flat, torch.inf))
    med = _sorted_median(ordered, count)
    if not spread:
        return ordered, med, None
    deviation = torch.where(finite, (flat - med[:, None]).abs(), torch.inf)
    return ordered, med, _sorted_median(_sorted_rows(deviation), count) * 1.4826


def centre_crop(stamps, crop: int):
    """The central crop x crop pixels of (..., size, size) arrays or tensors."""
    start = (stamps.shape[-1] - crop) // 2
    return stamps[..., start : start + crop, start : start + crop]


def prepare_tensor(
    stamps: torch.Tensor, pre: Preprocessing, crop: bool = True, fwhm: Any = None
) -> torch.Tensor:
    """Apply a preset to a (N, size, size) tensor on its own device; float32 (N, crop, crop).

    `fwhm`: each stamp's exposure seeing (px, NaN where unknown), which a preset with a
    `seeing` reads (`normalise_seeing`); other presets ignore it.
    """
    import torch

    if stamps.ndim != 3 or tuple(stamps.shape[1:]) != (pre.size, pre.size):
        raise ValueError(f"stamps must be (N, {pre.size}, {pre.size}), got {tuple(stamps.shape)}")
    if pre.seeing and fwhm is not None:
        stamps = normalise_seeing(stamps, fwhm, pre.seeing)
    n, pixels = len(stamps), pre.size * pre.size
    flat = stamps.reshape(n, pixels).to(torch.float32)
    finite = torch.isfinite(flat)
    count = finite.sum(dim=1)
    if pre.name == "asinh_sigma" and flat.device.type == "cpu":
        med, sigma = (torch.from_numpy(v) for v in _finite_stats(flat.numpy(), finite.numpy()))
    else:
        ordered, med, sigma = _sorted_stats(flat, finite, count, spread=pre.name == "asinh_sigma")
    if pre.name == "asinh_sigma":
        pattern = torch.from_numpy(fill_noise(pre.size)).to(flat.device).reshape(1, pixels)
        fill = med[:, None] + sigma[:, None] * pattern
    else:
        fill = med[:, None]
    filled = torch.where(finite, flat, fill).reshape(n, pre.size, pre.size)
    if pre.name == "equalize":
        # rank = finite pixels <= v, plus the filled pixels (all equal to `fill`) when fill <= v:
        # the same as sorting the filled stamp, with one sort instead of two.
        values = centre_crop(filled, pre.crop) if crop else filled
        values = values.reshape(n, -1).contiguous()
        rank = torch.searchsorted(ordered, values, right=True)
        rank += (pixels - count)[:, None] * (med[:, None] <= values)
        side = pre.crop if crop else pre.size
        return (rank.to(torch.float64) / pixels).to(torch.float32).reshape(n, side, side)
    flat = filled.reshape(n, pixels)
    if flat.device.type == "cpu":
        # the same order statistics by selection (np.partition, linear) instead of two sorts
        med = torch.from_numpy(_middle(flat.numpy()))[:, None]
        mad = torch.from_numpy(_middle((flat - med).abs().numpy()))[:, None] * 1.4826
    else:
        everything = torch.full_like(count, pixels)
        med = _sorted_median(_sorted_rows(flat), everything)[:, None]
        deviation = _sorted_rows((flat - med).abs())
        mad = _sorted_median(deviation, everything)[:, None] * 1.4826
    # element by element, so only the pixels kept by the crop are computed
    values = centre_crop(filled, pre.crop) if crop else filled
    med, mad = med[:, :, None], mad.clamp(min=1e-6)[:, :, None]
    scaled = torch.asinh((values - med) / mad / pre.softening)
    return ((scaled + 3.0) / 9.0).contiguous()


def prepare(
    stamps: np.ndarray, pre: Preprocessing, crop: bool = True, fwhm: Any = None
) -> np.ndarray:
    """Apply a preset to (N, size, size) NumPy stamps; crop=False keeps the full size; `fwhm`
    as `prepare_tensor`'s."""
    import torch

    stamps = np.asarray(stamps, dtype=np.float32)
    if stamps.ndim == 2:
        stamps = stamps[None]
    if stamps.shape[1:] != (pre.size, pre.size):
        raise ValueError(f"stamps must be (N, {pre.size}, {pre.size}), got {stamps.shape}")
    with torch.inference_mode():
        out = prepare_tensor(torch.from_numpy(np.ascontiguousarray(stamps)), pre, crop, fwhm)
    return np.ascontiguousarray(out.numpy())

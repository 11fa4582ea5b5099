"""A montage PNG of each class over SNR bins, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier.classes import ALL_CLASSES, is_real
from classifier.simulate import STREAM_STAMPS, SimConfig, StampSample, make_stamp, stamp_rng

# Real classes are drawn inside fixed SNR bins; bogus classes have no SNR of their own, so their
# columns are quantiles of their strength latent ('snr': peak sigma, star SNR, band amplitude...).
SNR_BINS = (4.0, 5.0, 6.0, 8.0, 12.0, 25.0, 60.0, 300.0)


def display_scale(stamp: np.ndarray) -> np.ndarray:
    """Robust sigma units with an asinh stretch, for eyes (not the network's preprocessing)."""
    finite = stamp[np.isfinite(stamp)]
    med = np.median(finite) if finite.size else 0.0
    mad = np.median(np.abs(finite - med)) * 1.4826 if finite.size else 1.0
    out = np.arcsinh((np.nan_to_num(stamp, nan=med) - med) / max(mad, 1e-6) / 2.0)
    return np.clip(out, -2.0, 5.0)


def montage_samples(cls: str, seed: int, n_cols: int, cfg: SimConfig) -> list[StampSample]:
    """n_cols stamps of one class in increasing SNR (bins for real, quantiles for bogus)."""
    index = ALL_CLASSES.index(cls)
    per_bin = max(n_cols // (len(SNR_BINS) - 1), 1)
    if is_real(cls):
        out = []
        for i in range(n_cols):
            k = min(i // per_bin, len(SNR_BINS) - 2)
            rng = stamp_rng(seed, STREAM_STAMPS, 1000 + index, i)
            snr = float(rng.uniform(SNR_BINS[k], SNR_BINS[k + 1]))
            out.append(make_stamp(cls, rng, cfg, fixed={"snr": snr}))
        return out
    pool = [
        make_stamp(cls, stamp_rng(seed, STREAM_STAMPS, 1000 + index, i), cfg)
        for i in range(n_cols * 3)
    ]
    pool.sort(key=lambda s: s.latents.get("snr", 0.0))
    return [pool[int(q)] for q in np.linspace(0, len(pool) - 1, n_cols)]


def write_montage(
    path: Path,
    *,
    seed: int = 0,
    per_bin: int = 2,
    classes: tuple[str, ...] = ALL_CLASSES,
    cfg: SimConfig | None = None,
) -> Path:
    """Write a PNG grid: one row per class, columns SNR bins (per_bin stamps each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    cfg = cfg or SimConfig()
    n_cols = (len(SNR_BINS) - 1) * per_bin
    fig, axes = plt.subplots(len(classes), n_cols, figsize=(n_cols * 1.1, len(classes) * 1.2))
    for row, cls in enumerate(tqdm(classes, desc="montage")):
        for col, sample in enumerate(montage_samples(cls, seed, n_cols, cfg)):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(display_scale(sample.difference), cmap="gray", origin="lower")
            ax.set_title(f"{sample.latents['snr']:.3g}", fontsize=6, pad=1)
        axes[row, 0].set_ylabel(cls, fontsize=8)
    fig.suptitle(
        f"simulated difference stamps (seed {seed}); real classes in SNR bins "
        f"{SNR_BINS}, bogus in quantiles of their strength; titles: SNR/strength",
        fontsize=8,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Display PNGs of stamps: a background-based stretch that shows faint sources, flags in colour."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

NAN_RGB = (40, 90, 220)  # blue: no data (chip edge, mask, padding)
SATURATED_RGB = (255, 60, 0)  # orange-red: at or above the stamp's saturation level


def display_limits(pixels: np.ndarray) -> tuple[float, float]:
    """Stretch limits from the background: median - 2.5 sigma to median + 6 sigma.

    Sigma comes from the median absolute deviation, so a bright source does not widen the range:
    a source at the detection limit (a few sigma in its peak pixel) stands out clearly in grey.
    """
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return 0.0, 1.0
    median = float(np.median(finite))
    sigma = 1.4826 * float(np.median(np.abs(finite - median)))
    if sigma > 0:
        return median - 2.5 * sigma, median + 6.0 * sigma
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low, low + 1.0)


def render_display_png(pixels: np.ndarray, *, saturation: float | None = None) -> bytes:
    """Render a 2-D stamp as an RGB PNG: stretched grey, NaN in blue, saturated pixels in red."""
    low, high = display_limits(pixels)
    finite = np.isfinite(pixels)
    scaled = np.clip((np.where(finite, pixels, low) - low) / (high - low), 0.0, 1.0)
    grey = (scaled * 255.0 + 0.5).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[~finite] = NAN_RGB
    if saturation is not None:
        rgb[finite & (np.where(finite, pixels, -np.inf) >= saturation)] = SATURATED_RGB
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()

"""Display PNGs of stamps: a zscale stretch that shows faint sources, flagged pixels in colour."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

NAN_RGB = (40, 90, 220)  # blue: no data (chip edge, mask, padding)
SATURATED_RGB = (255, 60, 0)  # orange-red: at or above the stamp's saturation level


def zscale_limits(pixels: np.ndarray) -> tuple[float, float]:
    """IRAF's zscale limits of the finite pixels, as astropy computes them."""
    from astropy.visualization import ZScaleInterval

    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = ZScaleInterval().get_limits(finite)
    if not high > low:
        low, high = float(finite.min()), float(finite.max())
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


def render_display_png(pixels: np.ndarray, *, saturation: float | None = None) -> bytes:
    """Render a 2-D stamp as an RGB PNG: zscale grey, NaN in blue, saturated pixels in red."""
    low, high = zscale_limits(pixels)
    finite = np.isfinite(pixels)
    scaled = np.clip((np.where(finite, pixels, low) - low) / (high - low), 0.0, 1.0)
    grey = (scaled * 255.0 + 0.5).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[~finite] = NAN_RGB
    if saturation is not None:
        rgb[finite & (np.where(finite, pixels, -np.inf) >= saturation)] = SATURATED_RGB
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()

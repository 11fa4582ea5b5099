"""Display PNGs of stamps: the stamp's own pixels (centre-cropped to at most 100x100, never
padded), zscale limits and a linear stretch as astronomers' viewers (ds9's default zscale) draw
them, flags in colours that no data value gets."""

from __future__ import annotations

import io
import posixpath

import numpy as np
from astropy.visualization import ZScaleInterval
from PIL import Image

DISPLAY_MAX_SIDE = 100  # the model's input: the display shows the pixels the model saw
NAN_RGB = (230, 0, 230)  # magenta: no data (NaN, infinite or a survey's mask value)
SATURATED_RGB = (255, 60, 0)  # orange-red: at or above the stamp's saturation level

# IRAF/ds9 zscale (n_samples=1000, contrast=0.25): about the background's range, so noise is
# smooth mid-grey and sources go to white. A linear stretch: an asinh one lifts the background
# towards white and takes contrast from faint sources (compared on the demo night's stamps).
_ZSCALE = ZScaleInterval()


def display_crop(pixels: np.ndarray, side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """The centre of a 2-D stamp, at most `side` x `side` (the same centre as the model's input);
    a smaller stamp is returned whole, not padded."""
    slices = []
    for n in pixels.shape:
        start = max(0, (n - side) // 2)
        slices.append(slice(start, start + min(n, side)))
    return pixels[tuple(slices)]


def display_limits(pixels: np.ndarray) -> tuple[float, float]:
    """zscale limits of the finite pixels (the background's range; sources go to white)."""
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in _ZSCALE.get_limits(finite))
    if high > low:
        return low, high
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low, low + 1.0)


GREY_LEVELS = 254  # palette entries 0..253 are grey; the last two are the flag colours
_NAN_INDEX, _SATURATED_INDEX = GREY_LEVELS, GREY_LEVELS + 1
_PALETTE = (
    [round(v * 255 / (GREY_LEVELS - 1)) for v in range(GREY_LEVELS) for _ in range(3)]
    + list(NAN_RGB)
    + list(SATURATED_RGB)
)


def render_display_png(pixels: np.ndarray, *, saturation: float | None = None) -> bytes:
    """Render a 2-D stamp of any size, as received, as a PNG of its central (at most) 100x100
    pixels: zscale, linear grey, missing data in magenta, saturated pixels in orange-red.

    A palette PNG (one byte per pixel: 254 grey levels and the two flag colours) encodes about
    three times faster than RGB and is a third of the size.
    """
    pixels = display_crop(np.asarray(pixels, dtype=np.float64))
    finite = np.isfinite(pixels)
    low, high = display_limits(pixels)
    scaled = np.clip((np.where(finite, pixels, low) - low) / (high - low), 0.0, 1.0)
    index = (scaled * (GREY_LEVELS - 1) + 0.5).astype(np.uint8)
    index[~finite] = _NAN_INDEX
    if saturation is not None:
        index[finite & (np.where(finite, pixels, -np.inf) >= saturation)] = _SATURATED_INDEX
    image = Image.fromarray(index, mode="P")
    image.putpalette(_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


# --- made on first view ------------------------------------------------------------------------


def display_name(detection, stamp_bytes: bytes | None = None) -> str:
    """The stored display PNG of a detection (a `screening.models.Detection`), made from its
    stamp on first view and kept in storage: ingest writes no PNG (most stamps of a night are
    never looked at), and every later view reads the kept one."""
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from classifier.stamp_io import read_stamp
    from screening.models import Detection
    from screening.tracklet_files import SUFFIX as TRACKLET_SUFFIX
    from screening.tracklet_files import read_stamp_bytes

    if detection.display.name:
        return detection.display.name
    data = stamp_bytes or read_stamp_bytes(detection.stamp, detection.index)
    stamp = read_stamp(data, max_side=settings.STAMP_MAX_SIDE)
    png = render_display_png(stamp.pixels, saturation=stamp.saturation)
    name = detection.stamp.name
    folder, base = posixpath.split(name.removeprefix("tracklets/").removeprefix("stamps/"))
    stem = base.split(".", 1)[0]  # 2026-11-20/<hash>.zip, stamp 0: 2026-11-20/<hash>-0.png
    if name.endswith(TRACKLET_SUFFIX):  # (stamps/2026-11-20/<hash>-0.fits.gz before it)
        stem = f"{stem}-{detection.index}"
    name = default_storage.save(posixpath.join("display", folder, f"{stem}.png"), ContentFile(png))
    if Detection.objects.filter(pk=detection.pk, display="").update(display=name):
        detection.display.name = name
        return name
    default_storage.delete(name)  # another view made it first: serve that one
    detection.refresh_from_db(fields=["display"])
    return detection.display.name


def display_png(detection) -> bytes:
    """The display PNG's bytes (made on first view, see `display_name`)."""
    from django.core.files.storage import default_storage

    with default_storage.open(display_name(detection), "rb") as handle:
        return handle.read()


def displays_make(tracklet_ids: list[int]) -> int:
    """Make the display PNGs these tracklets' stamps lack (a queue page's, before it is shown);
    returns how many were made. A stamp that cannot be drawn is left to its own request, which
    answers its error."""
    from screening.models import Detection

    return displays_draw(
        Detection.objects.filter(tracklet_id__in=tracklet_ids, display="").only(
            "id", "tracklet_id", "index", "stamp", "display"
        )
    )


def displays_draw(detections) -> int:
    """Draw these detections' missing display PNGs (rows with at least id, index, stamp and
    display loaded), reading each tracklet's file once; returns how many were made."""
    from screening.tracklet_files import read_stamps_bytes

    made = 0
    by_file: dict[str, list] = {}
    for detection in detections:
        if detection.display:
            continue
        by_file.setdefault(detection.stamp.name, []).append(detection)
    for detections in by_file.values():  # a tracklet's file read once for all its stamps
        try:
            stamps = read_stamps_bytes(detections[0].stamp, [d.index for d in detections])
        except Exception:  # noqa: BLE001 - left to each stamp's own request, which says why
            continue
        for detection in detections:
            try:
                display_name(detection, stamps[detection.index])
            except Exception:  # noqa: BLE001 - one bad stamp must not take the page down
                continue
            made += 1
    return made

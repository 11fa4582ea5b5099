"""Read difference-image stamps (FITS, PNG, NumPy) from bytes and fit them to the model's input.

This module needs only numpy, astropy and Pillow, so the web process can use it without torch.

The input rule, applied to every stamp whatever its size: the model sees a ``INPUT_SIZE`` x
``INPUT_SIZE`` float32 array. A larger side is centre-cropped (the detection is at the centre of a
survey cutout); a smaller side is padded with NaN (missing data) equally on both sides, the odd
pixel going after. Pixel values are not rescaled here: normalisation is the classifier's
preprocessing preset, stored with each model.

The missing-data rule, applied once here so that the model input and the display agree: a pixel
that is NaN, infinite, or whose absolute value is at least ``MASK_THRESHOLD`` (1e30) is missing
data and becomes NaN in ``Stamp.pixels``. Surveys mark masked pixels with the float32 extreme
(-3.4e38 in ZTF alert templates) as well as with NaN; no real flux comes near 1e30.

FITS scaling (physical value = BZERO + BSCALE x stored value) is done here, never by astropy in
float32: integer data with BSCALE 1 and a whole BZERO (unsigned 16, 32 and 64-bit as FITS stores
them, BZERO 2**15, 2**31, 2**63) are offset exactly in integers, anything else is scaled in
float64; BLANK marks missing integer pixels. Only then are the values rounded once to float32,
the model's type: integers up to 2**24 exactly, larger ones to the nearest float32 (a relative
error under 6e-8). A BSCALE or BZERO that takes a stored value to 1e30 or more (the mask level,
beyond float32 at 3.4e38) is refused, naming both, rather than turned into missing data.

Every malformed file is a ``StampError`` naming what is wrong: a FITS header whose NAXIS, NAXISn,
BITPIX, BSCALE or BZERO is not a valid value (named), a header without END, data shorter than the
header declares ("FITS data are truncated: ..."; astropy's zero-filling of truncated data is an
error here too), a PNG that is too large, truncated or has broken chunks, a .npy array that is
not of an integer or float dtype (bool, complex, strings, objects, structured: named), and any
other error a decoder (astropy, Pillow, numpy) raises on bad input.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

INPUT_SIZE = 100
MAX_SIDE = 1024
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
MASK_THRESHOLD = 1e30  # |value| >= this is a mask value (missing data), like NaN
MAX_HEADER_CARDS = 36 * 200  # 200 header blocks: far more than any survey stamp's header

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"


class StampError(ValueError):
    """A stamp that cannot be used, with the reason in words a pipeline operator understands."""


@dataclass(frozen=True)
class Stamp:
    """A decoded stamp: its pixels as received, the format, and the saturation level if known."""

    pixels: np.ndarray
    format: str
    saturation: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))


def read_stamp(data: bytes, *, max_side: int = MAX_SIDE) -> Stamp:
    """Decode a FITS (plain or gzip), PNG or .npy stamp; raise StampError naming what is wrong."""
    if not data:
        raise StampError("file is empty")
    compressed = data.startswith(GZIP_MAGIC)
    if compressed:
        data = _gunzip(data)
    if data.startswith(FITS_MAGIC):
        kind, reader = "FITS", _read_fits
    elif data.startswith(PNG_MAGIC) and not compressed:
        kind, reader = "PNG", _read_png
    elif data.startswith(NPY_MAGIC):
        kind, reader = ".npy", _read_npy
    else:
        what = "gzip content" if compressed else "file"
        raise StampError(f"{what} is not a FITS, PNG or NumPy .npy stamp (unrecognised header)")
    try:
        stamp = reader(data, max_side=max_side)
    except StampError:
        raise
    except Exception as exc:  # a decoder's error on bad input is the file's problem
        raise StampError(f"{kind} file cannot be read ({type(exc).__name__}: {exc})") from exc
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, a mask value
        pixels = np.array(stamp.pixels, dtype=np.float32)
    if pixels.ndim != 2:
        raise StampError(f"image must be 2-D, got shape {pixels.shape}")
    with np.errstate(invalid="ignore"):
        pixels[~(np.abs(pixels) < MASK_THRESHOLD)] = np.nan  # NaN, inf and mask values
    if not np.isfinite(pixels).any():
        raise StampError("stamp has no finite pixel (all NaN, infinite or masked)")
    return Stamp(pixels=pixels, format=stamp.format, saturation=stamp.saturation)


def fit_to_input(pixels: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Centre-crop or NaN-pad a 2-D array to size x size float32 (the documented input rule)."""
    out = np.full((size, size), np.nan, dtype=np.float32)
    src_slices, dst_slices = [], []
    for n in pixels.shape:
        if n >= size:
            start = (n - size) // 2
            src_slices.append(slice(start, start + size))
            dst_slices.append(slice(0, size))
        else:
            start = (size - n) // 2
            src_slices.append(slice(0, n))
            dst_slices.append(slice(start, start + n))
    out[tuple(dst_slices)] = pixels[tuple(src_slices)]
    out[~np.isfinite(out)] = np.nan
    return out


def _gunzip(data: bytes) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise StampError(f"not a valid gzip stream ({exc})") from exc
    if len(out) > MAX_DECOMPRESSED_BYTES:
        if out.startswith(FITS_MAGIC) and _fits_primary_shape(out):
            _check_shape(_fits_primary_shape(out), max_side=MAX_SIDE)
        raise StampError(
            f"gzip content is larger than {MAX_DECOMPRESSED_BYTES // 2**20} MiB uncompressed"
        )
    if not decompressor.eof:
        raise StampError("gzip stream is truncated (ends before its end-of-stream marker)")
    return out


def _fits_primary_header(data: bytes) -> tuple[dict[str, str], int] | None:
    """The primary header's cards (keyword to raw value) and where its data starts, or None."""
    cards: dict[str, str] = {}
    for start in range(0, min(len(data), 80 * MAX_HEADER_CARDS), 80):
        card = data[start : start + 80].decode("ascii", "replace")
        if card.rstrip() == "END":
            data_start = (start // 2880 + 1) * 2880
            return cards, data_start
        if card[8:10] == "= ":
            value = card[10:]
            if not value.lstrip().startswith("'"):
                value = value.split("/")[0]
            cards.setdefault(card[:8].strip(), value.strip())
    return None


def _fits_primary_shape(data: bytes) -> tuple[int, ...]:
    """NAXISn of a FITS primary header, read from its cards (no data needed); () if unknown."""
    header = _fits_primary_header(data)
    try:
        cards = header[0] if header else {}
        return tuple(int(cards[f"NAXIS{i}"]) for i in range(int(cards["NAXIS"]), 0, -1))
    except (KeyError, ValueError):
        return ()


_FITS_DTYPES = {-32: ">f4", -64: ">f8", 8: "u1", 16: ">i2", 32: ">i4", 64: ">i8"}
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _int_card(cards: dict[str, str], key: str, *, low: int, high: int, what: str) -> int:
    raw = cards[key]
    if not _INTEGER.match(raw) or not low <= int(raw) <= high:
        raise StampError(f"FITS header {key} must be {what}, got {raw!r}")
    return int(raw)


def _float_card(cards: dict[str, str], key: str, default: float) -> float:
    if key not in cards:
        return default
    raw = cards[key]
    try:
        value = float(raw.replace("D", "E").replace("d", "e"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise StampError(f"FITS header {key} must be a finite number, got {raw!r}")
    return value


@dataclass(frozen=True)
class _PrimaryHeader:
    cards: dict[str, str]
    data_start: int
    bitpix: int | None
    shape: tuple[int, ...]  # NAXISn, slowest axis first; () when NAXIS is 0 or absent


def _check_primary_header(data: bytes) -> _PrimaryHeader:
    """Validate the primary header's structural keywords, naming the one that is wrong."""
    header = _fits_primary_header(data)
    if header is None:
        raise StampError("FITS header has no END card (the header is truncated or not FITS)")
    cards, data_start = header
    bitpix = None
    if "BITPIX" in cards:
        raw = cards["BITPIX"]
        if not _INTEGER.match(raw) or int(raw) not in _FITS_DTYPES:
            raise StampError(
                f"FITS header BITPIX must be one of 8, 16, 32, 64, -32, -64, got {raw!r}"
            )
        bitpix = int(raw)
    shape: tuple[int, ...] = ()
    if "NAXIS" in cards:
        naxis = _int_card(cards, "NAXIS", low=0, high=999, what="an integer from 0 to 999")
        sides = []
        for i in range(1, naxis + 1):
            if f"NAXIS{i}" not in cards:
                raise StampError(f"FITS header NAXIS{i} is missing (NAXIS = {naxis})")
            sides.append(
                _int_card(cards, f"NAXIS{i}", low=0, high=2**31 - 1, what="a non-negative integer")
            )
        shape = tuple(reversed(sides))
        if naxis and bitpix is None:
            raise StampError("FITS header BITPIX is missing")
    _float_card(cards, "BSCALE", 1.0)
    _float_card(cards, "BZERO", 0.0)
    if shape and bitpix is not None:
        expected = math.prod(shape) * abs(bitpix) // 8
        held = max(0, len(data) - data_start)
        if held < expected:
            raise StampError(
                f"FITS data are truncated: header says {expected} bytes of data, file holds {held}"
            )
    return _PrimaryHeader(cards=cards, data_start=data_start, bitpix=bitpix, shape=shape)


def _read_simple_fits(data: bytes, *, max_side: int) -> Stamp | None:
    """Fast path for the common case, a plain 2-D primary image; None means 'ask astropy'."""
    header = _check_primary_header(data)
    cards, shape, bitpix = header.cards, header.shape, header.bitpix
    if bitpix is None or len(shape) < 2 or "BLANK" in cards or math.prod(shape) == 0:
        return None
    height, width = _check_shape(shape, max_side=max_side)
    scale = _float_card(cards, "BSCALE", 1.0)
    zero = _float_card(cards, "BZERO", 0.0)
    count = height * width
    dtype = np.dtype(_FITS_DTYPES[bitpix])
    stored = np.frombuffer(data, dtype=dtype, count=count, offset=header.data_start)
    pixels = _physical(stored, scale=scale, zero=zero, blank=None).reshape(height, width)
    try:
        saturation = float(cards["SATURATE"].replace("D", "E")) if "SATURATE" in cards else None
    except ValueError:
        saturation = None
    if saturation is not None and not math.isfinite(saturation):
        saturation = None
    return Stamp(pixels=pixels, format="fits", saturation=saturation)


def _physical(stored: np.ndarray, *, scale: float, zero: float, blank: int | None) -> np.ndarray:
    """FITS physical values, BZERO + BSCALE x stored, as float32 with NaN for missing pixels
    (unscaled float data: as stored, for read_stamp to round and mask).

    Offset exactly (integers) or scaled in float64, then rounded to float32 once. Never scaled in
    float32, which rounds unsigned 32-bit pixels to steps of 128 (0 to 63 all become 0) and makes
    a BSCALE beyond float32 infinite, so that 0 x BSCALE is NaN. A stored value that is itself
    missing (integer BLANK; float NaN, infinite or a mask value) stays missing; a stored value that
    scaling takes to MASK_THRESHOLD or beyond is a StampError naming BSCALE and BZERO (no real
    flux is that large: the header is wrong)."""
    if stored.dtype.kind in "iu":
        missing = stored == blank if blank is not None else None
        values = _offset_exactly(stored, scale=scale, zero=zero)
        if values is not None:  # |value| < 2**64: far below the mask level, no check needed
            pixels = values.astype(np.float32)
            if missing is not None:
                pixels[missing] = np.nan
            return pixels
        wide = stored.astype(np.float64)
    elif scale == 1.0 and zero == 0.0:
        return stored  # as stored; read_stamp rounds it and applies the missing-data rule
    else:
        wide = stored.astype(np.float64)
        with np.errstate(invalid="ignore"):
            missing = ~(np.abs(wide) < MASK_THRESHOLD)
    with np.errstate(over="ignore", invalid="ignore"):
        wide = wide * scale + zero
        too_large = ~(np.abs(wide) < MASK_THRESHOLD)
    if missing is not None:
        too_large &= ~missing
    if too_large.any():
        worst = wide[too_large][np.argmax(np.abs(wide[too_large]))]
        raise StampError(
            f"FITS header BSCALE = {scale:g} and BZERO = {zero:g} scale a stored pixel to "
            f"{worst:g}; pixel values must stay below {MASK_THRESHOLD:g} in magnitude (the "
            "model reads float32, whose largest value is 3.4e38)"
        )
    if missing is not None:
        wide[missing] = np.nan
    return wide.astype(np.float32)


def _offset_exactly(stored: np.ndarray, *, scale: float, zero: float) -> np.ndarray | None:
    """Integer pixels plus a whole BZERO, in integers (exact), when BSCALE is 1; else None."""
    if scale != 1.0 or zero != int(zero):
        return None
    offset = int(zero)
    native = stored.astype(stored.dtype.newbyteorder("="))
    if stored.dtype.itemsize == 8:  # 64-bit: only the unsigned convention (or none) fits
        if offset == 0:
            return native
        if offset == 2**63 and native.dtype.kind == "i":
            return native.view(np.uint64) ^ np.uint64(2**63)
        return None
    if abs(offset) > 2**62:
        return None
    return native.astype(np.int64) + offset


def _check_shape(shape: tuple[int, ...], *, max_side: int) -> tuple[int, int]:
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise StampError(f"image shape {shape} has a negative side")
    dims = tuple(n for n in shape if n != 1) if len(shape) > 2 else shape
    if len(dims) != 2:
        raise StampError(f"image must be 2-D, got shape {shape}")
    height, width = dims
    if height == 0 or width == 0:
        raise StampError("image has no pixels")
    if height > max_side or width > max_side:
        raise StampError(
            f"image is {width}x{height} pixels; the largest accepted is {max_side}x{max_side}"
        )
    return height, width


def _read_fits(data: bytes, *, max_side: int) -> Stamp:
    simple = _read_simple_fits(data, max_side=max_side)
    if simple is not None:
        return simple
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    with warnings.catch_warnings():
        # Astropy zero-fills truncated data with a warning: here that is an error. Real survey
        # files often bend the standard (ZTF's SIMPLE card); astropy copes, so those pass.
        warnings.simplefilter("error", AstropyUserWarning)
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        try:
            return _read_fits_hdus(fits, data, max_side=max_side)
        except AstropyUserWarning as exc:
            text = str(exc)
            if "truncated" in text:
                raise StampError(f"FITS data are truncated: {text}") from exc
            raise StampError(f"FITS file cannot be read ({text})") from exc


def _read_fits_hdus(fits, data: bytes, *, max_side: int) -> Stamp:
    try:
        with fits.open(
            io.BytesIO(data),
            memmap=False,
            lazy_load_hdus=True,
            do_not_scale_image_data=True,  # scaled by _physical, not in float32
            uint=False,
        ) as hdus:
            for hdu in hdus:
                naxis = int(hdu.header.get("NAXIS", 0))
                if naxis < 2 or not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU):
                    continue
                for i in range(1, naxis + 1):
                    side = hdu.header.get(f"NAXIS{i}")
                    if not isinstance(side, int) or isinstance(side, bool) or side < 0:
                        raise StampError(
                            f"FITS header NAXIS{i} must be a non-negative integer, got {side!r}"
                        )
                shape = tuple(int(hdu.header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
                if math.prod(shape) == 0:
                    continue
                height, width = _check_shape(shape, max_side=max_side)
                stored = hdu.data  # as stored: opened with do_not_scale_image_data
                if stored is None:
                    continue
                scale, zero, blank = _scaling(hdu.header, integer=stored.dtype.kind in "iu")
                pixels = _physical(np.asarray(stored), scale=scale, zero=zero, blank=blank)
                pixels = pixels.reshape(height, width)
                saturate = hdu.header.get("SATURATE")
                saturation = (
                    float(saturate)
                    if isinstance(saturate, int | float) and math.isfinite(saturate)
                    else None
                )
                return Stamp(pixels=pixels, format="fits", saturation=saturation)
    except (StampError, Warning):
        raise
    except Exception as exc:
        raise StampError(f"FITS file cannot be read ({exc})") from exc
    raise StampError("FITS file has no 2-D image HDU")


def _scaling(header, *, integer: bool) -> tuple[float, float, int | None]:
    """BSCALE, BZERO and (for integer data) BLANK of an HDU's header, checked."""
    numbers = []
    for key, default in (("BSCALE", 1.0), ("BZERO", 0.0)):
        value = header.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StampError(f"FITS header {key} must be a finite number, got {value!r}")
        if not math.isfinite(value):
            raise StampError(f"FITS header {key} must be a finite number, got {value!r}")
        numbers.append(float(value))
    blank = header.get("BLANK") if integer else None
    if blank is not None and (isinstance(blank, bool) or not isinstance(blank, int)):
        raise StampError(f"FITS header BLANK must be an integer, got {blank!r}")
    return numbers[0], numbers[1], blank


def _read_png(data: bytes, *, max_side: int) -> Stamp:
    from PIL import Image

    if data[12:16] != b"IHDR" or len(data) < 24:
        raise StampError("PNG file has no IHDR chunk where it must be (right after the signature)")
    width, height = struct.unpack(">II", data[16:24])
    _check_shape((height, width), max_side=max_side)  # before Pillow: no decompression bombs
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            _check_shape((image.height, image.width), max_side=max_side)
            image.load()
            if image.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F"):
                image = image.convert("L")
            pixels = np.asarray(image, dtype=np.float32)
    return Stamp(pixels=pixels, format="png")


def _read_npy(data: bytes, *, max_side: int) -> Stamp:
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(buffer)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(buffer)
    except (ValueError, OSError) as exc:
        raise StampError(f".npy file cannot be read ({exc})") from exc
    if dtype.hasobject or dtype.kind not in "iuf":  # not bool, complex, text, dates, records
        raise StampError(
            f".npy array must be numeric (an integer or float dtype), got dtype {dtype}"
        )
    _check_shape(shape, max_side=max_side)
    buffer.seek(0)
    try:
        array = np.load(buffer, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StampError(f".npy file cannot be read ({exc})") from exc
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, a mask value
        pixels = np.asarray(array, dtype=np.float32)
    return Stamp(pixels=pixels.reshape(_check_shape(pixels.shape, max_side=max_side)), format="npy")

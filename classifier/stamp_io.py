"""Read difference-image stamps (FITS, PNG, NumPy) from bytes and fit them to the model's input.

This module needs only numpy, astropy and Pillow, so the web process can use it without torch.

The input rule, applied to every stamp whatever its size: the model sees a ``INPUT_SIZE`` x
``INPUT_SIZE`` float32 array. A larger side is centre-cropped (the detection is at the centre of a
survey cutout); a smaller side is padded with NaN (missing data) equally on both sides, the odd
pixel going after. Pixel values are not rescaled here: normalisation is the classifier's
preprocessing preset, stored with each model.
"""

from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

INPUT_SIZE = 100
MAX_SIDE = 1024
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024

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
        stamp = _read_fits(data, max_side=max_side)
    elif data.startswith(PNG_MAGIC) and not compressed:
        stamp = _read_png(data, max_side=max_side)
    elif data.startswith(NPY_MAGIC):
        stamp = _read_npy(data, max_side=max_side)
    else:
        kind = "gzip content" if compressed else "file"
        raise StampError(f"{kind} is not a FITS, PNG or NumPy .npy stamp (unrecognised header)")
    if not np.isfinite(stamp.pixels).any():
        raise StampError("stamp has no finite pixel (all NaN or infinite)")
    return stamp


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
    for start in range(0, min(len(data), 2880 * 20), 80):
        card = data[start : start + 80].decode("ascii", "replace")
        if card.rstrip() == "END":
            data_start = (start // 2880 + 1) * 2880
            return cards, data_start
        if card[8:10] == "= ":
            value = card[10:]
            if not value.lstrip().startswith("'"):
                value = value.split("/")[0]
            cards[card[:8].strip()] = value.strip()
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


def _read_simple_fits(data: bytes, *, max_side: int) -> Stamp | None:
    """Fast path for the common case, a plain 2-D primary image; None means 'ask astropy'."""
    header = _fits_primary_header(data)
    if header is None:
        return None
    cards, data_start = header
    try:
        bitpix = int(cards["BITPIX"])
        shape = _fits_primary_shape(data)
        scale = float(cards.get("BSCALE", "1").replace("D", "E"))
        zero = float(cards.get("BZERO", "0").replace("D", "E"))
    except (KeyError, ValueError):
        return None
    if bitpix not in _FITS_DTYPES or len(shape) < 2 or "BLANK" in cards:
        return None
    height, width = _check_shape(shape, max_side=max_side)
    count = height * width
    dtype = np.dtype(_FITS_DTYPES[bitpix])
    if len(data) < data_start + count * dtype.itemsize:
        return None
    pixels = np.frombuffer(data, dtype=dtype, count=count, offset=data_start)
    pixels = pixels.astype(np.float32).reshape(height, width)
    if scale != 1.0 or zero != 0.0:
        pixels = (pixels * scale + zero).astype(np.float32)
    try:
        saturation = float(cards["SATURATE"].replace("D", "E")) if "SATURATE" in cards else None
    except ValueError:
        saturation = None
    return Stamp(pixels=pixels, format="fits", saturation=saturation)


def _check_shape(shape: tuple[int, ...], *, max_side: int) -> tuple[int, int]:
    dims = tuple(int(n) for n in shape if int(n) != 1) if len(shape) > 2 else tuple(shape)
    if len(dims) != 2:
        raise StampError(f"image must be 2-D, got shape {tuple(int(n) for n in shape)}")
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

    with warnings.catch_warnings():
        # Real survey files often bend the standard (ZTF's SIMPLE card); astropy copes.
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        return _read_fits_hdus(fits, data, max_side=max_side)


def _read_fits_hdus(fits, data: bytes, *, max_side: int) -> Stamp:
    try:
        with (
            warnings.catch_warnings(),
            fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True) as hdus,
        ):
            for hdu in hdus:
                naxis = int(hdu.header.get("NAXIS", 0))
                if naxis < 2 or not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU):
                    continue
                shape = tuple(int(hdu.header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
                height, width = _check_shape(shape, max_side=max_side)
                pixels = hdu.data
                if pixels is None:
                    continue
                pixels = np.asarray(pixels, dtype=np.float32).reshape(height, width)
                saturate = hdu.header.get("SATURATE")
                saturation = float(saturate) if isinstance(saturate, int | float) else None
                return Stamp(pixels=pixels, format="fits", saturation=saturation)
    except StampError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise StampError(f"FITS file cannot be read ({exc})") from exc
    raise StampError("FITS file has no 2-D image HDU")


def _read_png(data: bytes, *, max_side: int) -> Stamp:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_shape((image.height, image.width), max_side=max_side)
            if image.mode not in ("L", "I", "I;16", "I;16B", "F"):
                image = image.convert("L")
            pixels = np.asarray(image, dtype=np.float32)
    except StampError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise StampError(f"PNG file cannot be read ({exc})") from exc
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
    if dtype.hasobject or dtype.kind not in "biuf":
        raise StampError(f".npy array must be numeric, got dtype {dtype}")
    _check_shape(shape, max_side=max_side)
    buffer.seek(0)
    try:
        array = np.load(buffer, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StampError(f".npy file cannot be read ({exc})") from exc
    pixels = np.asarray(array, dtype=np.float32)
    return Stamp(pixels=pixels.reshape(_check_shape(pixels.shape, max_side=max_side)), format="npy")

"""Stamp decoding and the input rule, on real ZTF files and on every kind of bad file."""

from __future__ import annotations

import gzip
import io
import re

import numpy as np
import pytest
from astropy.io import fits

from classifier.stamp_io import StampError, fit_to_input, read_stamp
from tests.conftest import ZTF_DIR
from tests.stamps import fits_bytes, npy_bytes, png_bytes, stamp_pixels

pytestmark = pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
ZTF_DIFFERENCES = sorted(ZTF_DIR.glob("*_difference.fits.gz"))


def test_it_has_the_real_ztf_cutouts_to_test_with():
    assert len(ZTF_DIFFERENCES) >= 50


@pytest.mark.parametrize("path", ZTF_DIFFERENCES, ids=lambda p: p.name.split("_")[0])
def test_it_reads_every_real_ztf_difference_cutout(path):
    raw = path.read_bytes()
    stamp = read_stamp(raw)
    with fits.open(io.BytesIO(gzip.decompress(raw))) as hdus:
        expected = hdus[0].data.astype(np.float32)
    assert stamp.format == "fits"
    assert stamp.shape == expected.shape == (63, 63)
    np.testing.assert_array_equal(np.isnan(stamp.pixels), np.isnan(expected))
    np.testing.assert_allclose(stamp.pixels[np.isfinite(expected)], expected[np.isfinite(expected)])


def test_it_reads_both_endiannesses_to_the_same_values():
    pixels = stamp_pixels(1)
    big = read_stamp(fits_bytes(pixels, big_endian=True)).pixels
    little = read_stamp(fits_bytes(pixels, big_endian=False, gz=True)).pixels
    np.testing.assert_array_equal(big, pixels)
    np.testing.assert_array_equal(little, pixels)


def test_it_reads_png_and_npy_stamps():
    pixels = stamp_pixels(2)
    assert read_stamp(npy_bytes(pixels)).pixels.shape == (100, 100)
    png = read_stamp(png_bytes(pixels))
    assert png.format == "png" and png.shape == (100, 100)
    assert np.corrcoef(png.pixels.ravel(), pixels.ravel())[0, 1] > 0.999


def test_it_keeps_the_saturation_level_from_the_fits_header():
    assert read_stamp(fits_bytes(stamp_pixels(3), saturate=5000.0)).saturation == 5000.0


def test_it_pads_small_stamps_with_nan_around_the_centre():
    fitted = fit_to_input(np.ones((63, 63), dtype=np.float32))
    assert fitted.shape == (100, 100)
    assert np.isnan(fitted[:18]).all() and np.isnan(fitted[81:]).all()
    assert (fitted[18:81, 18:81] == 1).all()


def test_it_crops_large_stamps_around_the_centre():
    big = np.zeros((301, 300), dtype=np.float32)
    big[150, 150] = 7.0
    fitted = fit_to_input(big)
    assert fitted.shape == (100, 100)
    assert fitted[50, 50] == 7.0 and np.nansum(fitted) == 7.0


def _zeros_fits(shape: tuple[int, int]) -> bytes:
    return gzip.compress(fits_bytes(np.zeros(shape, dtype=np.float32)), mtime=0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "file is empty"),
        (gzip.compress(fits_bytes(stamp_pixels(4)))[:900], "truncated"),
        (fits_bytes(np.full((100, 100), np.nan, dtype=np.float32)), "no finite pixel"),
        (_zeros_fits((10000, 10000)), "10000x10000 pixels; the largest accepted is 1024x1024"),
        (b"hello world, not an image", "not a FITS, PNG or NumPy"),
        (b"\x1f\x8bnot really gzip at all", "not a valid gzip stream"),
        (npy_bytes(np.zeros((4, 4, 4))), "must be 2-D"),
        (npy_bytes(np.array([{"a": 1}], dtype=object)), "must be numeric"),
    ],
    ids=[
        "empty",
        "truncated-gzip",
        "nan-only",
        "10000x10000",
        "garbage",
        "bad-gzip",
        "3d",
        "pickle",
    ],
)
def test_it_rejects_bad_stamps_with_a_reason(data, reason):
    with pytest.raises(StampError, match=reason):
        read_stamp(data)


def test_it_rejects_a_fits_file_with_no_image():
    header_only = io.BytesIO()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))]),
        ]
    ).writeto(header_only)
    with pytest.raises(StampError, match="no 2-D image HDU"):
        read_stamp(header_only.getvalue())


def test_it_reads_an_image_in_an_extension_when_the_primary_is_empty():
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(stamp_pixels(5))]).writeto(buffer)
    assert read_stamp(buffer.getvalue()).shape == (100, 100)


# FITS scaling: exact for integers, float64 otherwise, rounded to float32 (the model's type) once.
# Expected values are the exact integers rounded once to float32: 0 to 2**24 exactly, larger ones
# to the nearest float32.


def _integer_pixels(dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    values = np.zeros(20 * 20, dtype=dtype)
    values[:64] = np.arange(64)  # scaled in float32, uint32's 0..63 all became 0
    big = [info.max, info.max - 1, info.max // 2 + 1, info.max // 3, 2**24 + 1, 2**24 - 1]
    big = [v for v in big if v <= info.max]
    values[64 : 64 + len(big)] = big
    if info.min < 0:
        values[80:83] = [info.min, info.min + 1, -1]
    return values.reshape(20, 20)


def _image_fits(stored: np.ndarray, *, extension: bool = False, **cards) -> bytes:
    """FITS bytes as astropy writes them (uint16/32/64: BZERO 2**15, 2**31, 2**63), in the primary
    HDU (the fast path) or an extension (astropy's path); `cards` added to the image's header."""
    hdu = fits.ImageHDU(stored) if extension else fits.PrimaryHDU(stored)
    for key, value in cards.items():
        hdu.header[key] = value
    hdus = fits.HDUList([fits.PrimaryHDU(), hdu] if extension else [hdu])
    buffer = io.BytesIO()
    hdus.writeto(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("extension", [False, True], ids=["primary", "extension"])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64, np.int16, np.int32, np.int64])
def test_it_reads_integer_fits_exactly_then_rounds_to_float32_once(dtype, extension):
    stored = _integer_pixels(dtype)
    raw = _image_fits(stored, extension=extension)
    if dtype == np.uint32:  # the case of the issue: BITPIX 32 with BZERO 2**31
        header = fits.getheader(io.BytesIO(raw), ext=int(extension))
        assert header["BITPIX"] == 32 and header["BZERO"] == 2**31
    pixels = read_stamp(raw).pixels
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels.ravel()[:64], np.arange(64, dtype=np.float32))
    np.testing.assert_array_equal(pixels, stored.astype(np.float32))


@pytest.mark.parametrize("extension", [False, True], ids=["primary", "extension"])
def test_it_scales_in_float64_so_a_huge_bscale_keeps_zeros_and_valid_values(extension):
    stored = (stamp_pixels(6) * 1e-13).astype(np.float32)
    stored[:10] = 0.0
    raw = _image_fits(stored, extension=extension, BSCALE=1e40)  # beyond float32 (3.4e38)
    pixels = read_stamp(raw).pixels
    assert np.isfinite(pixels).all()  # no inf x 0 = NaN
    assert (pixels[:10] == 0).all()
    expected = (stored.astype(np.float64) * 1e40).astype(np.float32)
    np.testing.assert_allclose(pixels, expected, rtol=1e-6)


@pytest.mark.parametrize("extension", [False, True], ids=["primary", "extension"])
@pytest.mark.parametrize(
    ("cards", "stored"),
    [
        ({"BSCALE": 1e39}, np.arange(400, dtype=np.int16).reshape(20, 20)),
        ({"BSCALE": 1e20}, np.full((20, 20), 1e12, dtype=np.float32)),
        ({"BZERO": 1e31}, np.zeros((20, 20), dtype=np.int32)),
        ({"BSCALE": 1e300, "BZERO": 1.0}, np.full((20, 20), 1e10, dtype=np.float64)),
    ],
    ids=["int16-bscale-1e39", "float-bscale-1e20", "bzero-1e31", "float64-overflow"],
)
def test_it_refuses_a_scaling_beyond_the_models_range_naming_bscale(cards, stored, extension):
    raw = _image_fits(stored, extension=extension, **cards)
    with pytest.raises(StampError, match=r"FITS header BSCALE = \S+ and BZERO = \S+ scale"):
        read_stamp(raw)


def test_scaling_keeps_stored_mask_values_and_blank_pixels_missing():
    masked = stamp_pixels(7)
    masked[0, :5] = [np.nan, np.inf, -3.4e38, 3.4e38, 1e31]
    pixels = read_stamp(_image_fits(masked, BSCALE=2.0, BZERO=1.0)).pixels
    assert np.isnan(pixels[0, :5]).all()
    np.testing.assert_allclose(pixels[1:], masked[1:].astype(np.float64) * 2 + 1, rtol=1e-6)
    stored = np.arange(400, dtype=np.int16).reshape(20, 20)
    for extension in (False, True):
        raw = _image_fits(stored, extension=extension, BLANK=7, BZERO=32768)
        blanked = read_stamp(raw).pixels
        assert np.isnan(blanked.ravel()[7]) and np.isfinite(np.delete(blanked.ravel(), 7)).all()
        np.testing.assert_array_equal(blanked.ravel()[:7], np.arange(7) + 32768)


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.uint16, np.int32, np.int64, np.uint64, np.float16, np.float64]
)
def test_it_reads_npy_of_every_integer_and_float_dtype(dtype):
    array = (np.arange(400) % 100).astype(dtype).reshape(20, 20)
    stamp = read_stamp(npy_bytes(array))
    np.testing.assert_array_equal(stamp.pixels, array.astype(np.float32))


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((20, 20), dtype=bool),
        np.zeros((20, 20), dtype=np.complex64),
        np.full((20, 20), "abc"),
        np.full((20, 20), b"abc"),
        np.zeros((20, 20), dtype="datetime64[s]"),
        np.zeros((20, 20), dtype="timedelta64[s]"),
        np.zeros((20, 20), dtype=[("flux", "<f4"), ("mask", "u1")]),
        np.array([[1.0, 2.0]], dtype=object),
    ],
    ids=["bool", "complex", "unicode", "bytes", "datetime", "timedelta", "structured", "object"],
)
def test_it_refuses_npy_that_is_not_integer_or_float_naming_the_dtype(array):
    expected = r"\.npy array must be numeric \(an integer or float dtype\), got dtype "
    with pytest.raises(StampError, match=expected + re.escape(str(array.dtype))):
        read_stamp(npy_bytes(array))

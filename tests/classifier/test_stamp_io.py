"""Stamp decoding and the input rule, on real ZTF files and on every kind of bad file."""

from __future__ import annotations

import gzip
import io

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

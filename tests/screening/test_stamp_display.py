"""Display PNGs: the stamp's own pixels (centre, at most 100x100, never padded), zscale grey,
missing data and saturation in colours no data value gets."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from screening.review.displays import (
    _PALETTE,
    GREY_LEVELS,
    NAN_RGB,
    SATURATED_RGB,
    display_crop,
    render_display_png,
)
from tests.stamps import stamp_pixels


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_a_small_stamp_is_drawn_whole_at_its_own_size_without_padding():
    pixels = stamp_pixels(3, size=63)  # ZTF's cutouts
    image = rgb(render_display_png(pixels))
    assert image.shape == (63, 63, 3)
    assert not (image == NAN_RGB).all(axis=2).any()  # no frame of "no data"


def test_a_large_stamp_shows_its_central_100x100_the_pixels_the_model_sees():
    pixels = stamp_pixels(4, size=151)
    pixels[25, 25] = 1e6  # the first pixel of the centre crop (start (151 - 100) // 2 = 25)
    image = rgb(render_display_png(pixels, saturation=1e5))
    assert image.shape == (100, 100, 3)
    assert tuple(image[0, 0]) == SATURATED_RGB
    assert display_crop(np.zeros((40, 300))).shape == (40, 100)


def test_missing_data_and_saturation_have_colours_that_no_grey_level_has():
    greys = {tuple(_PALETTE[3 * i : 3 * i + 3]) for i in range(GREY_LEVELS)}
    assert all(r == g == b for r, g, b in greys)
    assert NAN_RGB not in greys and SATURATED_RGB not in greys and NAN_RGB != SATURATED_RGB
    pixels = stamp_pixels(5, size=63)
    pixels[:, :4] = np.nan
    pixels[30, 30] = 5e4
    image = rgb(render_display_png(pixels, saturation=4e4))
    assert (image[:, :4] == NAN_RGB).all()
    assert tuple(image[30, 30]) == SATURATED_RGB
    rest = image[:, 4:].reshape(-1, 3)
    assert ((rest == NAN_RGB).all(axis=1)).sum() == 0


def test_noise_is_smooth_mid_grey_and_a_faint_source_stands_out():
    grey = np.asarray(
        Image.open(io.BytesIO(render_display_png(stamp_pixels(6, source_flux=400.0)))).convert("L")
    )
    background = grey[:35, :35]
    assert 90 < np.median(background) < 165  # mid-grey, neither black nor washed out
    clipped = np.mean((background == 0) | (background == 255))
    assert clipped < 0.02  # zscale spans the noise: no salt-and-pepper of clipped pixels
    assert grey[48:52, 48:52].mean() > np.median(background) + 50


def test_a_stamp_without_any_finite_pixel_is_all_missing_data():
    image = rgb(render_display_png(np.full((20, 30), np.nan)))
    assert image.shape == (20, 30, 3) and (image == NAN_RGB).all()

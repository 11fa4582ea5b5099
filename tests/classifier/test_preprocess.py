"""Preprocessing presets: NaN handling, equalisation, cropping, round trip through a dict."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.preprocess import Preprocessing, prepare, prepare_tensor


def reference(stamps: np.ndarray, pre: Preprocessing, crop: bool = True) -> np.ndarray:
    """The presets written the plain way, one stamp at a time in NumPy."""
    out = []
    for stamp in np.array(stamps, dtype=np.float32):
        bad = ~np.isfinite(stamp)
        stamp[bad] = np.median(stamp[~bad]) if (~bad).any() else 0.0
        flat = stamp.ravel()
        if pre.name == "equalize":
            value = np.searchsorted(np.sort(flat), flat, side="right") / flat.size
        else:
            med = np.median(flat)
            mad = np.median(np.abs(flat - med)) * 1.4826
            value = (np.arcsinh((flat - med) / max(mad, 1e-6) / pre.softening) + 3.0) / 9.0
        image = value.astype(np.float32).reshape(stamp.shape)
        start = (pre.size - pre.crop) // 2
        out.append(image[start : start + pre.crop, start : start + pre.crop] if crop else image)
    return np.stack(out)


def awkward_stamps() -> np.ndarray:
    rng = np.random.default_rng(3)
    stamps = rng.normal(0, 10, (8, 100, 100)).astype(np.float32)
    stamps[0, :, :7] = np.nan  # a chip edge
    stamps[1, 4, 4] = np.inf
    stamps[1, 5, 5] = -np.inf
    stamps[2] = np.nan  # nothing finite
    stamps[3] = 3.0  # constant
    stamps[4] = np.round(stamps[4] / 10)  # many ties
    stamps[5, :50] = np.nan  # half missing, even count of finite pixels
    stamps[6, :, :33] = np.nan  # odd count of finite pixels
    stamps[7, 40:60, 40:60] = 65535.0  # a saturated core
    return stamps


@pytest.mark.parametrize("name", ["equalize", "asinh_sigma"])
@pytest.mark.parametrize("crop", [True, False])
def test_it_matches_the_plain_numpy_presets_exactly(name: str, crop: bool) -> None:
    pre = Preprocessing(name)
    stamps = awkward_stamps()
    expected = reference(stamps, pre, crop)
    got = prepare(stamps, pre, crop)
    assert got.dtype == np.float32 and got.shape == expected.shape
    if name == "equalize":  # ranks: exactly equal
        assert np.array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)
    assert np.isfinite(got).all()


def test_the_tensor_form_gives_the_same_images_on_its_own_device() -> None:
    import torch

    stamps = awkward_stamps()
    pre = Preprocessing()
    got = prepare_tensor(torch.from_numpy(stamps), pre)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
    assert np.array_equal(got.numpy(), reference(stamps, pre))


def test_missing_pixels_rank_as_the_median_of_the_finite_ones() -> None:
    stamps = np.arange(2 * 100 * 100, dtype=np.float32).reshape(2, 100, 100)
    stamps[0, :10] = np.nan
    out = prepare(stamps, Preprocessing(), crop=False)
    # the 1000 missing pixels sit at the median of the other 9000: just above half of them
    assert out[0, 0, 0] == pytest.approx((4500 + 1000) / 10000)
    assert out[1, 0, 0] == pytest.approx(1 / 10000)


def test_it_equalises_to_the_cumulative_fraction_and_crops() -> None:
    rng = np.random.default_rng(0)
    stamp = rng.normal(size=(1, 100, 100)).astype(np.float32)
    out = prepare(stamp, Preprocessing("equalize", crop=80))
    assert out.shape == (1, 80, 80) and out.dtype == np.float32
    full = prepare(stamp, Preprocessing("equalize"), crop=False)
    assert full.max() == pytest.approx(1.0) and full.min() == pytest.approx(1e-4)
    # monotone: the brightest pixel stays the brightest
    assert np.unravel_index(full.argmax(), full.shape) == np.unravel_index(
        stamp.argmax(), stamp.shape
    )


@pytest.mark.parametrize("name", ["equalize", "asinh_sigma"])
def test_it_handles_all_nan_edges_and_constant_stamps(name: str) -> None:
    stamps = np.zeros((2, 100, 100), dtype=np.float32)
    stamps[1, :, :50] = np.nan
    out = prepare(stamps, Preprocessing(name))
    assert np.isfinite(out).all()


def test_it_round_trips_through_a_plain_dict_and_rejects_unknown_presets() -> None:
    pre = Preprocessing("asinh_sigma", crop=64)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(ValueError):
        Preprocessing("sharpen")
    with pytest.raises(ValueError):
        prepare(np.zeros((1, 50, 50)), Preprocessing())

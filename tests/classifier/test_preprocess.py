"""Preprocessing presets: NaN handling, equalisation, cropping, round trip through a dict."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.preprocess import Preprocessing, fill_noise, prepare, prepare_tensor


def reference(stamps: np.ndarray, pre: Preprocessing, crop: bool = True) -> np.ndarray:
    """The presets written the plain way, one stamp at a time in NumPy."""
    out = []
    for stamp in np.array(stamps, dtype=np.float32):
        bad = ~np.isfinite(stamp)
        good = stamp[~bad]
        med = np.median(good) if good.size else 0.0
        if pre.name == "asinh_sigma":  # noise of the stamp's own median and robust sigma
            sigma = np.median(np.abs(good - med)) * 1.4826 if good.size else 0.0
            stamp[bad] = (med + sigma * fill_noise(pre.size))[bad]
        else:
            stamp[bad] = med
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


def test_the_sorting_form_a_gpu_takes_fills_with_the_same_level_and_spread() -> None:
    import torch

    from classifier.preprocess import _finite_stats, _sorted_stats

    flat = awkward_stamps().reshape(8, -1)
    flat[:, 0] = np.nan  # every row has a missing pixel, so `_finite_stats` fills them all
    finite = np.isfinite(flat)
    med, sigma = _finite_stats(flat, finite)
    t = torch.from_numpy(flat)
    _, med_t, sigma_t = _sorted_stats(
        t, torch.isfinite(t), torch.from_numpy(finite.sum(1)), spread=True
    )
    np.testing.assert_allclose(med_t.numpy(), med, rtol=1e-6)
    np.testing.assert_allclose(sigma_t.numpy(), sigma, rtol=1e-5)


def test_missing_pixels_rank_as_the_median_of_the_finite_ones() -> None:
    stamps = np.arange(2 * 100 * 100, dtype=np.float32).reshape(2, 100, 100)
    stamps[0, :10] = np.nan
    out = prepare(stamps, Preprocessing(), crop=False)
    # the 1000 missing pixels sit at the median of the other 9000: just above half of them
    assert out[0, 0, 0] == pytest.approx((4500 + 1000) / 10000)
    assert out[1, 0, 0] == pytest.approx(1 / 10000)


def test_a_stamp_smaller_than_the_input_is_padded_with_noise_like_its_own() -> None:
    """A 63x63 cutout NaN-padded to 100x100 (as ingest stores it) must not show a flat frame
    with straight edges, which the network reads as an artifact: the padding takes noise of the
    stamp's own level and spread, and the stamp's own pixels are prepared as at full size."""
    rng = np.random.default_rng(5)
    full = rng.normal(40.0, 12.0, (100, 100)).astype(np.float32)
    padded = np.full_like(full, np.nan)
    padded[18:81, 18:81] = full[18:81, 18:81]
    pre = Preprocessing("asinh_sigma")
    whole, small = prepare(np.stack([full, padded]), pre, crop=False)
    frame = np.ones((100, 100), bool)
    frame[18:81, 18:81] = False
    # the padding is as varied as the real sky around it, not one flat value
    assert small[frame].std() == pytest.approx(whole[frame].std(), rel=0.1)
    assert abs(small[frame].mean() - whole[frame].mean()) < 0.01
    np.testing.assert_allclose(small[~frame], whole[~frame], atol=0.01)
    # the fill pattern is fixed, so every device and run prepares the same image
    assert np.array_equal(prepare(padded[None], pre), prepare(padded[None], pre))
    assert fill_noise(100).std() == pytest.approx(1.0) and abs(fill_noise(100).mean()) < 1e-6


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


@pytest.mark.parametrize("width", [10000, 9999, 7, 2])
def test_the_selection_medians_are_numpys_medians_to_the_bit(width: int) -> None:
    """`_middle` (one partial selection for all rows, missing values pushed to either end)
    gives exactly NumPy's median of each row's finite values: odd and even counts, ties, rows
    with none, so a stamp is prepared the same as the model was trained on."""
    from classifier.preprocess import _middle

    rng = np.random.default_rng(width)
    rows = rng.normal(0, 10, (40, width)).astype(np.float32)
    rows[::3] = np.round(rows[::3])  # ties
    finite = rng.random(rows.shape) > rng.random((40, 1))  # 0-100% missing per row
    finite[0], finite[1] = False, True
    finite[2, :] = False
    finite[2, -1] = True  # one finite value, at the end
    rows[~finite] = np.nan
    got = _middle(rows, finite)
    expected = [np.median(r[f]) if f.any() else 0.0 for r, f in zip(rows, finite, strict=True)]
    assert got.dtype == np.float32
    assert np.array_equal(got, np.asarray(expected, np.float32))
    full = rng.normal(0, 10, (5, width)).astype(np.float32)
    assert np.array_equal(_middle(full), np.median(full, axis=1).astype(np.float32))


def _star(fwhm: float, rng: np.random.Generator, peak: float = 2000.0) -> np.ndarray:
    yy, xx = np.mgrid[:100, :100]
    s = fwhm / 2.3548
    star = peak * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / (2 * s * s))
    return (star + rng.normal(0, 5, (100, 100))).astype(np.float32)


def _width(image: np.ndarray) -> float:
    """FWHM (px) of the source at the centre, from the second moment of its pixels above 4%
    of its peak (the noise is under 1%)."""
    image = np.nan_to_num(image - np.nanmedian(image))[35:66, 35:66]
    image = np.where(image > 0.04 * image.max(), image, 0.0)
    yy, xx = np.mgrid[:31, :31]
    total = image.sum()
    mx, my = (image * xx).sum() / total, (image * yy).sum() / total
    return float(np.sqrt((image * ((xx - mx) ** 2 + (yy - my) ** 2)).sum() / total / 2) * 2.3548)


def test_a_star_under_broad_seeing_is_prepared_as_one_under_the_preset_seeing() -> None:
    """The seeing invariant: with `seeing` set, a star taken under 6 or 7 px seeing reaches the
    ICN as wide as a star under the preset's 3.5 px (within a pixel's smear), centred, with the
    shrunk stamp's outside missing (noise-filled); stamps at or under the preset's seeing, or
    with no seeing sent, are prepared exactly as without it."""
    import torch

    from classifier.preprocess import normalise_seeing

    rng = np.random.default_rng(11)
    stamps = np.stack([_star(f, rng) for f in (2.0, 3.5, 6.0, 7.0, 6.0)])
    fwhm = np.array([2.0, 3.5, 6.0, 7.0, np.nan])
    shrunk = normalise_seeing(torch.from_numpy(stamps), fwhm, 3.5).numpy()
    target = _width(_star(3.5, rng))
    for i in (2, 3):
        assert _width(stamps[i]) > 1.6 * target  # as received: far broader
        assert abs(_width(shrunk[i]) - target) < 0.35
        side = round(100 * 3.5 / fwhm[i])
        inside = np.isfinite(shrunk[i])
        assert inside.sum() == side * side and inside[50, 50]
        peak = np.unravel_index(np.nanargmax(shrunk[i]), (100, 100))
        assert max(abs(peak[0] - 50), abs(peak[1] - 50)) <= 1
    for i in (0, 1, 4):  # narrower, equal, unknown: untouched
        assert np.array_equal(shrunk[i], stamps[i])

    on = Preprocessing("asinh_sigma", seeing=3.5)
    off = Preprocessing("asinh_sigma")
    with_seeing = prepare(stamps, on, fwhm=fwhm)
    assert np.isfinite(with_seeing).all()
    np.testing.assert_array_equal(with_seeing[[0, 1, 4]], prepare(stamps[[0, 1, 4]], off))
    assert not np.array_equal(with_seeing[2], prepare(stamps[2:3], off)[0])
    # without a seeing, or without the preset's, nothing changes
    np.testing.assert_array_equal(prepare(stamps, on), prepare(stamps, off))
    np.testing.assert_array_equal(prepare(stamps, off, fwhm=fwhm), prepare(stamps, off))
    with pytest.raises(ValueError, match="seeing values"):
        normalise_seeing(torch.from_numpy(stamps), fwhm[:2], 3.5)


def test_the_seeing_is_kept_in_the_dict_only_when_set() -> None:
    """A checkpoint made before the field existed is read with it off, and one made without it
    stores the very dict it always did (its cache keys and evaluation stay valid)."""
    old = {"name": "asinh_sigma", "size": 100, "crop": 80, "softening": 3.0}
    before = Preprocessing.from_dict(old)
    assert before.seeing == 0 and before.to_dict() == old
    on = Preprocessing("asinh_sigma", seeing=3.5)
    assert on.to_dict()["seeing"] == 3.5 and Preprocessing.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="seeing"):
        Preprocessing("asinh_sigma", seeing=-1)

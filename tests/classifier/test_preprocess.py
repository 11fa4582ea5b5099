"""Preprocessing presets: NaN handling, equalisation, cropping, round trip through a dict."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.preprocess import Preprocessing, fill_missing, prepare


def test_it_fills_missing_pixels_with_the_stamp_median() -> None:
    stamps = np.arange(2 * 100 * 100, dtype=np.float32).reshape(2, 100, 100)
    stamps[0, :10] = np.nan
    stamps[1, 5, 5] = np.inf
    filled = fill_missing(stamps)
    assert np.isfinite(filled).all()
    assert filled[0, 0, 0] == pytest.approx(np.nanmedian(stamps[0]))
    assert filled[1, 0, 0] == stamps[1, 0, 0]


def test_it_equalises_to_the_cumulative_fraction_and_crops() -> None:
    rng = np.random.default_rng(0)
    stamp = rng.normal(size=(1, 100, 100)).astype(np.float32)
    out = prepare(stamp, Preprocessing("equalize", crop=80))
    assert out.shape == (1, 80, 80) and out.dtype == np.float32
    full = prepare(stamp, Preprocessing("equalize"), crop=False)
    assert full.max() == pytest.approx(1.0) and full.min() == pytest.approx(1e-4)
    # monotone: the brightest pixel stays the brightest
    assert np.unravel_index(full.argmax(), full.shape) == np.unravel_index(stamp.argmax(),
                                                                           stamp.shape)


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

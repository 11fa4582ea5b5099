"""Stamps per class: determinism, latents, and the honesty checks of simulator.md."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from classifier import render as r
from classifier.classes import ALL_CLASSES
from classifier.simulate import SimConfig, make_stamp, power_law, stamp_rng

CLEAN = SimConfig(
    field_star_mean=(0.0, 0.0), blend_fraction=0.0, ast_cosmic_fraction=0.0, chip_edge_fraction=0.0
)


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_it_makes_each_class_deterministically_from_seed_and_index(cls: str) -> None:
    a = make_stamp(cls, stamp_rng(3, 1, 7))
    b = make_stamp(cls, stamp_rng(3, 1, 7))
    c = make_stamp(cls, stamp_rng(3, 1, 8))
    assert a.difference.shape == (100, 100) and a.difference.dtype == np.float32
    np.testing.assert_array_equal(a.difference, b.difference)
    assert not np.array_equal(np.nan_to_num(a.difference), np.nan_to_num(c.difference))
    assert a.latents["class"] == cls
    assert {"fwhm", "sky", "ref_depth", "kernel_error"} <= set(a.latents["conditions"])


def test_it_leaves_the_global_random_state_alone() -> None:
    np.random.seed(1)
    expected = np.random.random()
    np.random.seed(1)
    make_stamp("AST", stamp_rng(0, 1, 0))
    assert np.random.random() == expected


@pytest.mark.parametrize("cls", ["BURN", "CR", "SCAR", "SPIKE", "GLARE"])
def test_it_puts_bogus_detections_above_the_detection_threshold(cls: str) -> None:
    sigmas = [make_stamp(cls, stamp_rng(11, 1, i)).latents["det_sigma"] for i in range(8)]
    assert np.mean(np.array(sigmas) >= 5.0) >= 0.75


def test_it_draws_snr_from_a_steep_law_near_the_detection_limit() -> None:
    rng = np.random.default_rng(0)
    snr = np.array([power_law(rng, 4.0, 300.0, 2.5) for _ in range(20000)])
    assert 4.0 <= snr.min() and snr.max() <= 300.0
    # P(SNR < 5) = (4^-1.5 - 5^-1.5) / (4^-1.5 - 300^-1.5) = 0.285
    assert np.mean(snr < 5) == pytest.approx(0.285, abs=0.015)
    flat = np.array([power_law(rng, 4.0, 300.0, 1.0) for _ in range(20000)])
    assert np.mean(flat < math.sqrt(4.0 * 300.0)) == pytest.approx(0.5, abs=0.015)  # log-uniform


def _plain_detector(stamp: np.ndarray, fwhm: float) -> float:
    """Gaussian PSF matched filter, noise measured on the filtered stamp, peak near the centre."""
    filtered = gaussian_filter(stamp.astype(float), fwhm / 2.3548)
    mad = np.median(np.abs(filtered - np.median(filtered))) * 1.4826
    return float(filtered[49:52, 49:52].max() / mad)


def _fraction_detected(snr: float, n: int = 150) -> float:
    found = 0
    for i in range(n):
        s = make_stamp(
            "AST", stamp_rng(21, 1, int(snr * 100), i), CLEAN, fixed={"snr": snr, "length": 0.0}
        )
        found += _plain_detector(s.difference, s.latents["conditions"]["fwhm"]) >= 5.0
    return found / n


def test_it_lets_a_plain_matched_filter_find_half_the_asteroids_at_threshold() -> None:
    assert 0.3 <= _fraction_detected(5.0) <= 0.7


def test_it_lets_a_plain_matched_filter_find_nearly_all_a_sigma_above_threshold() -> None:
    assert _fraction_detected(6.0) >= 0.75
    assert _fraction_detected(7.0) >= 0.93


def test_it_injects_streaks_whose_length_and_angle_can_be_measured() -> None:
    errors_len, errors_ang = [], []
    for i in range(16):
        rng = stamp_rng(5, 1, i)
        length, angle = float(rng.uniform(10, 40)), float(rng.uniform(0, math.pi))
        s = make_stamp("STREAK", rng, CLEAN, fixed={"snr": 150.0, "length": length, "angle": angle})
        d = s.difference.astype(float)
        sigma = np.median(np.abs(d - np.median(d))) * 1.4826
        yy, xx = np.mgrid[:100, :100]
        w = np.where((d > 2 * sigma) & (np.hypot(xx - 50, yy - 50) < length / 2 + 8), d, 0)
        m = w.sum()
        cx, cy = (w * xx).sum() / m, (w * yy).sum() / m
        cov = np.cov(np.vstack([(xx - cx).ravel(), (yy - cy).ravel()]), aweights=w.ravel())
        evals, evecs = np.linalg.eigh(cov)
        measured_len = math.sqrt(12 * (evals[1] - evals[0]))
        measured_ang = math.atan2(evecs[1, 1], evecs[0, 1]) % math.pi
        errors_len.append(measured_len / length - 1)
        diff = abs(measured_ang - angle) % math.pi
        errors_ang.append(math.degrees(min(diff, math.pi - diff)))
    assert np.median(np.abs(errors_len)) < 0.1
    assert max(np.abs(errors_len)) < 0.25
    assert max(errors_ang) < 4.0


def test_it_keeps_asteroids_shorter_and_streaks_longer_than_a_fwhm() -> None:
    for i in range(10):
        ast = make_stamp("AST", stamp_rng(2, 1, i))
        streak = make_stamp("STREAK", stamp_rng(2, 1, 100 + i))
        assert ast.latents["length_over_fwhm"] < 1.0 <= streak.latents["length_over_fwhm"]
        assert streak.latents["length"] <= 60.0 + 1e-9


def test_it_saturates_bright_stars_and_reports_the_level() -> None:
    s = make_stamp("BURN", stamp_rng(1, 1, 3), fixed={"star_flux": 3e8, "distance": 10.0})
    assert s.saturate is not None
    assert np.nanmax(s.difference) == pytest.approx(s.saturate)


def test_parallel_simulation_works_in_a_process_that_already_ran_torch() -> None:
    """Workers and the training job run torch before simulating in forked children: the
    children must not hang on torch's inherited thread pool."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np\n"
        "from classifier.preprocess import Preprocessing, prepare\n"
        "prepare(np.random.rand(64, 100, 100).astype(np.float32), Preprocessing())\n"
        "from classifier.datasets import build_stamp_set\n"
        "s = build_stamp_set(0, ('BURN', 'AST'), 6, Preprocessing(), workers=2, progress=False)\n"
        "print(s.images.shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "(12, 100, 100)" in done.stdout


def test_parallel_simulation_in_a_daemonic_process_gives_the_same_stamps() -> None:
    """A Celery prefork child is a daemon and may not have children: asked for 2 workers there,
    the build runs in the process itself and gives what a parallel build gives."""
    import multiprocessing

    from classifier.datasets import build_stamp_set
    from classifier.preprocess import Preprocessing

    parallel = build_stamp_set(0, ("BURN", "AST"), 4, Preprocessing(), workers=2, progress=False)
    # spawn: a fork of this process, which has run torch, would hang in torch's thread pool (a
    # Celery prefork child is forked before any torch runs).
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_build_in_child, args=(queue,), daemon=True)
    child.start()
    result = queue.get(timeout=120)
    child.join(timeout=30)
    assert not isinstance(result, str), result
    np.testing.assert_array_equal(result, parallel.images)


def _build_in_child(queue) -> None:
    from classifier.datasets import build_stamp_set
    from classifier.preprocess import Preprocessing

    try:
        s = build_stamp_set(0, ("BURN", "AST"), 4, Preprocessing(), workers=2, progress=False)
        queue.put(s.images)
    except Exception as exc:  # reported to the test, which fails with it
        queue.put(f"{type(exc).__name__}: {exc}")


def test_parallel_simulation_finishes_under_a_parent_that_traps_sigterm() -> None:
    """A Celery worker traps SIGTERM; the simulation's forked children must still finish and
    the build return (they once inherited the trap, and the training job hung at the end)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import signal; signal.signal(signal.SIGTERM, lambda *a: print('trapped'));"
        "from classifier.datasets import build_stamp_set;"
        "from classifier.preprocess import Preprocessing;"
        "s = build_stamp_set(1, ('AST', 'NOISE'), 4, Preprocessing(), workers=2,"
        " progress=False, chunk=2); print(len(s.labels))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["8"]


def test_the_wider_simulator_cuts_some_stamps_smaller_and_pads_them_as_ingest_does() -> None:
    """Other surveys send smaller cutouts (ZTF: 63x63), which ingest NaN-pads to the input:
    the wider simulator makes 15% of its stamps so, centred, in all three images; the nominal
    ranges never do, and keep their random sequence."""
    from classifier.simulate import SimConfig

    cfg = SimConfig().wider()
    assert cfg.conditions.fwhm_range == (1.0, 5.5) and cfg.small_stamp_fraction == 0.15
    sides = []
    for i in range(120):
        sample = make_stamp("AST", stamp_rng(3, 1, i), cfg)
        side = sample.latents.get("small_stamp")
        if side is None:
            continue
        sides.append(side)
        start = (100 - side) // 2
        for image in (sample.difference, sample.science, sample.reference):
            inner = image[start : start + side, start : start + side]
            assert np.isnan(image).sum() >= 100 * 100 - side * side
            assert np.isfinite(inner[side // 2 - 3 : side // 2 + 3]).all()
    assert 5 <= len(sides) <= 40 and all(30 <= s <= 99 for s in sides)
    nominal = [make_stamp("AST", stamp_rng(3, 1, i)) for i in range(20)]
    assert not any("small_stamp" in s.latents for s in nominal)
    again = make_stamp("AST", stamp_rng(3, 1, 0))
    assert np.array_equal(again.difference, nominal[0].difference, equal_nan=True)


def test_the_wider_simulator_trains_every_part_of_its_seeing_range() -> None:
    """The wider simulator's seeing range (1.0-5.5 px) is trained, not only named: drawn
    log-uniform, each end holds its share of exposures (under 1% fell below 1.2 or above 4.5 px
    when it was the nominal lognormal, clipped), while the nominal ranges keep their lognormal
    about 2.2 px."""
    from classifier.render import ConditionRanges, draw_conditions
    from classifier.simulate import SimConfig

    rng = np.random.default_rng(7)
    wide = np.array(
        [draw_conditions(rng, SimConfig().wider().conditions).sci_psf.fwhm for _ in range(3000)]
    )
    assert wide.min() >= 1.0 and wide.max() <= 5.5
    assert 0.12 <= (wide < 1.3).mean() <= 0.19  # log-uniform: 15.4%
    assert 0.09 <= (wide > 4.5).mean() <= 0.15  # 11.8%
    nominal = np.array(
        [draw_conditions(rng, SimConfig().conditions).sci_psf.fwhm for _ in range(3000)]
    )
    assert 2.0 < np.median(nominal) < 2.4 and (nominal > 3.0).mean() < 0.1
    with pytest.raises(ValueError, match="seeing law"):
        draw_conditions(rng, ConditionRanges(fwhm_law="uniform"))


def test_the_wider_simulator_elongates_science_exposures_not_their_references() -> None:
    """Tracking error, wind shake and field-edge optics elongate one exposure's PSF, not the
    stacked reference: the wider simulator draws science axis ratios down to 0.5 (the real ZTF
    sources its ICN read STREAK measure 0.44-0.72 by second moments, noise included), the
    reference keeps 0.75-1, and a star drawn with such a PSF has that shape."""
    from classifier.render import draw_conditions

    rng = np.random.default_rng(11)
    drawn = [draw_conditions(rng, SimConfig().wider().conditions) for _ in range(3000)]
    sci = np.array([c.sci_psf.q for c in drawn])
    ref = np.array([c.ref_psf.q for c in drawn])
    assert sci.min() >= 0.5 and 0.25 <= (sci < 0.65).mean() <= 0.35  # uniform over 0.5-1
    assert ref.min() >= 0.75
    nominal = [draw_conditions(rng, SimConfig().conditions).sci_psf.q for _ in range(1000)]
    assert min(nominal) >= 0.85  # the nominal (evaluation) ranges are as before

    psf = next(c.sci_psf for c in drawn if c.sci_psf.q < 0.55 and c.sci_psf.fwhm > 2.5)
    y, x = np.mgrid[-40:41, -40:41].astype(float)
    image = psf.evaluate(x, y)
    # the half-maximum core's shape (a Moffat's full second moments are cut by the grid's edge)
    core = image > image.max() / 2
    cy, cx = y[core], x[core]
    cov = np.cov(np.stack([cx, cy]))
    measured_q = math.sqrt(np.linalg.eigvalsh(cov).min() / np.linalg.eigvalsh(cov).max())
    assert abs(measured_q - psf.q) < 0.08, (measured_q, psf.q)


def test_the_wider_simulator_can_cross_convolve_fields_within_its_seeing_range() -> None:
    """ZOGY-like and cross-convolving pipelines give a difference PSF broader than the science
    exposure's: the wider simulator subtracts the share of fields it is asked to so, only where
    the difference's width (the two exposures' in quadrature) stays inside the trained seeing
    range (none by default), and a point source's matched-filter SNR in such a difference is the
    SNR it was drawn with."""

    rng = np.random.default_rng(5)
    ranges = SimConfig().wider(cross_fraction=1 / 3).conditions
    drawn = [r.draw_conditions(rng, ranges) for _ in range(3000)]
    cross = np.array([c.cross for c in drawn])
    width = np.array([math.hypot(c.sci_psf.fwhm, c.ref_psf.fwhm) for c in drawn])
    assert 0.15 <= cross.mean() <= 0.33 and width[cross].max() <= 5.5
    for default in (SimConfig().conditions, SimConfig().wider().conditions):
        assert not any(r.draw_conditions(rng, default).cross for _ in range(500))

    cond = next(c for c in drawn if c.cross and 2.0 < c.sci_psf.fwhm < 2.6)
    cond = replace(cond, flux_error=0.0, reg_dx=0.0, reg_dy=0.0)
    psf = r.psf_kernel(cond.sci_psf, radius=12)
    snr, core = {}, {}
    mid = r.CENTRE
    for kind in (True, False):
        c = replace(cond, cross=kind)
        source = r.Scene(stars=[(float(mid), float(mid), r.flux_for_snr(12.0, psf, c), 0.0)])
        found = []
        for i in range(40):
            diff = r.render(source, c, np.random.default_rng(100 + i)).difference_e
            found.append(r.detection_sigma(diff, c, mid, mid, search=0))
        snr[kind] = float(np.mean(found))
        bright = r.Scene(stars=[(float(mid), float(mid), r.flux_for_snr(500, psf, c), 0.0)])
        diff = r.render(bright, c, np.random.default_rng(1)).difference_e
        patch = diff[mid - 10 : mid + 11, mid - 10 : mid + 11]
        core[kind] = int((patch > patch.max() / 2).sum())
    # the SNR it was drawn with, cross-convolved as with one image matched to the other
    assert snr[True] == pytest.approx(12.0, abs=1.0), snr
    assert snr[False] == pytest.approx(12.0, abs=1.0), snr
    assert core[True] > 1.3 * core[False], core  # a broader core than one image matched

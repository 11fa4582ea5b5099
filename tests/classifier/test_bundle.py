"""Night bundles: the manifest the ingest reads, FITS stamps, truth beside them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits

from classifier.bundle import simulate_night
from classifier.stamp_io import read_stamp


def test_it_writes_a_bundle_the_ingest_can_read(tmp_path: Path) -> None:
    manifest = simulate_night(
        tmp_path / "n", seed=1, night="2026-11-24", n_tracklets=6, real_fraction=0.5, progress=False
    )
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    keys = {"night", "tracklet", "index", "mjd", "ra", "dec", "mag", "x", "y", "stamp", "fwhm_px"}
    assert all(set(r) == keys for r in rows)
    # the exposure's seeing, in the stamp's pixels, within what the ingest accepts
    assert all(0 < r["fwhm_px"] <= 100 for r in rows)
    assert {r["night"] for r in rows} == {"2026-11-24"}
    assert len({r["tracklet"] for r in rows}) == 6
    for r in rows:
        data = (manifest.parent / r["stamp"]).read_bytes()
        stamp = read_stamp(data)
        assert stamp.shape == (100, 100) and stamp.pixels.dtype == np.float32
        with fits.open(manifest.parent / r["stamp"]) as hdus:
            assert hdus[0].data.dtype.kind == "f"
            if "SATURATE" in hdus[0].header:
                assert np.nanmax(hdus[0].data) >= hdus[0].header["SATURATE"]
    truth_text = (manifest.parent / "truth.jsonl").read_text()
    truth = [json.loads(line) for line in truth_text.splitlines()]
    assert sum(t["real"] for t in truth) == 3
    by_id = {t["tracklet"]: t for t in truth}
    for r in rows:
        assert len(by_id[r["tracklet"]]["detections"]) > r["index"]
    assert json.loads((manifest.parent / "params.json").read_text())["tracklets"] == 6


def test_it_writes_the_same_night_twice_identically(tmp_path: Path) -> None:
    a = simulate_night(tmp_path / "a", seed=2, night="2026-11-25", n_tracklets=3, progress=False)
    b = simulate_night(
        tmp_path / "b", seed=2, night="2026-11-25", n_tracklets=3, progress=False, gz=True
    )
    assert a.read_text() == b.read_text().replace(".fits.gz", ".fits")

"""A corpus of malformed inputs, each sent the three ways a user sends tracklets in.

(a) `POST /api/v1/tracklets/` (one tracklet: a 4xx naming the problem, nothing stored), (b) the
bundle upload (`POST /api/v1/bundles/` then the ingest job, as a worker runs it) and (c)
`manage.py ingest` (exit status 1 or a CommandError naming the problem, no traceback). In a
bundle the bad tracklet B sits between two good ones, A and C: A and C are stored and listed,
B is listed as rejected with its reason; a problem of the whole bundle stores nothing.

For every case: the answer names the problem (a distinctive substring), and the counts of
tracklets, detections, nights and stored files are what the answer says, no more.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from screening.ingest.bundles import BundleError, bundle_ingest
from screening.ingest.uploads import bundle_upload_run
from screening.models import BundleUpload, Detection, Night, Tracklet
from tests.conftest import ROOT, stored_files
from tests.stamps import (
    NIGHT,
    detection_rows,
    fits_bytes,
    npy_bytes,
    png_bytes,
    stamp_files,
    stamp_pixels,
    write_bundle,
)

pytestmark = pytest.mark.django_db

GOOD = ("A", "C")  # the good tracklets around the bad one, B, in every bundle
FILES_PER_TRACKLET = 1  # the model input and 4 stamps in one file (display PNGs: on first view)


# --- what is stored ---------------------------------------------------------------------------


def stored(media_root: Path) -> dict[str, Any]:
    """Rows and files written by ingest (an uploaded archive under bundles/ is the job's own)."""
    files = [p for p in stored_files(media_root) if p.relative_to(media_root).parts[0] != "bundles"]
    return {
        "tracklets": sorted(Tracklet.objects.values_list("survey_id", flat=True)),
        "detections": Detection.objects.count(),
        "nights": Night.objects.count(),
        "files": len(files),
    }


NOTHING = {"tracklets": [], "detections": 0, "nights": 0, "files": 0}
ONLY_GOOD = {
    "tracklets": list(GOOD),
    "detections": 4 * len(GOOD),
    "nights": 1,
    "files": FILES_PER_TRACKLET * len(GOOD),
}


# --- stamps -----------------------------------------------------------------------------------


def _card(key: str, value: str) -> bytes:
    return f"{key:<8}= {value:>20}".ljust(80).encode()


def raw_fits(cards: list[tuple[str, str]], data: bytes = b"", *, end: bool = True) -> bytes:
    """A FITS file written card by card, so that any header value can be wrong."""
    header = b"".join(_card(k, v) for k, v in cards) + (b"END".ljust(80) if end else b"")
    header += b" " * (-len(header) % 2880)
    return header + data + b"\0" * (-len(data) % 2880)


def fits_header(naxis1: str = "100", naxis2: str = "100", *, bitpix: str = "-32", extra=()):
    return [
        ("SIMPLE", "T"),
        ("BITPIX", bitpix),
        ("NAXIS", "2"),
        ("NAXIS1", naxis1),
        ("NAXIS2", naxis2),
        *extra,
    ]


PIXELS = stamp_pixels(42).astype(">f4").tobytes()  # 100x100 float32: 40000 bytes


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares width x height (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_bad_crc() -> bytes:
    data = bytearray(png_bytes(stamp_pixels(3)))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    return bytes(data)


def fits_extension_truncated() -> bytes:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(stamp_pixels(5))]).writeto(buffer)
    return buffer.getvalue()[: 2880 * 2 + 10000]


def npy_truncated() -> bytes:
    return npy_bytes(stamp_pixels(1))[:5000]


def masked_everywhere() -> bytes:
    return fits_bytes(np.full((100, 100), -3.4e38, dtype=np.float32))


STAMP_CASES = [
    ("fits-naxis-minus-100", raw_fits(fits_header("-100", "-100"), PIXELS), "NAXIS1"),
    ("fits-naxis1-minus-5", raw_fits(fits_header("-5", "100"), PIXELS), "NAXIS1"),
    ("fits-naxis2-not-integer", raw_fits(fits_header("100", "10.5"), PIXELS), "NAXIS2"),
    (
        "fits-naxis-word",
        raw_fits([("SIMPLE", "T"), ("BITPIX", "-32"), ("NAXIS", "'two'")]),
        "NAXIS",
    ),
    ("fits-naxis2-missing", raw_fits(fits_header()[:4], PIXELS), "NAXIS2 is missing"),
    ("fits-bitpix-12", raw_fits(fits_header(bitpix="12"), PIXELS), "BITPIX"),
    ("fits-bitpix-missing", raw_fits([fits_header()[0], *fits_header()[2:]], PIXELS), "BITPIX"),
    ("fits-bscale-word", raw_fits(fits_header(extra=[("BSCALE", "'x'")]), PIXELS), "BSCALE"),
    ("fits-no-end", raw_fits(fits_header(), PIXELS, end=False), "no END card"),
    (
        "fits-data-truncated",
        raw_fits(fits_header(), PIXELS[:30000])[: 2880 + 30000],
        "FITS data are truncated: header says 40000 bytes of data, file holds 30000",
    ),
    ("fits-extension-truncated", fits_extension_truncated(), "truncated"),
    ("fits-gzip-truncated", fits_bytes(stamp_pixels(2), gz=True)[:700], "gzip stream is truncated"),
    (
        "fits-3d",
        raw_fits(
            [*fits_header()[:2], ("NAXIS", "3"), *fits_header()[3:], ("NAXIS3", "4")], PIXELS * 4
        ),
        "2-D",
    ),
    ("fits-all-masked", masked_everywhere(), "no finite pixel"),
    ("png-bomb-14000", png_declaring(14000, 14000), "14000x14000 pixels"),
    ("png-bad-crc", png_bad_crc(), "PNG file cannot be read"),
    ("png-truncated", png_bytes(stamp_pixels(4))[:3000], "PNG file cannot be read"),
    ("png-no-ihdr", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IEND", b""), "IHDR"),
    ("npy-object", npy_bytes(np.array([{"a": 1}], dtype=object)), "must be numeric"),
    ("npy-complex", npy_bytes(np.zeros((10, 10), dtype=complex)), "must be numeric"),
    ("npy-truncated", npy_truncated(), ".npy file cannot be read"),
    ("npy-1d", npy_bytes(np.zeros(100, dtype=np.float32)), "must be 2-D"),
    ("npy-1100-side", npy_bytes(np.ones((1100, 1100), dtype=np.uint8)), "1100x1100 pixels"),
    ("not-a-stamp", b"hello, this is text", "not a FITS, PNG or NumPy"),
    ("empty", b"", "file is empty"),
]
STAMP_IDS = [c[0] for c in STAMP_CASES]
BAD_STAMP = "B_2.fits"


def _rest_post(client, meta: dict | str, files: dict[str, bytes], extra_files=()) -> Any:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    body: dict[str, Any] = {"metadata": text}
    body.update({name: SimpleUploadedFile(name, data) for name, data in files.items()})
    body.update(dict(extra_files))
    return client.post("/api/v1/tracklets/", body, format="multipart")


def _meta_b() -> dict[str, Any]:
    return {"night": NIGHT, "tracklet": "B", "detections": detection_rows("B", seed=1)}


def _assert_400_naming(response, expected: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    assert response.status_code != 404
    text = response.content.decode()
    assert response["Content-Type"].startswith("application/json"), text
    assert expected in text, text


@pytest.mark.parametrize(("name", "data", "expected"), STAMP_CASES, ids=STAMP_IDS)
def test_rest_bad_stamp(pipeline_client, media_root, name, data, expected):
    files = {**stamp_files("B", seed=1), BAD_STAMP: data}
    response = _rest_post(pipeline_client, _meta_b(), files)
    _assert_400_naming(response, expected)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "detections[2].stamp" and error["file"] == BAD_STAMP
    assert stored(media_root) == NOTHING


# --- bundles with one bad tracklet ------------------------------------------------------------


def bundle_folder(
    tmp_path: Path,
    *,
    stamp: bytes | None = None,
    change: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    raw: Callable[[str], str] | None = None,
) -> Path:
    """A bundle of A, B, C with B's stamp 2 replaced, or B changed as REST metadata would be."""
    folder = write_bundle(tmp_path / "night", ["A", "B", "C"])
    if stamp is not None:
        (folder / "stamps" / BAD_STAMP).write_bytes(stamp)
    if change is None and raw is None:
        return folder
    manifest = folder / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines = []
    for group in ("A", "B", "C"):
        mine = [r for r in rows if r["tracklet"] == group]
        if group != "B":
            lines += [json.dumps(r) for r in mine]
            continue
        meta = {
            "night": NIGHT,
            "tracklet": "B",
            "detections": [
                {k: v for k, v in r.items() if k not in ("night", "tracklet")}
                | {"stamp": r["stamp"].removeprefix("stamps/")}
                for r in mine
            ],
        }
        meta = change(meta) if change else meta
        for detection in meta["detections"]:
            row = {"night": meta["night"], "tracklet": meta["tracklet"], **detection}
            if isinstance(row.get("stamp"), str):
                row["stamp"] = "stamps/" + row["stamp"]
            row = {k: v for k, v in row.items() if v is not _DROP}
            lines.append(json.dumps(row))
    text = "\n".join(lines) + "\n"
    manifest.write_text(raw(text) if raw else text)
    return folder


_DROP = object()


def zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, str(path.relative_to(folder)))
    return target


def upload_and_run(client, archive: Path | bytes, name: str = "night.zip") -> tuple[Any, Any]:
    """Upload over the API, then run the ingest job as a worker does; return both answers."""
    data = archive.read_bytes() if isinstance(archive, Path) else archive
    response = client.post(
        "/api/v1/bundles/", {"file": SimpleUploadedFile(name, data)}, format="multipart"
    )
    if response.status_code != 202:
        return response, None
    upload_id = response.json()["id"]
    bundle_upload_run(upload_id=upload_id)
    return response, client.get(f"/api/v1/bundles/{upload_id}/").json()


def assert_bad_tracklet_listed(results: list[dict[str, Any]], expected: str) -> None:
    by_id = {r["tracklet"]: r for r in results}
    assert len(results) == 3, results
    for good in GOOD:
        assert by_id[good]["status"] == "created" and by_id[good]["id"], results
    bad = [r for r in results if r["tracklet"] not in GOOD]
    assert len(bad) == 1 and bad[0]["status"] == "rejected", results
    assert expected in json.dumps(bad[0]["errors"]), bad[0]
    assert "manifest.jsonl line" in bad[0]["origin"]


def run_command(*args: str) -> tuple[int, str]:
    """`manage.py ingest` as a user runs it: its exit status and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ingest", *args, "--no-progress", stdout=out, stderr=err)
        status = 0
    except SystemExit as exit_info:
        status = int(exit_info.code or 0)
    except CommandError as error:  # manage.py prints "CommandError: ..." and exits 1
        err.write(f"CommandError: {error}\n")
        status = error.returncode
    printed = out.getvalue() + err.getvalue()
    assert "Traceback" not in printed, printed
    return status, printed


def assert_command_lists(folder: Path, tmp_path: Path, expected: str) -> None:
    report = tmp_path / "report.json"
    status, printed = run_command(str(folder), "--report", str(report))
    assert status == 1, printed
    assert "rejected: " in printed and expected in printed, printed
    assert "3 tracklets: 2 created, 0 unchanged, 1 rejected" in printed
    assert_bad_tracklet_listed(json.loads(report.read_text())["results"], expected)


@pytest.mark.parametrize(("name", "data", "expected"), STAMP_CASES, ids=STAMP_IDS)
def test_bundle_upload_with_one_bad_stamp(
    pipeline_client, tmp_path, media_root, name, data, expected
):
    archive = zip_of(bundle_folder(tmp_path, stamp=data), tmp_path / "night.zip")
    response, job = upload_and_run(pipeline_client, archive)
    assert response.status_code == 202, response.content
    assert job["status"] == "succeeded", job
    assert_bad_tracklet_listed(job["results"], expected)
    assert stored(media_root) == ONLY_GOOD


@pytest.mark.parametrize(("name", "data", "expected"), STAMP_CASES, ids=STAMP_IDS)
def test_command_with_one_bad_stamp(tmp_path, media_root, name, data, expected):
    assert_command_lists(bundle_folder(tmp_path, stamp=data), tmp_path, expected)
    assert stored(media_root) == ONLY_GOOD


# --- fields -----------------------------------------------------------------------------------


def _set(index: int, key: str, value: Any):
    def change(meta):
        meta["detections"][index][key] = value
        return meta

    return change


def _top(key: str, value: Any):
    def change(meta):
        meta[key] = value
        return meta

    return change


def _detections(change_list):
    def change(meta):
        meta["detections"] = change_list(meta["detections"])
        return meta

    return change


def _shift_mjd(days: float):
    def shift(detections):
        for d in detections:
            d["mjd"] += days
        return detections

    return shift


def _indexes(*values):
    def change(detections):
        for d, value in zip(detections, values, strict=True):
            d["index"] = value
        return detections

    return change


def _seventeen(detections):
    return detection_rows("B", 17, seed=1)


def _swap_mjd(detections):
    detections[1]["mjd"], detections[2]["mjd"] = detections[2]["mjd"], detections[1]["mjd"]
    return detections


def _same_stamp(detections):
    detections[3]["stamp"] = detections[1]["stamp"]
    return detections


def _drop_key(index: int, key: str):
    def change(meta):
        meta["detections"][index][key] = _DROP
        return meta

    return change


@dataclass(frozen=True)
class FieldCase:
    id: str
    change: Callable[[dict[str, Any]], dict[str, Any]]
    expected: str
    raw: Callable[[str], str] | None = None  # JSON text edits json.dumps cannot make
    manifest_fails: str | None = None  # in a manifest this is a problem of the whole bundle


def _nan(text: str) -> str:
    return text.replace('"__NAN__"', "NaN")


def _huge(text: str) -> str:
    return text.replace('"__HUGE__"', "1e400")


def _deep(text: str) -> str:
    return text.replace('"__DEEP__"', "[" * 5000 + "]" * 5000)


FIELD_CASES = [
    FieldCase("night-iso-week", _top("night", "2026-W48-2"), "not YYYY-MM-DD"),
    FieldCase("night-number", _top("night", 20261124), "night must be a YYYY-MM-DD string"),
    FieldCase("night-digits", _top("night", "20261124"), "not YYYY-MM-DD"),
    FieldCase("night-feb-30", _top("night", "2026-02-30"), "not a date"),
    FieldCase("night-1900", _top("night", "1900-01-01"), "outside 1990-01-01..2099-12-31"),
    FieldCase("night-list", _top("night", ["2026-11-24"]), "got a list"),
    FieldCase(
        "mjd-of-2020-in-a-2026-night",
        _detections(_shift_mjd(58849.0 - 61368.0)),
        "detections[0].mjd",
    ),
    FieldCase(
        "mjd-three-days-late",
        _detections(_shift_mjd(3.0)),
        "is in the night 2026-11-27, not 2026-11-24",
    ),
    FieldCase("mjd-string", _set(1, "mjd", "61368.41"), "not a number"),
    FieldCase("mag-boolean", _set(2, "mag", True), "mag must be a number, got a boolean"),
    FieldCase("ra-object", _set(0, "ra", {"deg": 45}), "ra must be a number, got an object"),
    FieldCase("dec-95", _set(2, "dec", 95.0), "outside -90..90"),
    FieldCase("ra-360", _set(2, "ra", 360.0), "outside 0..360"),
    FieldCase("x-huge", _set(1, "x", 1e300), "detections[1].x"),
    FieldCase("ra-1e400", _set(1, "ra", "__HUGE__"), "ra inf is outside", raw=_huge),
    FieldCase(
        "mag-nan",
        _set(1, "mag", "__NAN__"),
        "NaN is not a JSON number",
        raw=_nan,
        manifest_fails="manifest.jsonl line 6: NaN is not a JSON number",
    ),
    FieldCase(
        "deep-nesting",
        _set(1, "x", "__DEEP__"),
        "JSON nested deeper than 32 levels",
        raw=_deep,
        manifest_fails="manifest.jsonl line 6: JSON nested deeper than 32 levels",
    ),
    FieldCase("index-huge", _set(1, "index", 10**30), "outside 0..15"),
    FieldCase("index-duplicate", _detections(_indexes(0, 1, 1, 3)), "indexes must be 0..3"),
    FieldCase("index-gap", _detections(_indexes(0, 1, 2, 5)), "indexes must be 0..3"),
    FieldCase("index-half", _set(1, "index", 1.5), "index 1.5 is not an integer"),
    FieldCase("time-order", _detections(_swap_mjd), "time order"),
    FieldCase("too-few", _detections(lambda d: d[:2]), "3 to 16 detections, got 2"),
    FieldCase("too-many", _detections(_seventeen), "3 to 16 detections, got 17"),
    FieldCase("missing-x", _drop_key(1, "x"), "x is missing"),
    FieldCase("mag-45", _set(1, "mag", 45.0), "mag 45.0 is outside -30..40"),
    FieldCase("unknown-field", _set(1, "flux", 12.0), "unknown field 'flux'"),
    FieldCase(
        "stamp-object", _set(2, "stamp", {"a": 1}), "must be a file path (a string), got an object"
    ),
    FieldCase("stamp-list", _set(2, "stamp", ["B_2.fits"]), "got a list"),
    FieldCase("stamp-number", _set(2, "stamp", 7), "got a number"),
    FieldCase("stamp-control-characters", _set(2, "stamp", "B_2\x00.fits"), "control characters"),
    FieldCase(
        "two-detections-one-stamp",
        _detections(_same_stamp),
        "detections[1].stamp and detections[3].stamp name the same file",
    ),
    FieldCase("tracklet-bad-characters", _top("tracklet", "B bad!"), "letters, digits"),
    FieldCase("tracklet-65-chars", _top("tracklet", "B" * 65), "1-64 characters"),
    FieldCase("tracklet-number", _top("tracklet", 123), "tracklet id must be a string"),
    FieldCase("tracklet-boolean", _top("tracklet", True), "tracklet id must be a string"),
]
FIELD_IDS = [c.id for c in FIELD_CASES]


def _rest_meta_text(case: FieldCase) -> str:
    meta = case.change(_meta_b())
    meta["detections"] = [
        {k: v for k, v in d.items() if v is not _DROP} if isinstance(d, dict) else d
        for d in meta["detections"]
    ]
    text = json.dumps(meta)
    return case.raw(text) if case.raw else text


@pytest.mark.parametrize("case", FIELD_CASES, ids=FIELD_IDS)
def test_rest_bad_field(pipeline_client, media_root, case):
    files = stamp_files("B", seed=1)
    if case.id == "too-many":
        # 16 files: a 17th would be refused as it arrives (413), before the metadata is read
        files = {f"B_{i}.fits": fits_bytes(stamp_pixels(100 + i)) for i in range(16)}
    if case.id == "two-detections-one-stamp":
        del files["B_3.fits"]
    if case.id in ("stamp-object", "stamp-list", "stamp-number", "stamp-control-characters"):
        del files["B_2.fits"]
    if case.id == "too-few":
        files = {k: v for k, v in files.items() if k in ("B_0.fits", "B_1.fits")}
    response = _rest_post(pipeline_client, _rest_meta_text(case), files)
    _assert_400_naming(response, case.expected)
    assert response.status_code == 400
    assert stored(media_root) == NOTHING


def _bundle_with(tmp_path: Path, case: FieldCase) -> Path:
    folder = bundle_folder(tmp_path, change=case.change, raw=case.raw)
    if case.id == "too-many":
        for i in range(4, 17):
            (folder / "stamps" / f"B_{i}.fits").write_bytes(fits_bytes(stamp_pixels(200 + i)))
    return folder


@pytest.mark.parametrize("case", FIELD_CASES, ids=FIELD_IDS)
def test_bundle_upload_with_one_bad_tracklet(pipeline_client, tmp_path, media_root, case):
    archive = zip_of(_bundle_with(tmp_path, case), tmp_path / "night.zip")
    response, job = upload_and_run(pipeline_client, archive)
    assert response.status_code == 202, response.content
    if case.manifest_fails:
        assert job["status"] == "failed" and case.manifest_fails in job["error"], job
        assert job["results"] == [] and stored(media_root) == NOTHING
        return
    assert job["status"] == "succeeded", job
    assert_bad_tracklet_listed(job["results"], case.expected)
    assert stored(media_root) == ONLY_GOOD


@pytest.mark.parametrize("case", FIELD_CASES, ids=FIELD_IDS)
def test_command_with_one_bad_tracklet(tmp_path, media_root, case):
    folder = _bundle_with(tmp_path, case)
    if case.manifest_fails:
        status, printed = run_command(str(folder))
        assert status == 1 and "nothing written" in printed and case.manifest_fails in printed
        assert stored(media_root) == NOTHING
        return
    assert_command_lists(folder, tmp_path, case.expected)
    assert stored(media_root) == ONLY_GOOD


# --- the REST request itself ------------------------------------------------------------------


REST_CASES = [
    ("metadata-not-json", "{not json", "metadata: not valid JSON"),
    ("metadata-a-list", "[1, 2]", "metadata must be a JSON object, got a list"),
    ("metadata-a-string", '"hello"', "metadata must be a JSON object, got a string"),
    ("metadata-deep", "[" * 5000 + "]" * 5000, "metadata: JSON nested deeper than 32 levels"),
    (
        "metadata-deep-object",
        '{"night": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
        "JSON nested deeper",
    ),
    ("metadata-infinity", '{"night": Infinity}', "Infinity is not a JSON number"),
    ("detections-an-object", json.dumps({**_meta_b(), "detections": {"a": 1}}), "must be a list"),
    ("detections-missing", json.dumps({"night": NIGHT, "tracklet": "B"}), "detections is missing"),
    ("unknown-top-level", json.dumps({**_meta_b(), "colour": "red"}), "unknown field(s) 'colour'"),
    (
        "duplicate-key",
        json.dumps(_meta_b())[:-1] + ', "night": "2026-11-25"}',
        "key 'night' appears twice",
    ),
    (
        "detection-a-number",
        json.dumps({**_meta_b(), "detections": [*_meta_b()["detections"][:3], 5]}),
        "a detection must be an object, got a number",
    ),
    (
        "huge-integer",
        json.dumps(_meta_b()).replace('"index": 0', '"index": ' + "9" * 5000),
        "not valid JSON",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), REST_CASES, ids=[c[0] for c in REST_CASES])
def test_rest_bad_metadata(pipeline_client, media_root, name, text, expected):
    response = _rest_post(pipeline_client, text, stamp_files("B", seed=1))
    _assert_400_naming(response, expected)
    assert stored(media_root) == NOTHING


def test_rest_without_metadata_names_the_field(pipeline_client, media_root):
    body = {n: SimpleUploadedFile(n, d) for n, d in stamp_files("B", seed=1).items()}
    response = pipeline_client.post("/api/v1/tracklets/", body, format="multipart")
    _assert_400_naming(response, "metadata")
    assert stored(media_root) == NOTHING


def test_rest_a_file_no_detection_names_is_refused(pipeline_client, media_root):
    files = {**stamp_files("B", seed=1), "spare": fits_bytes(stamp_pixels(9))}
    response = _rest_post(pipeline_client, _meta_b(), files)
    _assert_400_naming(response, "no detection names it")
    assert stored(media_root) == NOTHING


def test_rest_two_files_in_one_field_are_refused(pipeline_client, media_root):
    files = stamp_files("B", seed=1)
    second = [("B_0.fits", [SimpleUploadedFile("a.fits", files["B_0.fits"])] * 2)]
    response = _rest_post(pipeline_client, _meta_b(), {}, extra_files=second)
    _assert_400_naming(response, "holds more than one file")
    assert stored(media_root) == NOTHING


def test_rest_a_stamp_over_the_limit_is_refused_while_it_arrives(
    pipeline_client, media_root, settings
):
    settings.STAMP_MAX_BYTES = 50_000
    files = {**stamp_files("B", seed=1), BAD_STAMP: fits_bytes(stamp_pixels(3, size=150))}
    response = _rest_post(pipeline_client, _meta_b(), files)
    assert response.status_code == 413, response.content
    assert response.json()["limit"] == "STAMP_MAX_BYTES" and "B_2.fits" in response.json()["detail"]
    assert stored(media_root) == NOTHING


def test_rest_a_request_declaring_a_huge_length_is_refused_before_it_is_read(
    pipeline_client, media_root
):
    from django.test.client import encode_multipart

    body = encode_multipart("BoUnDaRy", {"metadata": json.dumps(_meta_b())})
    response = pipeline_client.generic(
        "POST",
        "/api/v1/tracklets/",
        body,
        content_type="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(10 * 1024**3),
    )
    assert response.status_code == 413, response.content
    assert "STAMP_MAX_BYTES" in response.json()["limit"]
    assert stored(media_root) == NOTHING


def test_rest_more_files_than_detections_allowed_are_refused(pipeline_client, media_root):
    files = {f"f{i}": b"x" for i in range(20)}
    response = _rest_post(pipeline_client, _meta_b(), files)
    assert response.status_code == 413, response.content
    assert "more than 16 file" in response.json()["detail"]
    assert stored(media_root) == NOTHING


def test_rest_form_fields_over_the_memory_limit_are_refused(pipeline_client, media_root):
    response = _rest_post(pipeline_client, " " * (3 * 1024 * 1024), stamp_files("B", seed=1))
    assert response.status_code == 413, response.content
    assert "too large" in response.json()["detail"]
    assert stored(media_root) == NOTHING


def test_rest_json_instead_of_multipart_is_refused(pipeline_client, media_root):
    response = pipeline_client.post("/api/v1/tracklets/", _meta_b(), format="json")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert stored(media_root) == NOTHING


# --- whole bundles ----------------------------------------------------------------------------


def _zip_with(tmp_path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], base=True):
    target = tmp_path / "night.zip"
    folder = write_bundle(tmp_path / "night", ["A"]) if base else None
    with zipfile.ZipFile(target, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names; that is the point
        if folder is not None:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, str(path.relative_to(folder)))
        for info, data in members:
            archive.writestr(info, data)
    return target


def _zip_link(tmp_path):
    info = zipfile.ZipInfo("stamps/link.fits")
    info.external_attr = (0o120777) << 16
    return _zip_with(tmp_path, [(info, b"/etc/passwd")])


def _zip_device(tmp_path):
    info = zipfile.ZipInfo("stamps/dev")
    info.external_attr = (0o020666) << 16
    return _zip_with(tmp_path, [(info, b"")])


def _zip_lying_size(tmp_path):
    target = _zip_with(tmp_path, [("stamps/big.bin", b"\0" * 100_000)])
    data = bytearray(target.read_bytes())
    # Declare 1000 bytes for big.bin in the central directory (the size zipfile believes).
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo("stamps/big.bin")
    central = data.rfind(
        b"PK\x01\x02" + data[data.find(b"PK\x01\x02") + 4 : data.find(b"PK\x01\x02") + 4][:0]
    )
    position = data.find(b"stamps/big.bin", data.find(b"PK\x01\x02"))
    header = position - 46
    assert data[header : header + 4] == b"PK\x01\x02" and central >= 0 and info.file_size == 100_000
    data[header + 24 : header + 28] = struct.pack("<I", 1000)
    target.write_bytes(bytes(data))
    return target


def _zip_big(tmp_path):
    return _zip_with(tmp_path, [("stamps/zeros.bin", b"\0" * 3_000_000)])


def _tar_with(tmp_path, add, *, mode="w:gz", base=True):
    target = tmp_path / ("night.tar.gz" if mode == "w:gz" else "night.tar")
    folder = write_bundle(tmp_path / "night", ["A"]) if base else None
    with tarfile.open(target, mode, format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        if folder is not None:
            tar.add(folder, arcname=".")
        add(tar)
    return target


def _tar_member(kind, name="stamps/odd", linkname=""):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        tar.addfile(info)

    return add


def _tar_file(name: str, data: bytes):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def _manifest_only(tmp_path, name: str, content: bytes, *, stamps=True):
    folder = write_bundle(tmp_path / "night", ["A"]) if stamps else tmp_path / "night"
    folder.mkdir(exist_ok=True)
    for old in ("manifest.jsonl", "manifest.csv"):
        (folder / old).unlink(missing_ok=True)
    (folder / name).write_bytes(content)
    return zip_of(folder, tmp_path / "night.zip")


def _csv_manifest(tmp_path, edit):
    folder = write_bundle(tmp_path / "night", ["A"], csv_manifest=True)
    path = folder / "manifest.csv"
    path.write_text(edit(path.read_text()))
    return zip_of(folder, tmp_path / "night.zip")


def _jsonl_line(tmp_path, line: str):
    folder = write_bundle(tmp_path / "night", ["A", "B"])
    path = folder / "manifest.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(4, line)
    path.write_text("\n".join(lines) + "\n")
    return zip_of(folder, tmp_path / "night.zip")


def _both_manifests(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    (folder / "manifest.csv").write_text("night,tracklet\n")
    return zip_of(folder, tmp_path / "night.zip")


def _nested(tmp_path):
    inner = zip_of(write_bundle(tmp_path / "inner", ["A"]), tmp_path / "inner.zip")
    return _zip_with(tmp_path, [("inner.zip", inner.read_bytes())], base=False)


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path


def _escaping_stamp(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    path = folder / "manifest.jsonl"
    path.write_text(path.read_text().replace("stamps/A_0.fits", "../../etc/passwd"))
    return zip_of(folder, tmp_path / "night.zip")


ARCHIVE_CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("zip-absolute-path", lambda t: _zip_with(t, [("/tmp/evil", b"x")]), "outside the bundle"),
    ("zip-dot-dot", lambda t: _zip_with(t, [("stamps/../../evil", b"x")]), "outside the bundle"),
    ("zip-drive-letter", lambda t: _zip_with(t, [("C:/evil", b"x")]), "outside the bundle"),
    ("zip-link", _zip_link, "is a link"),
    ("zip-device", _zip_device, "not a plain file or folder"),
    ("zip-duplicate-names", lambda t: _zip_with(t, [("stamps/A_0.fits", b"x")]), "appears twice"),
    ("zip-lying-size", _zip_lying_size, "stamps/big.bin"),
    ("zip-over-bundle-max", _zip_big, "BUNDLE_MAX_BYTES"),
    ("zip-nested-archive", _nested, "archives inside a bundle are not opened"),
    ("zip-empty", lambda t: _zip_with(t, [], base=False), "the archive is empty"),
    (
        "zip-truncated",
        lambda t: _truncated(zip_of(write_bundle(t / "n", ["A"]), t / "n.zip")),
        "zip archive cannot be read",
    ),
    (
        "zip-control-character-name",
        lambda t: _zip_with(t, [("stamps/a\x01b", b"x")]),
        "control characters",
    ),
    (
        "tar-symlink",
        lambda t: _tar_with(t, _tar_member(tarfile.SYMTYPE, linkname="/etc/passwd")),
        "not a plain file or folder",
    ),
    (
        "tar-hardlink",
        lambda t: _tar_with(t, _tar_member(tarfile.LNKTYPE, linkname="manifest.jsonl")),
        "not a plain file or folder",
    ),
    (
        "tar-char-device",
        lambda t: _tar_with(t, _tar_member(tarfile.CHRTYPE)),
        "not a plain file or folder",
    ),
    (
        "tar-fifo",
        lambda t: _tar_with(t, _tar_member(tarfile.FIFOTYPE)),
        "not a plain file or folder",
    ),
    ("tar-dot-dot", lambda t: _tar_with(t, _tar_file("../evil", b"x")), "outside the bundle"),
    ("tar-absolute", lambda t: _tar_with(t, _tar_file("/evil", b"x")), "outside the bundle"),
    (
        "tar-duplicate-names",
        lambda t: _tar_with(t, _tar_file("./manifest.jsonl", b"{}")),
        "appears twice",
    ),
    (
        "tar-non-utf8-name",
        lambda t: _tar_with(
            t, _tar_file(b"stamps/caf\xe9".decode("utf-8", "surrogateescape"), b"x")
        ),
        "not valid UTF-8",
    ),
    ("tar-empty", lambda t: _tar_with(t, lambda tar: None, base=False), "the archive is empty"),
    (
        "tar-plain-truncated",
        lambda t: _truncated(_tar_with(t, lambda tar: None, mode="w")),
        "tar archive cannot be read",
    ),
    (
        "gzip-not-tar",
        lambda t: _write(t / "night.tar.gz", gzip.compress(b"just text" * 100)),
        "tar archive cannot be read",
    ),
    ("zeros", lambda t: _write(t / "night.zip", b"\0" * 100_000), "its first bytes are not a zip"),
    (
        "text",
        lambda t: _write(t / "night.zip", b"night,tracklet\n"),
        "its first bytes are not a zip",
    ),
    (
        "manifest-not-utf8",
        lambda t: _manifest_only(t, "manifest.jsonl", '{"night": "caf\u00e9"}'.encode("latin-1")),
        "cannot be read as UTF-8",
    ),
    ("manifest-empty", lambda t: _manifest_only(t, "manifest.jsonl", b""), "has no rows"),
    (
        "manifest-missing",
        lambda t: _manifest_only(t, "notes.txt", b"hello"),
        "no manifest.jsonl or manifest.csv",
    ),
    ("manifest-both", _both_manifests, "both manifest.jsonl and manifest.csv"),
    (
        "jsonl-deep",
        lambda t: _jsonl_line(t, "[" * 5000 + "]" * 5000),
        "manifest.jsonl line 5: JSON nested deeper than 32 levels",
    ),
    (
        "jsonl-deep-object",
        lambda t: _jsonl_line(t, '{"night": ' * 3000 + "1" + "}" * 3000),
        "manifest.jsonl line 5: JSON nested deeper",
    ),
    (
        "jsonl-nan",
        lambda t: _jsonl_line(t, '{"night": "2026-11-24", "tracklet": "B", "mjd": NaN}'),
        "manifest.jsonl line 5: NaN",
    ),
    ("jsonl-a-list", lambda t: _jsonl_line(t, "[1, 2, 3]"), "line 5: a row must be a JSON object"),
    ("jsonl-broken", lambda t: _jsonl_line(t, '{"night": '), "line 5: not valid JSON"),
    (
        "jsonl-no-tracklet",
        lambda t: _jsonl_line(t, '{"night": "2026-11-24", "index": 0}'),
        "line 5: tracklet is missing",
    ),
    (
        "jsonl-duplicate-key",
        lambda t: _jsonl_line(t, '{"night": "2026-11-24", "night": "2026-11-25"}'),
        "line 5: key 'night' appears twice",
    ),
    (
        "csv-missing-column",
        lambda t: _csv_manifest(t, lambda s: s.replace(",mag,", ",")),
        "the header row lacks",
    ),
    (
        "csv-unknown-column",
        lambda t: _csv_manifest(t, lambda s: s.replace("stamp\n", "stamp,flux\n", 1)),
        "unknown column(s) 'flux'",
    ),
    (
        "csv-extra-values",
        lambda t: _csv_manifest(t, lambda s: s.replace(".fits\n", ".fits,9\n", 1)),
        "line 2: 11 values for 10 columns",
    ),
    (
        "csv-repeated-column",
        lambda t: _csv_manifest(t, lambda s: s.replace("mag", "ra", 1)),
        "the header row repeats 'ra'",
    ),
    ("stamp-path-escapes", _escaping_stamp, "points outside the bundle"),
]
ARCHIVE_IDS = [c[0] for c in ARCHIVE_CASES]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "make", "expected"), ARCHIVE_CASES, ids=ARCHIVE_IDS)
def test_bundle_upload_of_a_bad_bundle(
    pipeline_client, tmp_path, media_root, settings, name, make, expected
):
    settings.BUNDLE_MAX_BYTES = 2_000_000
    archive = make(tmp_path)
    response, job = upload_and_run(pipeline_client, archive, archive.name)
    if job is None:  # refused at once, before it is stored
        _assert_400_naming(response, expected)
        assert not BundleUpload.objects.exists() and stored_files(media_root) == []
        return
    assert job["status"] == "failed" and expected in job["error"], job
    assert "nothing written" in job["error"]
    assert job["results"] == [] and stored(media_root) == NOTHING


@pytest.mark.parametrize(("name", "make", "expected"), ARCHIVE_CASES, ids=ARCHIVE_IDS)
def test_command_of_a_bad_bundle(tmp_path, media_root, settings, name, make, expected):
    settings.BUNDLE_MAX_BYTES = 2_000_000
    status, printed = run_command(str(make(tmp_path)))
    assert status == 1 and "nothing written" in printed and expected in printed, printed
    assert stored(media_root) == NOTHING


# Per-tracklet problems only a bundle can have: its stamp paths name files of the bundle.
BUNDLE_STAMP_PATH_CASES = [
    ("stamp-not-in-bundle", "stamps/B_9.fits", "'stamps/B_9.fits' is not a file in the bundle"),
    ("stamp-is-a-folder", "stamps", "'stamps' is a folder, not a stamp file"),
]


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    BUNDLE_STAMP_PATH_CASES,
    ids=[c[0] for c in BUNDLE_STAMP_PATH_CASES],
)
def test_a_bundle_stamp_path_that_names_no_file(
    pipeline_client, tmp_path, media_root, name, path, expected
):
    def point(meta):
        meta["detections"][2]["stamp"] = (
            path.removeprefix("stamps/") if "/" in path else "../stamps"
        )
        return meta

    folder = bundle_folder(tmp_path, change=point)
    manifest = folder / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"stamps/../stamps"', '"stamps"'))
    assert_command_lists(folder, tmp_path, expected)
    assert stored(media_root) == ONLY_GOOD
    Tracklet.objects.all().delete()  # the upload path next, on a clean store
    for path_ in stored_files(media_root):
        path_.unlink()
    Night.objects.all().delete()
    response, job = upload_and_run(pipeline_client, zip_of(folder, tmp_path / "night.zip"))
    assert job["status"] == "succeeded", job
    assert_bad_tracklet_listed(job["results"], expected)
    assert stored(media_root) == ONLY_GOOD


def test_csv_text_that_is_no_number_rejects_its_tracklet(tmp_path, media_root):
    folder = write_bundle(tmp_path / "night", ["A", "B", "C"], csv_manifest=True)
    path = folder / "manifest.csv"
    lines = path.read_text().splitlines()
    cells = lines[6].split(",")  # B's second detection
    cells[6] = "1_000"  # mag: Python's float() takes it; it is no decimal number
    lines[6] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    status, printed = run_command(str(folder))
    assert status == 1 and "mag '1_000' is not a number" in printed, printed
    assert stored(media_root) == ONLY_GOOD


# --- uploads refused while they arrive --------------------------------------------------------


def test_a_bundle_upload_over_the_limit_is_refused_with_413_and_writes_nothing(
    pipeline_client, tmp_path, media_root, settings
):
    settings.BUNDLE_MAX_BYTES = 100_000
    archive = zip_of(write_bundle(tmp_path / "night", ["A", "B", "C"]), tmp_path / "night.zip")
    assert archive.stat().st_size > 100_000
    response, job = upload_and_run(pipeline_client, archive)
    assert response.status_code == 413 and job is None
    assert response.json()["limit"] == "BUNDLE_MAX_BYTES"
    assert "BUNDLE_MAX_BYTES" in response.json()["detail"]
    assert not BundleUpload.objects.exists() and stored_files(media_root) == []


def test_a_bundle_upload_declaring_a_huge_length_is_refused_before_it_is_read(
    pipeline_client, media_root
):
    response = pipeline_client.generic(
        "POST",
        "/api/v1/bundles/",
        b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(100 * 1024**3),
    )
    assert response.status_code == 413, response.content
    assert response.json()["limit"] == "BUNDLE_MAX_BYTES"
    assert not BundleUpload.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("name", "files", "expected", "status"),
    [
        ("no-file", {}, "file", 400),
        ("empty-file", {"file": b""}, "empty", 400),
        (
            "two-files",
            {"file": b"PK\x05\x06" + b"\0" * 18, "other": b"PK\x05\x06"},
            "more than 1 file",
            413,
        ),
    ],
    ids=["no-file", "empty-file", "two-files"],
)
def test_a_bundle_upload_form_that_is_wrong(
    pipeline_client, media_root, name, files, expected, status
):
    body = {k: SimpleUploadedFile(f"{k}.zip", v) for k, v in files.items()}
    response = pipeline_client.post("/api/v1/bundles/", body, format="multipart")
    assert response.status_code == status, response.content
    assert expected in response.content.decode()
    assert not BundleUpload.objects.exists() and stored_files(media_root) == []


def test_a_gigabyte_of_zeros_is_refused_at_once(tmp_path):
    path = tmp_path / "zeros.zip"
    with open(path, "wb") as handle:
        handle.truncate(1024**3)  # sparse: a gigabyte of zeros without writing one
    started = time.monotonic()
    with pytest.raises(BundleError, match="its first bytes are not a zip"):
        bundle_ingest(path=path)
    assert time.monotonic() - started < 2


# --- masked pixels ----------------------------------------------------------------------------


def test_float32_mask_values_are_missing_data_like_nan(pipeline_client, media_root):
    pixels = stamp_pixels(7)
    pixels[:, :10] = -3.4e38  # how ZTF templates mark masked pixels
    pixels[:5, :] = np.nan
    files = {**stamp_files("B", seed=1), "B_0.fits": fits_bytes(pixels)}
    response = _rest_post(pipeline_client, _meta_b(), files)
    assert response.status_code == 201, response.content
    model_input = Tracklet.objects.get().model_input()[0]
    assert np.isnan(model_input[:, :10]).all() and np.isnan(model_input[:5]).all()
    assert np.isfinite(model_input[10:, 10:]).all()
    from screening.review.displays import NAN_RGB, display_png

    display = np.asarray(
        Image.open(io.BytesIO(display_png(Detection.objects.get(index=0)))).convert("RGB")
    )

    assert tuple(display[50, 3]) == NAN_RGB and tuple(display[2, 50]) == NAN_RGB


# --- as a user runs the command ---------------------------------------------------------------


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "ingest", *args, "--no-progress"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_in_a_shell_names_an_unusable_bundle_without_a_traceback(tmp_path):
    path = _write(tmp_path / "night.zip", b"\0" * 4096)
    done = _manage(str(path), env={"MEDIA_ROOT": str(tmp_path / "media")})
    assert done.returncode == 1, done
    assert "not a directory, .zip or .tar.gz bundle" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_the_command_in_a_shell_lists_a_bad_stamp_without_a_traceback(
    transactional_db, tmp_path, media_root
):
    from django.conf import settings as django_settings

    if "postgresql" not in django_settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs the PostgreSQL that ./run test starts (a database two processes share)")
    from tests.conftest import _test_database_url

    folder = bundle_folder(tmp_path, stamp=raw_fits(fits_header("-100", "-100"), PIXELS))
    done = _manage(
        str(folder), env={"MEDIA_ROOT": str(media_root), "DATABASE_URL": _test_database_url()}
    )
    assert done.returncode == 1, done
    assert "rejected: 2026-11-24/B" in done.stderr and "NAXIS1" in done.stderr
    assert "3 tracklets: 2 created, 0 unchanged, 1 rejected" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert stored(media_root) == ONLY_GOOD

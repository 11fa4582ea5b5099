"""Night bundles: directory, zip and tar.gz; per-tracklet results; unsafe bundles refused whole."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from screening.ingest.bundles import BundleError, bundle_ingest
from screening.models import Detection, Tracklet
from tests.conftest import stored_files
from tests.stamps import write_bundle

pytestmark = pytest.mark.django_db


def zip_folder(folder: Path, target: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + str(path.relative_to(folder)))
    return target


def test_it_ingests_a_directory_bundle(tmp_path):
    report = bundle_ingest(path=write_bundle(tmp_path / "night", ["A", "B", "C"]))
    assert report.summary == {
        "tracklets": 3,
        "created": 3,
        "unchanged": 0,
        "rejected": 0,
        "conflict": 0,
    }
    assert Tracklet.objects.count() == 3 and Detection.objects.count() == 12


def test_it_ingests_a_zip_whose_files_sit_in_one_top_folder(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A", "B"])
    archive = zip_folder(folder, tmp_path / "night.zip", prefix="2026-11-24/")
    assert bundle_ingest(path=archive).summary["created"] == 2


def test_it_ingests_a_tar_gz_with_a_csv_manifest(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A", "B"], csv_manifest=True)
    archive = tmp_path / "night.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
    assert bundle_ingest(path=archive).summary["created"] == 2
    assert Tracklet.objects.get(survey_id="A").detections.count() == 4


def test_a_second_ingest_of_the_same_bundle_changes_nothing(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A", "B"])
    bundle_ingest(path=folder)
    assert bundle_ingest(path=folder).summary["unchanged"] == 2
    assert Tracklet.objects.count() == 2


def _rewrite_manifest(folder: Path, change) -> None:
    manifest = folder / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows = change(rows)
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_a_row_with_a_missing_field_rejects_its_tracklet_only(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A", "B"])

    def drop_x(rows):
        del rows[5]["x"]  # B's second detection, manifest line 6
        return rows

    _rewrite_manifest(folder, drop_x)
    report = bundle_ingest(path=folder)
    by_id = {r["tracklet"]: r for r in report.results}
    assert by_id["A"]["status"] == "created"
    assert by_id["B"]["status"] == "rejected"
    assert by_id["B"]["errors"] == [{"field": "detections[1].x", "reason": "x is missing"}]
    assert "lines 5, 6, 7, 8" in by_id["B"]["origin"]
    assert list(Tracklet.objects.values_list("survey_id", flat=True)) == ["A"]


def test_a_row_that_names_no_tracklet_rejects_the_whole_bundle(tmp_path, media_root):
    folder = write_bundle(tmp_path / "night", ["A", "B"])

    def drop_id(rows):
        del rows[6]["tracklet"]
        return rows

    _rewrite_manifest(folder, drop_id)
    with pytest.raises(BundleError, match="manifest.jsonl line 7: tracklet is missing"):
        bundle_ingest(path=folder)
    assert not Tracklet.objects.exists() and stored_files(media_root) == []


def test_a_zip_member_escaping_its_folder_rejects_the_whole_bundle(tmp_path, media_root):
    archive = zip_folder(write_bundle(tmp_path / "night", ["A"]), tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("../x", b"escape")
    with pytest.raises(BundleError, match="'../x' would be written outside"):
        bundle_ingest(path=archive)
    assert not (tmp_path / "x").exists()
    assert not Tracklet.objects.exists() and stored_files(media_root) == []


def test_a_tar_member_escaping_its_folder_rejects_the_whole_bundle(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
        data = b"escape"
        info = tarfile.TarInfo("../x")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle_ingest(path=archive)
    assert not Tracklet.objects.exists()


def test_a_tar_with_a_link_is_refused(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=".")
        info = tarfile.TarInfo("stamps/passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(BundleError, match="not a plain file or folder"):
        bundle_ingest(path=archive)


def test_a_manifest_stamp_path_outside_the_bundle_is_refused(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    shutil.copy(folder / "stamps" / "A_0.fits", tmp_path / "outside.fits")

    def escape(rows):
        rows[0]["stamp"] = "../outside.fits"
        return rows

    _rewrite_manifest(folder, escape)
    with pytest.raises(BundleError, match="line 1: stamp path '../outside.fits' points outside"):
        bundle_ingest(path=folder)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not an archive at all", "not a directory, .zip or .tar.gz"),
        (b"PK\x03\x04broken zip", "the zip archive cannot be read"),
    ],
)
def test_an_unreadable_file_is_refused(tmp_path, content, reason):
    path = tmp_path / "bundle.zip"
    path.write_bytes(content)
    with pytest.raises(BundleError, match=reason):
        bundle_ingest(path=path)


def test_a_bundle_without_a_manifest_or_with_broken_json_is_refused(tmp_path):
    folder = write_bundle(tmp_path / "night", ["A"])
    (folder / "manifest.jsonl").write_text('{"night": "2026-11-24"\n')
    with pytest.raises(BundleError, match="line 1: not valid JSON"):
        bundle_ingest(path=folder)
    (folder / "manifest.jsonl").unlink()
    with pytest.raises(BundleError, match="no manifest.jsonl or manifest.csv"):
        bundle_ingest(path=folder)


def test_the_command_reports_results_and_fails_when_a_tracklet_is_rejected(tmp_path, capsys):
    folder = write_bundle(tmp_path / "night", ["A", "B"])
    (folder / "stamps" / "B_2.fits").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest", str(folder), "--report", str(tmp_path / "report.json"))
    assert exit_info.value.code == 1
    out = capsys.readouterr()
    assert "2 tracklets: 1 created, 0 unchanged, 1 rejected" in out.out
    assert "rejected: 2026-11-24/B" in out.err and "file is empty" in out.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["rejected"] == 1


def test_the_command_names_the_problem_of_an_unusable_bundle(tmp_path):
    with pytest.raises(CommandError, match="nothing written: .*no such file"):
        call_command("ingest", str(tmp_path / "missing"))

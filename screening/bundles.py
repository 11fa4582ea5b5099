"""Night bundles: a directory, .zip or .tar.gz holding a manifest and the stamp files it names.

The manifest is `manifest.jsonl` (one JSON object per line) or `manifest.csv` (a header row),
one row per detection, with the keys night, tracklet, index, mjd, ra, dec, mag, x, y, stamp;
`stamp` is the stamp file's path relative to the manifest's folder. It sits at the top of the
bundle or in its single top-level folder.

What is checked for the whole bundle before anything is written (any failure rejects the whole
bundle): the archive is readable, its members are plain files or folders inside it, the total size
is under the limit, the manifest parses, every row names its night and tracklet, and every stamp
path stays inside the bundle. Everything else is per tracklet: each tracklet is ingested whole or
not at all, and the report says which were created, unchanged, rejected (with reasons) or in
conflict.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from screening import tasks
from screening.ingest import IngestRejected, StampSource, TrackletInput, tracklet_ingest

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
SCORING_REQUEST_EVERY = 200  # tracklets ingested between two requests to score


class BundleError(ValueError):
    """The bundle as a whole cannot be ingested; nothing was written."""


@dataclass
class BundleReport:
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {
            "tracklets": len(self.results),
            "created": 0,
            "unchanged": 0,
            "rejected": 0,
            "conflict": 0,
        }
        for result in self.results:
            counts[result["status"]] += 1
        return counts


@dataclass
class _ManifestGroup:
    night: str
    survey_id: str
    rows: list[dict[str, Any]]
    lines: list[int]


def bundle_ingest(
    *, path: Path, progress: Callable[[int, int], None] | None = None
) -> BundleReport:
    """Ingest each tracklet of a bundle in its own transaction; BundleError if it is unusable."""
    with bundle_open(path) as root:
        manifest = _find_manifest(root)
        groups = _read_manifest(manifest)
        base = manifest.parent
        report = BundleReport()
        for done, group in enumerate(groups, start=1):
            report.results.append(_ingest_group(group, base, manifest.name))
            if done % SCORING_REQUEST_EVERY == 0 or done == len(groups):
                tasks.request_scoring()  # scoring overlaps the rest of the ingest
            if progress is not None:
                progress(done, len(groups))
        return report


def _ingest_group(group: _ManifestGroup, base: Path, manifest_name: str) -> dict[str, Any]:
    origin = f"{manifest_name} line{'s' if len(group.lines) > 1 else ''} " + ", ".join(
        str(n) for n in group.lines
    )
    stamps = {
        row["stamp"]: _file_source(base, row["stamp"]) for row in group.rows if row.get("stamp")
    }
    tracklet = TrackletInput(
        night=group.night,
        survey_id=group.survey_id,
        detections=group.rows,
        stamps=stamps,
        origin=origin,
    )
    try:
        result = tracklet_ingest(tracklet=tracklet, request_scoring=False)
    except IngestRejected as exc:
        status = "conflict" if exc.status == 409 else "rejected"
        return {**exc.as_dict(), "status": status, "origin": origin}
    return {
        "night": group.night,
        "tracklet": group.survey_id,
        "status": "created" if result.created else "unchanged",
        "id": result.tracklet.pk,
        "origin": origin,
    }


def _file_source(base: Path, relative: str) -> StampSource:
    def read(limit: int) -> bytes:
        with open(base / relative, "rb") as handle:
            return handle.read(limit + 1)

    return StampSource(name=relative, read=read)


@contextmanager
def bundle_open(path: Path) -> Iterator[Path]:
    """Yield a directory holding the bundle: the path itself, or a checked extraction of it."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise BundleError(f"{path}: no such file or directory")
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        target = Path(tmp)
        if zipfile.is_zipfile(path):
            _extract_zip(path, target)
        elif _is_tar(path):
            _extract_tar(path, target)
        else:
            raise BundleError(f"{path.name}: not a directory, .zip or .tar.gz bundle")
        yield target


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError):
        return False


def _check_member_name(name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise BundleError(f"bundle member {name!r} would be written outside the bundle's folder")


def _check_total(total: int) -> None:
    if total > settings.BUNDLE_MAX_BYTES:
        raise BundleError(
            f"bundle holds {total} bytes uncompressed; the limit is {settings.BUNDLE_MAX_BYTES}"
        )


def _extract_zip(path: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            for info in members:
                _check_member_name(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise BundleError(
                        f"bundle member {info.filename!r} is a link; links are refused"
                    )
            _check_total(sum(info.file_size for info in members))
            for info in members:
                destination = target / info.filename
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"{path.name}: the zip archive cannot be read ({exc})") from exc


def _extract_tar(path: Path, target: Path) -> None:
    try:
        with tarfile.open(path, mode="r:*") as archive:
            members = archive.getmembers()
            for member in members:
                _check_member_name(member.name)
                if not (member.isfile() or member.isdir()):
                    raise BundleError(
                        f"bundle member {member.name!r} is not a plain file or folder; refused"
                    )
            _check_total(sum(member.size for member in members))
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path.name}: the tar archive cannot be read ({exc})") from exc


def _find_manifest(root: Path) -> Path:
    for folder in (root, *_single_subfolder(root)):
        for name in MANIFEST_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise BundleError(
        "bundle has no manifest.jsonl or manifest.csv at its top or in its single top-level folder"
    )


def _single_subfolder(root: Path) -> list[Path]:
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return entries if len(entries) == 1 and entries[0].is_dir() else []


def _read_manifest(manifest: Path) -> list[_ManifestGroup]:
    rows = list(_manifest_rows(manifest))
    if not rows:
        raise BundleError(f"{manifest.name} has no rows")
    groups: dict[tuple[str, str], _ManifestGroup] = {}
    for line, row in rows:
        for key in ("night", "tracklet"):
            if row.get(key) in (None, ""):
                raise BundleError(f"{manifest.name} line {line}: {key} is missing")
        stamp = row.get("stamp")
        if stamp:
            _check_stamp_path(manifest, line, str(stamp))
        key = (str(row["night"]).strip(), str(row["tracklet"]).strip())
        group = groups.setdefault(key, _ManifestGroup(key[0], key[1], [], []))
        group.rows.append(row)
        group.lines.append(line)
    return list(groups.values())


def _check_stamp_path(manifest: Path, line: int, stamp: str) -> None:
    pure = PurePosixPath(stamp.replace("\\", "/"))
    base = manifest.parent.resolve()
    resolved = (manifest.parent / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not resolved.is_relative_to(base):
        raise BundleError(
            f"{manifest.name} line {line}: stamp path {stamp!r} points outside the bundle"
        )


def _manifest_rows(manifest: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest.name} cannot be read as UTF-8 text ({exc})") from exc
    if manifest.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BundleError(f"{manifest.name} line {number}: not valid JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise BundleError(f"{manifest.name} line {number}: a row must be a JSON object")
            yield number, row
        return
    reader = csv.DictReader(io.StringIO(text))
    missing = {"night", "tracklet"} - set(reader.fieldnames or [])
    if missing:
        raise BundleError(f"{manifest.name}: the header row lacks {', '.join(sorted(missing))}")
    for row in reader:
        yield reader.line_num, {k: v for k, v in row.items() if k is not None}

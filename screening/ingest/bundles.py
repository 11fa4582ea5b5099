"""Night bundles: a directory, .zip or .tar.gz holding a manifest and the stamp files it names.

The manifest is `manifest.jsonl` (one JSON object per line) or `manifest.csv` (a header row),
one row per detection, with the keys night, tracklet, index, mjd, ra, dec, mag, x, y, stamp;
`stamp` is the stamp file's path relative to the manifest's folder. It sits at the top of the
bundle or in its single top-level folder.

What is checked for the whole bundle before anything is written (any failure rejects the whole
bundle): the file is a zip or tar (plain, gzip, bzip2 or xz; told by its first bytes, at once),
it is readable, its members are plain files or folders inside it (no absolute paths, no `..`, no
links or devices, no duplicate or non-UTF-8 names, each member no larger than it declares), the
total size is under BUNDLE_MAX_BYTES, there is one manifest, it is UTF-8 and parses (JSONL: each
line one JSON object, depth- and size-bounded; CSV: a header of exactly the known columns, no row
with extra values), every row names its night and tracklet, and every stamp path stays inside the
bundle. Everything else is per tracklet: each tracklet is ingested whole or not at all, and the
report says which were created, unchanged, rejected (with reasons) or in conflict. An unexpected
error while ingesting one tracklet rejects that tracklet (logged with its traceback) and the
ingest goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from screening import queueing
from screening.ingest.json_input import JSONInputError, json_load
from screening.ingest.tracklets import (
    DETECTION_FIELDS,
    OPTIONAL_DETECTION_FIELDS,
    IngestRejected,
    StampSource,
    TrackletInput,
    tracklets_ingest,
)
from screening.ingest.zip_tree import ZipPath, ZipTree

logger = logging.getLogger(__name__)
T = TypeVar("T")

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
MANIFEST_COLUMNS = ("night", "tracklet", *DETECTION_FIELDS)
MANIFEST_MAX_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 500_000
SCORING_REQUEST_EVERY = 200  # tracklets ingested between two requests to score
INGEST_BATCH = 50  # tracklets validated, then written in one transaction


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
class ManifestGroup:
    night: Any
    survey_id: Any
    rows: list[dict[str, Any]]
    lines: list[int]


def bundle_ingest(
    *,
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    report: BundleReport | None = None,
) -> BundleReport:
    """Ingest a bundle's tracklets, in batches (`groups_ingest`); BundleError if it is unusable.

    `report`, if given, is filled as the ingest goes, so a caller still has the results of the
    tracklets done so far should anything fail midway.
    """
    report = BundleReport() if report is None else report
    with bundle_open(path) as root:
        manifest, groups = bundle_manifest(root, path)
        groups_ingest(
            groups,
            folder_sources(manifest.parent),
            manifest.name,
            progress=progress,
            report=report,
        )
        return report


def bundle_manifest(root: Path, path: Path) -> tuple[Path, list[ManifestGroup]]:
    """The manifest of an opened bundle and its rows grouped by tracklet; BundleError if not."""
    try:
        manifest = _find_manifest(root)
        return manifest, _read_manifest(manifest)
    except BundleError:
        raise
    except Exception as exc:
        logger.exception("bundle %s: reading the manifest failed", path)
        raise BundleError(
            f"the manifest cannot be read (internal error: {type(exc).__name__}: {exc})"
        ) from exc


StampSources = Callable[[str], StampSource]


def groups_ingest(
    groups: list[ManifestGroup],
    sources: StampSources,
    manifest_name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    report: BundleReport,
) -> BundleReport:
    """Ingest tracklets (manifest groups) after the `len(report.results)` already done, their
    stamps read through `sources(relative path)`: INGEST_BATCH at a time, each batch's new
    tracklets written in one transaction (`tracklets_ingest`); every tracklet gets its own result,
    as if it had been ingested alone."""
    done = len(report.results)
    while done < len(groups):
        batch = groups[done : done + INGEST_BATCH]
        report.results.extend(_ingest_batch_safely(batch, sources, manifest_name))
        before, done = done, done + len(batch)
        if done // SCORING_REQUEST_EVERY > before // SCORING_REQUEST_EVERY or done == len(groups):
            queueing.request_scoring()  # scoring overlaps the rest of the ingest
        if progress is not None:
            progress(done, len(groups))
    return report


def _origin(group: ManifestGroup, manifest_name: str) -> str:
    return f"{manifest_name} line{'s' if len(group.lines) > 1 else ''} " + ", ".join(
        str(n) for n in group.lines
    )


class DatabaseUnavailable(RuntimeError):
    """The database stayed away longer than INGEST_DB_RETRY_SECONDS: the chunk stops here (its
    results so far kept) and the sweep hands it to a worker later; no tracklet is rejected."""


def database_retried(call: Callable[[], T], *, what: str) -> T:
    """`call()`, again after a pause (growing to 8 s) while the database is away (a restart, a
    failover), for up to INGEST_DB_RETRY_SECONDS; then DatabaseUnavailable. Only for calls that
    are safe to repeat (ingest is: the same content twice is a no-op)."""
    delay, deadline = 0.25, time.monotonic() + settings.INGEST_DB_RETRY_SECONDS
    while True:
        try:
            return call()
        except (OperationalError, InterfaceError) as exc:  # the connection, not the data
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"the database did not come back within {settings.INGEST_DB_RETRY_SECONDS} s "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            logger.warning("database error on %s, retrying in %.2f s: %s", what, delay, exc)
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()  # reconnect on the next query
            time.sleep(delay)
            delay = min(2 * delay, 8.0)


def _ingest_batch_safely(
    batch: list[ManifestGroup], sources: StampSources, manifest_name: str
) -> list[dict[str, Any]]:
    try:
        return database_retried(
            lambda: _ingest_batch(batch, sources, manifest_name),
            what=f"{len(batch)} tracklet(s) from {batch[0].survey_id!r}",
        )
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # one tracklet's surprise must not stop the night
        if len(batch) > 1:  # find it: the others are ingested one by one
            logger.warning("a batch of %d tracklets failed (%s); one by one", len(batch), exc)
            return [r for g in batch for r in _ingest_batch_safely([g], sources, manifest_name)]
        group = batch[0]
        logger.exception("bundle tracklet %r/%r failed", group.night, group.survey_id)
        return [
            {
                "night": _text(group.night),
                "tracklet": _text(group.survey_id),
                "errors": [
                    {
                        "reason": f"internal error while ingesting this tracklet "
                        f"({type(exc).__name__}: {exc}); it was not stored"
                    }
                ],
                "status": "rejected",
                "origin": _origin(group, manifest_name),
            }
        ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _ingest_batch(
    batch: list[ManifestGroup], sources: StampSources, manifest_name: str
) -> list[dict[str, Any]]:
    inputs = [
        TrackletInput(
            night=group.night,
            survey_id=group.survey_id,
            detections=group.rows,
            stamps={
                row["stamp"]: sources(row["stamp"])
                for row in group.rows
                if isinstance(row.get("stamp"), str) and row["stamp"].strip()
            },
            origin=_origin(group, manifest_name),
            text_values=manifest_name.endswith(".csv"),
        )
        for group in batch
    ]
    results = []
    for tracklet, outcome in zip(
        inputs, tracklets_ingest(inputs, request_scoring=False), strict=True
    ):
        if isinstance(outcome, IngestRejected):
            status = "conflict" if outcome.status == 409 else "rejected"
            results.append({**outcome.as_dict(), "status": status, "origin": tracklet.origin})
            continue
        results.append(
            {
                "night": str(tracklet.night),
                "tracklet": str(tracklet.survey_id),
                "status": "created" if outcome.created else "unchanged",
                "id": outcome.tracklet.pk,
                "origin": tracklet.origin,
            }
        )
    return results


def folder_sources(base: Path) -> StampSources:
    """Stamps read from files under `base` (the manifest's folder)."""

    def source(relative: str) -> StampSource:
        def read(limit: int) -> bytes:
            path = base / relative
            if path.is_dir():
                raise OSError(f"{relative!r} is a folder, not a stamp file")
            if not path.is_file():
                raise OSError(f"{relative!r} is not a file in the bundle")
            with path.open("rb") as handle:
                return handle.read(limit + 1)

        return StampSource(name=relative, read=read)

    return source


# --- chunks: parts of a bundle that other workers ingest ---------------------------------------

CHUNK_INDEX = "chunk.json"


def chunk_archive_write(
    groups: list[ManifestGroup], base: Path, manifest_name: str, target: Path
) -> None:
    """Write the groups and the stamp files they name (read from `base`) as one chunk archive.

    A chunk archive is ours, not a bundle: a zip (stored, not compressed: stamps are compressed
    already or small) of `chunk.json` (the groups as read, their manifest's name, which stamp
    paths are files and which are folders) and the files, by number. The worker that ingests it
    gives every tracklet the same result and message as the whole bundle would have.
    """
    files: dict[str, str] = {}
    folders: list[str] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for group in groups:
            for row in group.rows:
                relative = row.get("stamp")
                if not isinstance(relative, str) or not relative.strip():
                    continue
                if relative in files or relative in folders:
                    continue
                path = base / relative
                try:
                    if path.is_dir():
                        folders.append(relative)
                    elif path.is_file():
                        files[relative] = f"f/{len(files)}"
                        with path.open("rb") as source, archive.open(files[relative], "w") as sink:
                            shutil.copyfileobj(source, sink, 1024 * 1024)
                except (OSError, ValueError):
                    continue  # unreadable here: the ingest reports it as not a file
        index = {
            "manifest": manifest_name,
            "groups": [
                {"night": g.night, "tracklet": g.survey_id, "rows": g.rows, "lines": g.lines}
                for g in groups
            ],
            "files": files,
            "folders": folders,
        }
        archive.writestr(CHUNK_INDEX, json.dumps(index, separators=(",", ":")))


@contextmanager
def chunk_archive_open(path: Path) -> Iterator[tuple[list[ManifestGroup], StampSources, str]]:
    """The groups, stamp sources and manifest name of a chunk archive written above."""
    with zipfile.ZipFile(path) as archive:
        index = json.loads(archive.read(CHUNK_INDEX))
        groups = [
            ManifestGroup(g["night"], g["tracklet"], g["rows"], g["lines"]) for g in index["groups"]
        ]
        files, folders = index["files"], set(index["folders"])

        def source(relative: str) -> StampSource:
            def read(limit: int) -> bytes:
                if relative in folders:
                    raise OSError(f"{relative!r} is a folder, not a stamp file")
                if relative not in files:
                    raise OSError(f"{relative!r} is not a file in the bundle")
                with archive.open(files[relative]) as handle:
                    return handle.read(limit + 1)

            return StampSource(name=relative, read=read)

        yield groups, source, index["manifest"]


# --- opening the archive -----------------------------------------------------------------------


def archive_kind(head: bytes) -> str | None:
    """What an archive's first bytes (512 are enough) say it is: zip, gz, bz2, xz, tar or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


@contextmanager
def bundle_open(path: Path) -> Iterator[Path | ZipPath]:
    """Yield the bundle's top folder: the path itself (a folder), a checked zip's top read in
    place (`zip_tree.ZipPath`: its members are never extracted), or a checked extraction of a
    tar."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise BundleError(f"{path}: no such file or directory")
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise BundleError(f"{path.name}: cannot be read ({exc})") from exc
    kind = archive_kind(head)
    if kind is None:
        why = (
            "the file is empty"
            if not head
            else "its first bytes are not a zip, gzip, bzip2, xz or tar header"
        )
        raise BundleError(f"{path.name}: not a directory, .zip or .tar.gz bundle ({why})")
    if kind == "zip":
        with _zip_checked(path) as tree:
            if not tree.files and tree.folders == {""}:
                raise BundleError(f"{path.name}: the archive is empty (it holds no files)")
            yield tree.root()
        return
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        target = Path(tmp)
        try:
            _extract_tar(path, target, mode="r:" if kind == "tar" else f"r:{kind}")
        except BundleError:
            raise
        except Exception as exc:
            logger.exception("bundle %s: extraction failed", path)
            raise BundleError(
                f"{path.name}: the archive cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
        if not any(target.iterdir()):
            raise BundleError(f"{path.name}: the archive is empty (it holds no files)")
        yield target


class _MemberChecks:
    """What every member of an archive must pass before anything is extracted."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.total = 0

    def check(self, name: str, size: int) -> str:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise BundleError(
                f"bundle member name {name!r} is not valid UTF-8; name files in UTF-8"
            ) from None
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise BundleError(f"bundle member name {name!r} holds control characters")
        _check_member_name(name)
        normal = "/".join(p for p in PurePosixPath(name.replace("\\", "/")).parts if p != ".")
        if normal in self.names and normal:
            raise BundleError(f"bundle member {name!r} appears twice in the archive")
        self.names.add(normal)
        if len(self.names) > MAX_MEMBERS:
            raise BundleError(f"bundle holds more than {MAX_MEMBERS} members")
        self.total += max(0, size)
        _check_total(self.total)
        return normal


def _check_member_name(name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise BundleError(f"bundle member {name!r} would be written outside the bundle's folder")


def _check_total(total: int) -> None:
    if total > settings.BUNDLE_MAX_BYTES:
        raise BundleError(
            f"bundle holds more than {total} bytes uncompressed; the limit is "
            f"BUNDLE_MAX_BYTES = {settings.BUNDLE_MAX_BYTES}"
        )


@contextmanager
def _zip_checked(path: Path) -> Iterator[ZipTree]:
    """The zip, open, once every member has passed the checks; BundleError if one does not."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise BundleError(f"{path.name}: the zip archive cannot be read ({exc})") from exc
    with archive:
        try:
            checks = _MemberChecks()
            for info in archive.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise BundleError(
                        f"bundle member {info.filename!r} is a link; links are refused"
                    )
                kind = stat.S_IFMT(mode)
                if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise BundleError(
                        f"bundle member {info.filename!r} is not a plain file or folder; refused"
                    )
                if info.flag_bits & 0x1:
                    raise BundleError(f"bundle member {info.filename!r} is encrypted; refused")
                checks.check(info.filename, info.file_size)
            for info in archive.infolist():  # every member's data against its size and CRC
                _zip_member_verify(archive, info)
            tree = ZipTree(archive)
        except BundleError:
            raise
        except (UnicodeDecodeError, RuntimeError, NotImplementedError, ValueError) as exc:
            raise BundleError(f"{path.name}: the zip archive cannot be read ({exc})") from exc
        yield tree


def _zip_member_verify(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Read a member through (no copy kept): BundleError naming it if its data is not what its
    header declares (more bytes than its size, a wrong CRC, a broken stream)."""
    if info.is_dir():
        return
    try:
        with archive.open(info) as handle:
            while handle.read(1024 * 1024):
                pass
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise BundleError(
            f"bundle member {info.filename!r} does not hold the {info.file_size} bytes it "
            f"declares ({exc})"
        ) from exc


def _extract_tar(path: Path, target: Path, *, mode: str) -> None:
    try:
        with tarfile.open(path, mode=mode) as archive:
            checks = _MemberChecks()
            members = []
            for member in archive:  # one at a time: a bomb is refused once over the limit
                if not (member.isfile() or member.isdir()):
                    raise BundleError(
                        f"bundle member {member.name!r} is not a plain file or folder (a link, "
                        "device or fifo); refused"
                    )
                checks.check(member.name, member.size)
                members.append(member)
            archive.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError, UnicodeError) as exc:
        raise BundleError(f"{path.name}: the tar archive cannot be read ({exc})") from exc


# --- the manifest ------------------------------------------------------------------------------


def _find_manifest(root: Path) -> Path:
    for folder in (root, *_single_subfolder(root)):
        found = [folder / name for name in MANIFEST_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            raise BundleError(
                f"bundle holds both {' and '.join(p.name for p in found)}; send one manifest"
            )
        if found:
            return found[0]
    message = (
        "bundle has no manifest.jsonl or manifest.csv at its top or in its single top-level folder"
    )
    nested = _nested_archives(root)
    if nested:
        message += (
            f"; it holds the archive {nested[0]!r}: archives inside a bundle are not opened, "
            "send the inner bundle itself"
        )
    raise BundleError(message)


def _nested_archives(root: Path) -> list[str]:
    found = []
    for folder in (root, *_single_subfolder(root)):
        for entry in sorted(folder.iterdir()):
            if entry.is_file():
                with entry.open("rb") as handle:
                    if archive_kind(handle.read(512)) is not None:
                        found.append(str(entry.relative_to(root)))
    return found


def _single_subfolder(root: Path) -> list[Path]:
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return entries if len(entries) == 1 and entries[0].is_dir() else []


def _group_key(value: Any) -> str:
    return value.strip() if isinstance(value, str) else repr(value)


def _read_manifest(manifest: Path) -> list[ManifestGroup]:
    rows = list(_manifest_rows(manifest))
    if not rows:
        raise BundleError(f"{manifest.name} has no rows")
    groups: dict[tuple[str, str], ManifestGroup] = {}
    base = manifest.parent.resolve()
    for line, row in rows:
        for key in ("night", "tracklet"):
            if row.get(key) is None or (isinstance(row[key], str) and not row[key].strip()):
                raise BundleError(f"{manifest.name} line {line}: {key} is missing")
        stamp = row.get("stamp")
        if isinstance(stamp, str) and stamp.strip():
            _check_stamp_path(manifest, line, stamp, base)
        key = (_group_key(row["night"]), _group_key(row["tracklet"]))
        night, survey_id = (
            (v.strip() if isinstance(v, str) else v) for v in (row["night"], row["tracklet"])
        )
        group = groups.setdefault(key, ManifestGroup(night, survey_id, [], []))
        group.rows.append({k: v for k, v in row.items() if k not in ("night", "tracklet")})
        group.lines.append(line)
    return list(groups.values())


def _check_stamp_path(manifest: Path, line: int, stamp: str, base: Path) -> None:
    """BundleError if the stamp path leaves the bundle (`base`: its manifest's folder, resolved)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in stamp):
        return  # the tracklet is rejected for it, naming the field
    pure = PurePosixPath(stamp.replace("\\", "/"))
    try:
        resolved = (manifest.parent / pure).resolve()
    except (OSError, ValueError, RuntimeError):
        resolved = base / "unresolvable"
    if pure.is_absolute() or ".." in pure.parts or not resolved.is_relative_to(base):
        raise BundleError(
            f"{manifest.name} line {line}: stamp path {stamp!r} points outside the bundle"
        )


def _manifest_rows(manifest: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if manifest.stat().st_size > MANIFEST_MAX_BYTES:
        raise BundleError(f"{manifest.name} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest.name} cannot be read as UTF-8 text ({exc})") from exc
    if manifest.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json_load(line, where=f"{manifest.name} line {number}")
            except JSONInputError as exc:
                raise BundleError(str(exc)) from exc
            if not isinstance(row, dict):
                raise BundleError(f"{manifest.name} line {number}: a row must be a JSON object")
            yield number, row
        return
    yield from _csv_rows(manifest.name, text)


def _csv_rows(name: str, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if header is None:
            return
        columns = [c.strip() for c in header]
        reader.fieldnames = columns
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise BundleError(f"{name}: the header row repeats {', '.join(map(repr, repeated))}")
        missing = [c for c in MANIFEST_COLUMNS if c not in columns]
        if missing:
            raise BundleError(f"{name}: the header row lacks {', '.join(missing)}")
        unknown = [
            c for c in columns if c not in MANIFEST_COLUMNS and c not in OPTIONAL_DETECTION_FIELDS
        ]
        if unknown:
            raise BundleError(
                f"{name}: the header row has unknown column(s) "
                f"{', '.join(repr(c[:40]) for c in unknown[:5])}; the columns are "
                f"{', '.join(MANIFEST_COLUMNS)} and optionally "
                f"{', '.join(OPTIONAL_DETECTION_FIELDS)}"
            )
        for row in reader:
            if None in row:
                raise BundleError(
                    f"{name} line {reader.line_num}: {len(columns) + len(row[None])} values "
                    f"for {len(columns)} columns"
                )
            yield reader.line_num, dict(row)
    except csv.Error as exc:
        raise BundleError(f"{name} line {reader.line_num}: not valid CSV ({exc})") from exc

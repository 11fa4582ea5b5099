"""A zip bundle read in place: the paths of its members, without extracting them.

Extracting a night's bundle wrote every stamp to disk once more before ingest read it back (one
new file a stamp: 40,000 for a night of 10,000 tracklets, a millisecond each on a busy disk).
`ZipPath` gives the bundle code the part of `pathlib.Path` it uses (`/`, `is_file`, `is_dir`,
`iterdir`, `open`, `read_text`, `stat().st_size`, `resolve`, `relative_to`, `name`, `suffix`,
`parent`) over the archive's members, so a zip bundle is read where it lies.

Member names are normalised as extraction would place them (`./a//b` is `a/b`); folders are
those named and those implied by a member's path. A name with `..` is never a member (the
archive's checks refuse it) and a path built with `..` finds nothing. Reading a member that
turns out corrupt raises OSError, which the ingest reports for the tracklet that names it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from types import SimpleNamespace
from typing import IO


def normal(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


class ZipTree:
    """The members of an open zip: files by normalised name, and the folders."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.files: dict[str, zipfile.ZipInfo] = {}
        self.folders: set[str] = {""}
        self.children: dict[str, set[str]] = {"": set()}
        for info in archive.infolist():
            at = normal(info.filename)
            if not at:
                continue
            if info.is_dir():
                self._folder(at)
            else:
                self.files[at] = info
                self._add_child(at)

    def _folder(self, at: str) -> None:
        if at in self.folders:
            return
        self.folders.add(at)
        self.children.setdefault(at, set())
        self._add_child(at)

    def _add_child(self, at: str) -> None:
        parent = at.rpartition("/")[0]
        self._folder(parent)
        self.children[parent].add(at)

    def root(self) -> ZipPath:
        return ZipPath(self, "")


class ZipPath:
    """A path inside a `ZipTree` ("" is the archive's top)."""

    def __init__(self, tree: ZipTree, at: str) -> None:
        self._tree = tree
        self.at = at

    # --- names ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.at.rpartition("/")[2]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix if self.name else ""

    @property
    def parent(self) -> ZipPath:
        return ZipPath(self._tree, self.at.rpartition("/")[0])

    def __truediv__(self, other) -> ZipPath:
        parts = [p for p in f"{self.at}/{other}".split("/") if p not in ("", ".")]
        return ZipPath(self._tree, "/".join(parts))

    def resolve(self) -> ZipPath:
        return self  # no links in a checked archive

    def is_relative_to(self, other: ZipPath) -> bool:
        return other.at == "" or self.at == other.at or self.at.startswith(other.at + "/")

    def relative_to(self, other: ZipPath) -> PurePosixPath:
        if not self.is_relative_to(other):
            raise ValueError(f"{self} is not in {other}")
        return PurePosixPath(self.at[len(other.at) :].lstrip("/"))

    def __str__(self) -> str:
        return self.at or "."

    def __repr__(self) -> str:
        return f"ZipPath({self.at!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZipPath) and (other._tree, other.at) == (self._tree, self.at)

    def __hash__(self) -> int:
        return hash((id(self._tree), self.at))

    def __lt__(self, other: ZipPath) -> bool:
        return self.at < other.at

    # --- what is there ------------------------------------------------------------------------
    def is_file(self) -> bool:
        return self.at in self._tree.files

    def is_dir(self) -> bool:
        return self.at in self._tree.folders

    def iterdir(self) -> Iterator[ZipPath]:
        if not self.is_dir():
            raise NotADirectoryError(str(self))
        for at in sorted(self._tree.children.get(self.at, ())):
            yield ZipPath(self._tree, at)

    def stat(self) -> SimpleNamespace:
        if not self.is_file():
            raise FileNotFoundError(str(self))
        return SimpleNamespace(st_size=self._tree.files[self.at].file_size)

    # --- reading ------------------------------------------------------------------------------
    def open(self, mode: str = "rb") -> IO[bytes]:
        if mode != "rb":
            raise ValueError("a zip bundle is read only ('rb')")
        if not self.is_file():
            raise (IsADirectoryError if self.is_dir() else FileNotFoundError)(str(self))
        try:
            return _Checked(self._tree.archive.open(self._tree.files[self.at]), str(self))
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as e:
            raise OSError(f"{self} cannot be read from the archive ({e})") from e

    def read_bytes(self) -> bytes:
        with self.open("rb") as handle:
            return handle.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)


class _Checked:
    """A member's reader whose corrupt data is an OSError (a stamp that cannot be read)."""

    def __init__(self, handle: IO[bytes], name: str) -> None:
        self._handle, self._name = handle, name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise OSError(f"{self._name} cannot be read from the archive ({exc})") from exc

    def __enter__(self) -> _Checked:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    def close(self) -> None:
        self._handle.close()

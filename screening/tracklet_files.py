"""One stored file per tracklet: its model input and every stamp as received, in one zip.

Ingest used to write five files a tracklet (the (n, 100, 100) float32 stack as `.npy` and each
stamp file as received); creating a file cost as much as the rest of a tracklet's ingest, and
on an object store each is a request. Now a tracklet is one uncompressed zip under
`tracklets/<night>/<content hash>.zip`:
- `pixels.npy`: the model's input, (n, 100, 100) float32 in time order;
- `stamp-<index><suffix>`: each detection's stamp file, byte for byte as the survey sent it,
  with the suffix it came with (`.fits.gz`, `.png`, ...).

`Tracklet.pixels` and each `Detection.stamp` name that zip. Rows stored before it (a `.npy` and
a file per stamp) are read as they are: these readers take both.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import numpy as np

PIXELS_MEMBER = "pixels.npy"
SUFFIX = ".zip"


def stamp_member(index: int, suffix: str) -> str:
    return f"stamp-{int(index)}{suffix}"


def tracklet_file_bytes(stack: np.ndarray, stamps: Sequence[tuple[int, str, bytes]]) -> bytes:
    """The tracklet's zip: the stack and each (index, suffix, bytes as received) stamp."""
    pixels = io.BytesIO()
    np.save(pixels, np.ascontiguousarray(stack, dtype=np.float32), allow_pickle=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(PIXELS_MEMBER, pixels.getvalue())
        for index, suffix, data in stamps:
            archive.writestr(stamp_member(index, suffix), data)
    return buffer.getvalue()


def _read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


def read_pixels(field) -> np.ndarray:
    """The (n, 100, 100) float32 stack a tracklet's `pixels` file holds (zip or older .npy)."""
    data = _read(field)
    if field.name.endswith(SUFFIX):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = archive.read(PIXELS_MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise ValueError(f"not a tracklet file ({error})") from error
    return np.load(io.BytesIO(data), allow_pickle=False)


def read_stamp_bytes(field, index: int) -> bytes:
    """Detection `index`'s stamp, byte for byte as received, from its `stamp` file (the
    tracklet's zip, or the stamp's own file for rows stored before it)."""
    return read_stamps_bytes(field, [index])[index]


def read_stamps_bytes(field, indexes: Sequence[int]) -> dict[int, bytes]:
    """Several detections' stamps from one read of their tracklet's file: {index: bytes}."""
    data = _read(field)
    if not field.name.endswith(SUFFIX):
        return dict.fromkeys(indexes, data)  # an older row: the file is the stamp itself
    out = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            for index in indexes:
                prefix = stamp_member(index, "")
                found = [n for n in names if n == prefix or n.startswith(prefix + ".")]
                if not found:
                    raise ValueError(f"the tracklet file has no stamp {index}")
                out[index] = archive.read(found[0])
    except zipfile.BadZipFile as error:
        raise ValueError(f"not a tracklet file ({error})") from error
    return out

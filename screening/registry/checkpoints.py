"""Model checkpoints in shared storage, with a local cache on each machine.

A checkpoint is registered from a file on one machine (`model_register`); workers on other
machines must score with it. Where media go to an object store (MEDIA_STORAGE=s3), registering
copies the checkpoint to `models/<file name>` in that store, and `checkpoint_local` gives any
process a local file: the registered path where this machine has it, else the copy in
CHECKPOINT_CACHE_DIR, else a fresh download into that cache. The file name carries the content
hash (the version), and loading verifies it, so a cached or downloaded copy cannot be a stale one.
On the filesystem storage (the embedded default, one machine) the registered path is the shared
copy, as before.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from classifier.novelty import reference_path
from screening.models import ModelVersion

logger = logging.getLogger(__name__)

STORAGE_FOLDER = "models"


class CheckpointMissing(FileNotFoundError):
    """A model's checkpoint is on no disk of this machine and not in shared storage."""


def shared_storage() -> bool:
    """True where media (and so checkpoints) live in an object store other machines read."""
    return not isinstance(default_storage, FileSystemStorage)


def storage_name(model: ModelVersion | str) -> str:
    """The checkpoint's object name in shared storage."""
    checkpoint = model.checkpoint if isinstance(model, ModelVersion) else model
    return posixpath.join(STORAGE_FOLDER, Path(checkpoint).name)


def checkpoint_publish(path: Path) -> str | None:
    """Copy a registered checkpoint, and its novelty reference where it has one
    (classifier.novelty), to shared storage (once; names are content hashes).

    Returns the checkpoint's object name, or None on the filesystem storage."""
    if not shared_storage():
        return None
    name = _publish(Path(path))
    sidecar = reference_path(Path(path))
    if sidecar.is_file():
        _publish(sidecar)
    return name


def _publish(path: Path) -> str:
    name = storage_name(str(path))
    if default_storage.exists(name):
        return name
    with open(path, "rb") as handle:
        saved = default_storage.save(name, File(handle, name=path.name))
    if saved != name:  # another process published the same bytes meanwhile: keep one copy
        default_storage.delete(saved)
    logger.info("published %s to shared storage", name)
    return name


def cache_dir() -> Path:
    return Path(settings.CHECKPOINT_CACHE_DIR)


def checkpoint_local(model: ModelVersion) -> Path:
    """A local file of the model's checkpoint: where it was registered if this machine has it,
    else this machine's cached copy, else downloaded from shared storage into the cache; its
    novelty reference beside it where shared storage has one.

    Raises CheckpointMissing naming both places when neither has it."""
    registered = Path(model.checkpoint)
    if registered.is_file():
        return registered
    cached = cache_dir() / registered.name
    if not cached.is_file():
        name = storage_name(model)
        if not shared_storage() or not default_storage.exists(name):
            where = (
                f"shared storage ({name})"
                if shared_storage()
                else "shared storage (not configured)"
            )
            raise CheckpointMissing(
                f"model {model.version}: its checkpoint is neither at {registered} on this "
                f"machine nor in {where}; register it again on a machine that has the file"
            )
        _download(name, cached)
    sidecar = reference_path(cached)
    if not sidecar.is_file() and shared_storage():
        name = storage_name(str(sidecar))
        if default_storage.exists(name):
            _download(name, sidecar)
    return cached


def _download(name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                out.write(chunk)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)  # atomic: a concurrent reader sees all of it or none
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.info("downloaded %s from shared storage to %s", name, target)

"""Bundle uploads over the API: stored at once, ingested by workers, results kept on the row.

The upload's job (`bundle_upload_run`, default queue) opens and checks the bundle, reads its
manifest and splits its tracklets into chunks of INGEST_CHUNK_TRACKLETS. It writes every chunk
but the first as an archive to storage and queues it (`bundle_chunk_run`), so that every worker
on the default queue, on any machine, ingests one at once; it ingests the first chunk itself from
the bundle it has opened. The last chunk to finish writes the upload's one report, tracklets in
the bundle's order, and deletes the chunk archives. A bundle of one chunk is ingested by the job
alone, as before. Every step is safe to run twice: a chunk resumes after the tracklets its
results already list.

Nothing waits on a lost message or a lost worker: the beat's sweep (`bundle_uploads_sweep`,
every INGEST_SWEEP_SECONDS) queues again the chunks and uploads whose messages the broker no
longer holds, takes over those whose worker fell silent for INGEST_CHUNK_STALE_SECONDS, and
writes the report of uploads whose chunks have all finished.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from screening import queueing
from screening.ingest.bundles import (
    BundleError,
    BundleReport,
    DatabaseUnavailable,
    ManifestGroup,
    StampSources,
    bundle_manifest,
    bundle_open,
    chunk_archive_open,
    chunk_archive_write,
    database_retried,
    folder_sources,
    groups_ingest,
)
from screening.models import BundleChunk, BundleUpload, JobStatus

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 1.0


def _silent_since() -> datetime:
    """A chunk or upload running with no sign of life since then has lost its worker."""
    return timezone.now() - timedelta(seconds=settings.INGEST_CHUNK_STALE_SECONDS)


def _silent_q(stale: datetime) -> Q:
    return Q(status=JobStatus.RUNNING) & (
        Q(alive_at__lt=stale) | Q(alive_at__isnull=True, started_at__lt=stale)
    )


def bundle_upload_create(*, file: UploadedFile, user) -> BundleUpload:
    """Store an uploaded bundle and queue its ingest once the row is committed."""
    with transaction.atomic():
        upload = BundleUpload.objects.create(
            file=file, original_name=file.name[:255], uploaded_by=user
        )
        transaction.on_commit(lambda: queueing.enqueue(queueing.INGEST_BUNDLE_UPLOAD, upload.pk))
    return upload


def bundle_upload_run(*, upload_id: int, worker: str = "") -> None:
    """Check and split a stored bundle, queue its chunks and ingest the first; safe twice."""
    claimed = BundleUpload.objects.filter(
        pk=upload_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).update(status=JobStatus.RUNNING, started_at=timezone.now())
    if not claimed:
        return
    upload = BundleUpload.objects.get(pk=upload_id)
    try:
        with _local_copy(upload.file) as local, bundle_open(local) as root:
            manifest, groups = bundle_manifest(root, local)
            parts = _split(groups)
            first = _chunks_create(upload, parts, manifest.parent, manifest.name)
            if first is not None:
                _chunk_ingest(
                    first, parts[0], folder_sources(manifest.parent), manifest.name, worker=worker
                )
    except BundleError as exc:
        _finish(
            upload_id,
            status=JobStatus.FAILED,
            error=f"bundle rejected, nothing written: {exc}",
        )
        return
    except Exception as exc:
        logger.exception("bundle upload %s failed", upload_id)
        if not BundleChunk.objects.filter(upload_id=upload_id).exists():
            _finish(
                upload_id,
                status=JobStatus.FAILED,
                error=f"internal error before any tracklet: {type(exc).__name__}: {exc}",
            )
        raise


def bundle_chunk_run(*, chunk_id: int, worker: str = "") -> None:
    """Ingest one queued chunk of an upload (any worker, any machine); safe to run twice."""
    now = timezone.now()
    claimed = BundleChunk.objects.filter(
        Q(status=JobStatus.QUEUED) | _silent_q(_silent_since()), pk=chunk_id
    ).update(status=JobStatus.RUNNING, started_at=now, alive_at=now, worker=worker[:255])
    if not claimed:
        return
    chunk = BundleChunk.objects.get(pk=chunk_id)
    with _local_copy(chunk.file) as local, chunk_archive_open(local) as opened:
        groups, sources, manifest_name = opened
        _chunk_ingest(chunk, groups, sources, manifest_name, worker=worker)


# --- the steps ---------------------------------------------------------------------------------


@contextmanager
def _local_copy(field_file) -> Iterator[Path]:
    """A stored file (a bundle, a chunk) as a local file: itself on the filesystem, else a
    downloaded copy."""
    try:
        path = Path(default_storage.path(field_file.name))
    except NotImplementedError:  # an object store
        path = None
    if path is not None and path.is_file():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        local = Path(tmp) / Path(field_file.name).name
        with field_file.open("rb") as source, open(local, "wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
        yield local


def _split(groups: list[ManifestGroup]) -> list[list[ManifestGroup]]:
    size = settings.INGEST_CHUNK_TRACKLETS
    return [groups[start : start + size] for start in range(0, len(groups), size)]


def _chunks_create(
    upload: BundleUpload, parts: list[list[ManifestGroup]], base: Path, manifest_name: str
) -> BundleChunk | None:
    """Make the chunk rows (the first without an archive: this job ingests it), each queued as
    soon as its archive is stored; on a second run, only what is missing. Returns the first
    chunk if it is still to do."""
    BundleUpload.objects.filter(pk=upload.pk).update(
        n_tracklets=sum(len(p) for p in parts), n_chunks=len(parts)
    )
    existing = {c.index: c for c in upload.chunks.all()}
    for index, part in enumerate(parts):
        chunk = existing.get(index)
        if chunk is None:
            chunk = _chunk_create(upload, index, part, base, manifest_name)
        if index and chunk.status == JobStatus.QUEUED:
            transaction.on_commit(
                lambda pk=chunk.pk: queueing.enqueue(queueing.INGEST_BUNDLE_CHUNK, pk)
            )
        existing[index] = chunk
        if index:  # the job is alive while it writes the chunks (its first chunk waits on them)
            BundleChunk.objects.filter(upload=upload, index=0, status=JobStatus.RUNNING).update(
                alive_at=timezone.now()
            )
    first = existing[0]
    if first.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        _finish_if_done(upload.pk)
        return None
    return first


def _chunk_create(
    upload: BundleUpload, index: int, part: list[ManifestGroup], base: Path, manifest_name: str
) -> BundleChunk:
    chunk = BundleChunk(upload=upload, index=index, tracklets=len(part))
    if index == 0:
        chunk.status, chunk.started_at = JobStatus.RUNNING, timezone.now()
        chunk.alive_at = chunk.started_at
        chunk.save()
        return chunk
    with tempfile.TemporaryDirectory(prefix="chunk-") as tmp:
        local = Path(tmp) / "chunk.zip"
        chunk_archive_write(part, base, manifest_name, local)
        with open(local, "rb") as handle:
            chunk.file.save(f"{upload.pk}-{index}.zip", File(handle), save=False)
    try:
        chunk.save()
    except Exception:
        chunk.file.delete(save=False)
        raise
    return chunk


def _chunk_ingest(
    chunk: BundleChunk,
    groups: list[ManifestGroup],
    sources: StampSources,
    manifest_name: str,
    *,
    worker: str,
) -> None:
    """Ingest a chunk's tracklets after those its results already list; then the report."""
    report = BundleReport(results=list(chunk.results))
    last = {"at": 0.0}

    def progress(done: int, total: int) -> None:
        now = timezone.now().timestamp()
        if now - last["at"] >= PROGRESS_EVERY_SECONDS or done == total:
            last["at"] = now

            # The results so far are kept with the progress: a crash midway still lists them.
            def write() -> None:
                BundleChunk.objects.filter(pk=chunk.pk).update(
                    done=done, results=report.results, alive_at=timezone.now()
                )
                _progress_update(chunk.upload_id)

            database_retried(write, what=f"chunk {chunk.pk}'s progress")

    if worker:
        BundleChunk.objects.filter(pk=chunk.pk).update(worker=worker[:255], alive_at=timezone.now())
    try:
        groups_ingest(groups, sources, manifest_name, progress=progress, report=report)
    except DatabaseUnavailable:
        # Left running with its results so far: the sweep hands it on once it falls silent.
        logger.exception("chunk %s of bundle upload %s stopped", chunk.index, chunk.upload_id)
        raise
    except Exception as exc:
        logger.exception("chunk %s of bundle upload %s failed", chunk.index, chunk.upload_id)
        _chunk_finish(
            chunk,
            report,
            status=JobStatus.FAILED,
            error=f"internal error after {len(report.results)} tracklet(s), which the results "
            f"list: {type(exc).__name__}: {exc}",
        )
        raise
    _chunk_finish(chunk, report, status=JobStatus.SUCCEEDED)


def _chunk_finish(chunk: BundleChunk, report: BundleReport, **fields) -> None:
    BundleChunk.objects.filter(pk=chunk.pk).update(
        done=len(report.results), results=report.results, finished_at=timezone.now(), **fields
    )
    _finish_if_done(chunk.upload_id)


def _progress_update(upload_id: int) -> None:
    upload = BundleUpload.objects.filter(pk=upload_id).values("n_tracklets").first()
    total = (upload or {}).get("n_tracklets")
    if not total:
        return
    done = BundleChunk.objects.filter(upload_id=upload_id).aggregate(n=Sum("done"))["n"] or 0
    BundleUpload.objects.filter(pk=upload_id, status=JobStatus.RUNNING).update(
        progress=min(1.0, done / total)
    )


def _finish_if_done(upload_id: int) -> None:
    """Write the upload's report once every chunk has finished (whoever finishes last)."""
    with transaction.atomic():
        upload = BundleUpload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.status != JobStatus.RUNNING:
            return
        chunks = list(upload.chunks.order_by("index"))
        if len(chunks) != upload.n_chunks or any(
            c.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED) for c in chunks
        ):
            _progress_update(upload_id)
            return
        report = BundleReport(results=[r for c in chunks for r in c.results])
        failed = [c for c in chunks if c.status == JobStatus.FAILED]
        if len(chunks) == 1:
            error = chunks[0].error
        else:
            error = "; ".join(f"chunk {c.index + 1} of {len(chunks)}: {c.error}" for c in failed)
        archives = [c.file.name for c in chunks if c.file]
        BundleChunk.objects.filter(upload_id=upload_id).update(file="")
        _finish(
            upload_id,
            status=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
            error=error,
            summary=report.summary,
            results=report.results,
        )
        transaction.on_commit(lambda: [default_storage.delete(name) for name in archives])


def _finish(upload_id: int, **fields) -> None:
    BundleUpload.objects.filter(pk=upload_id).update(
        finished_at=timezone.now(), progress=1.0, **fields
    )


def bundle_uploads_sweep() -> dict[str, int]:
    """Leave no upload waiting on what will not come (the beat, every INGEST_SWEEP_SECONDS):

    - chunks and uploads still queued while the broker holds fewer waiting messages than there
      are of them (a flushed or replaced broker lost them) are queued again; a message that was
      not lost makes its duplicate a no-op (the claim is one atomic update);
    - chunks whose worker fell silent for INGEST_CHUNK_STALE_SECONDS are queued again, and taken
      over by whichever worker gets them; an upload's job likewise (its first chunk, or a split
      that never finished);
    - uploads whose chunks have all finished get their report.

    Returns what it did, by kind.
    """
    stale = _silent_since()
    done = {"requeued_lost": 0, "taken_over": 0, "finished": 0}
    chunks = BundleChunk.objects.filter(upload__status=JobStatus.RUNNING)
    queued_chunks = list(
        chunks.filter(status=JobStatus.QUEUED, index__gt=0).values_list("pk", flat=True)
    )
    queued_uploads = list(
        BundleUpload.objects.filter(
            status=JobStatus.QUEUED,
            created_at__lt=stale
            - timedelta(
                seconds=-settings.INGEST_CHUNK_STALE_SECONDS + settings.INGEST_SWEEP_SECONDS
            ),
        ).values_list("pk", flat=True)
    )
    if queued_chunks or queued_uploads:
        try:
            waiting = queueing.queue_depth("default")
        except Exception:  # the broker is down: nothing can be queued now; the next sweep
            logger.warning("sweep: the broker did not answer", exc_info=True)
            waiting = None
        if waiting is not None and waiting < len(queued_chunks) + len(queued_uploads):
            for pk in queued_chunks:
                queueing.enqueue(queueing.INGEST_BUNDLE_CHUNK, pk)
            for pk in queued_uploads:
                queueing.enqueue(queueing.INGEST_BUNDLE_UPLOAD, pk)
            done["requeued_lost"] = len(queued_chunks) + len(queued_uploads)
    for pk in chunks.filter(_silent_q(stale), index__gt=0).values_list("pk", flat=True):
        queueing.enqueue(queueing.INGEST_BUNDLE_CHUNK, pk)
        done["taken_over"] += 1
    silent_jobs = BundleUpload.objects.filter(
        status=JobStatus.RUNNING, started_at__lt=stale
    ).filter(
        Q(chunks__isnull=True)
        | Q(chunks__index=0, chunks__in=BundleChunk.objects.filter(_silent_q(stale)))
    )
    for pk in silent_jobs.values_list("pk", flat=True).distinct():
        queueing.enqueue(queueing.INGEST_BUNDLE_UPLOAD, pk)
        done["taken_over"] += 1
    for upload in BundleUpload.objects.filter(status=JobStatus.RUNNING, n_chunks__gt=0):
        if not upload.chunks.exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).exists():
            _finish_if_done(upload.pk)
            done["finished"] += 1
    if any(done.values()):
        logger.warning("sweep of bundle uploads: %s", done)
    return done


def bundle_uploads_prune(*, older_than_days: int | None = None) -> int:
    """Delete the stored archives of finished uploads older than the retention; keep the rows."""
    days = older_than_days if older_than_days is not None else settings.BUNDLE_UPLOAD_KEEP_DAYS
    stale = BundleUpload.objects.filter(
        status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED],
        finished_at__lt=timezone.now() - timedelta(days=days),
    ).exclude(file="")
    pruned = 0
    for upload in stale:
        upload.file.delete(save=False)
        BundleUpload.objects.filter(pk=upload.pk).update(file="")
        pruned += 1
    return pruned

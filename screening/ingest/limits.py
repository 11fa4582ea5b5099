"""Upload limits enforced while a request body arrives, not after it has been stored.

`UploadLimitHandler` comes first in settings.FILE_UPLOAD_HANDLERS. For the two ingest endpoints
it refuses, with a 413 whose JSON body names the limit:

- `POST /api/v1/tracklets/`: a request whose declared length is over MAX_DETECTIONS stamps of
  STAMP_MAX_BYTES plus the form fields (DATA_UPLOAD_MAX_MEMORY_SIZE) and multipart overhead, a
  stamp file over STAMP_MAX_BYTES, or more than MAX_DETECTIONS files;
- `POST /api/v1/bundles/`: a request whose declared length is over BUNDLE_MAX_BYTES plus
  overhead, a file over BUNDLE_MAX_BYTES, or more than one file.

A declared Content-Length over the limit is refused before a byte of the body is read; the body
is counted chunk by chunk as well, and refused at the chunk that crosses a limit. Other paths are
left to Django's own handlers and limits.

A body without a Content-Length (`Transfer-Encoding: chunked`) never reaches these handlers:
under WSGI, Django reads a body no further than its declared length, so it would see an empty one
and the ingest endpoints would answer "metadata: This field is required". `LengthRequiredMiddleware`
answers such a request 411 with a JSON body saying so, on every path, before anything reads it.
docker compose's nginx buffers whole bodies and forwards them with a Content-Length, so there
chunked uploads work; this guards gunicorn or runserver reached directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException

MULTIPART_OVERHEAD = 1024 * 1024  # boundaries and part headers, generously
TRACKLETS_PATH = "/api/v1/tracklets/"
BUNDLES_PATH = "/api/v1/bundles/"


class UploadTooLarge(APIException):
    """413 with a JSON body: what was too large, and the limit (its setting and bytes)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, detail: str, *, limit: str, limit_bytes: int | None = None) -> None:
        body: dict = {"detail": detail, "limit": limit}
        if limit_bytes is not None:
            body["limit_bytes"] = limit_bytes
        super().__init__(detail)
        self.detail = body  # DRF's handler answers a dict detail as the body itself


@dataclass(frozen=True)
class _Limits:
    request_bytes: int
    request_limit: str
    file_bytes: int
    file_limit: str
    max_files: int


def _limits(path: str, method: str) -> _Limits | None:
    if method != "POST":
        return None
    if path == TRACKLETS_PATH:
        from screening.ingest.tracklets import MAX_DETECTIONS

        fields = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
        return _Limits(
            request_bytes=MAX_DETECTIONS * settings.STAMP_MAX_BYTES + fields + MULTIPART_OVERHEAD,
            request_limit=f"{MAX_DETECTIONS} x STAMP_MAX_BYTES + DATA_UPLOAD_MAX_MEMORY_SIZE",
            file_bytes=settings.STAMP_MAX_BYTES,
            file_limit="STAMP_MAX_BYTES",
            max_files=MAX_DETECTIONS,
        )
    if path == BUNDLES_PATH:
        return _Limits(
            request_bytes=settings.BUNDLE_MAX_BYTES + MULTIPART_OVERHEAD,
            request_limit="BUNDLE_MAX_BYTES",
            file_bytes=settings.BUNDLE_MAX_BYTES,
            file_limit="BUNDLE_MAX_BYTES",
            max_files=1,
        )
    return None


class UploadLimitHandler(FileUploadHandler):
    """Counts what arrives and stops the upload at the first byte over a limit."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.limits = _limits(request.path_info, request.method) if request is not None else None
        self.files = 0
        self.file_received = 0
        self.total_received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        limits = self.limits
        if limits is not None and content_length and content_length > limits.request_bytes:
            raise UploadTooLarge(
                f"the request is {content_length} bytes; the most accepted here is "
                f"{limits.request_bytes} bytes ({limits.request_limit})",
                limit=limits.request_limit,
                limit_bytes=limits.request_bytes,
            )
        return None  # go on with the normal parse

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.file_received = 0
        limits = self.limits
        if limits is None:
            return
        self.files += 1
        if self.files > limits.max_files:
            raise UploadTooLarge(
                f"the request holds more than {limits.max_files} file(s); "
                f"the most accepted here is {limits.max_files}",
                limit="files",
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limits = self.limits
        if limits is not None:
            self.file_received += len(raw_data)
            self.total_received += len(raw_data)
            if self.file_received > limits.file_bytes:
                raise UploadTooLarge(
                    f"file field {self.field_name!r} ({self.file_name}) is larger than "
                    f"{limits.file_limit} = {limits.file_bytes} bytes",
                    limit=limits.file_limit,
                    limit_bytes=limits.file_bytes,
                )
            if self.total_received > limits.request_bytes:
                raise UploadTooLarge(
                    f"the request's files are larger than {limits.request_bytes} bytes "
                    f"({limits.request_limit})",
                    limit=limits.request_limit,
                    limit_bytes=limits.request_bytes,
                )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers build the file


class LengthRequiredMiddleware:
    """411 for a request whose body comes chunked, without a Content-Length (see the module's
    docstring): the client learns to send the length instead of a misleading 400 about fields
    missing from a body the server never read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if "chunked" in encoding and not request.META.get("CONTENT_LENGTH"):
            return JsonResponse(
                {
                    "detail": "the request body was sent with Transfer-Encoding: chunked and no "
                    "Content-Length, and this server reads no body without its length: send "
                    "the Content-Length (curl does for -F and --data-binary, unless told "
                    "-H 'Transfer-Encoding: chunked')",
                    "code": "length_required",
                },
                status=411,
            )
        return self.get_response(request)

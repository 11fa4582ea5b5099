"""Make sure the media storage is usable: on S3, create the bucket if it is missing; then write,
read and delete a probe object. Exits non-zero naming what is wrong (docker-compose's web runs
it before migrating)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the S3 bucket if it is missing and check that media storage works."

    def handle(self, *args, **options) -> None:
        if settings.MEDIA_STORAGE == "s3":
            self._bucket()
        probe = f"probe/{uuid.uuid4().hex}.txt"
        try:
            name = default_storage.save(probe, ContentFile(b"probe"))
            with default_storage.open(name, "rb") as handle:
                if handle.read() != b"probe":
                    raise CommandError(f"media storage returned other bytes for {name}")
            default_storage.delete(name)
        except CommandError:
            raise
        except Exception as exc:
            raise CommandError(
                f"media storage ({settings.MEDIA_STORAGE}) cannot store a file: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        where = (
            f"s3 bucket {settings.S3_BUCKET} at {settings.S3_ENDPOINT_URL or 'AWS'}"
            if settings.MEDIA_STORAGE == "s3"
            else f"filesystem {settings.MEDIA_ROOT}"
        )
        self.stdout.write(f"media storage ok: {where}")

    def _bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket_name = default_storage.bucket_name
        client = default_storage.connection.meta.client
        try:
            client.head_bucket(Bucket=bucket_name)
            return
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise CommandError(f"s3 bucket {bucket_name}: {exc}") from exc
        except BotoCoreError as exc:
            raise CommandError(
                f"s3 endpoint {settings.S3_ENDPOINT_URL or 'AWS'} does not answer: {exc}"
            ) from exc
        # AWS wants the region named outside us-east-1; SeaweedFS and other stores ignore it.
        region = client.meta.region_name
        where = {} if region in (None, "", "us-east-1") else {"LocationConstraint": region}
        client.create_bucket(
            Bucket=bucket_name, **({"CreateBucketConfiguration": where} if where else {})
        )
        self.stdout.write(f"created the s3 bucket {bucket_name}")

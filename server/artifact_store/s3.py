"""Artifacts in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...) through boto3.

Path-style addresses (`ENDPOINT/BUCKET/KEY`), so a server on an IP address or localhost works as
well as a cloud endpoint. Credentials come from the settings when given, else from boto3's own
chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, a profile, an instance role).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.artifact_store.store import (
    CHUNK_BYTES,
    MissingObject,
    StoredObject,
    StoreError,
    check_key,
    is_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"NoSuchKey", "404", "NotFound"}
_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes


class S3Store:
    """Artifacts as objects `PREFIX/ACCOUNT/RUN/RANDOM` in one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix.strip("/")
        config = Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"mode": "standard", "max_attempts": 3},
        )
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"the S3 bucket {self.bucket}{where}"

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, doing: str, key: str | None, exc: Exception) -> StoreError:
        what = f" {key}" if key else ""
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in _MISSING:
                return MissingObject(f"artifact{what} is not in {self.describe()}")
            reason = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
        else:
            reason = str(exc)
        return StoreError(f"cannot {doing} artifact{what} in {self.describe()}: {reason}")

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(
                f"{self.describe()} cannot be used ({exc}); create the bucket, or fix PHONEFLOW_S3_BUCKET, "
                "PHONEFLOW_S3_ENDPOINT_URL and the credentials"
            ) from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("store", key, exc) from exc

    def _open(self, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("read", key, exc) from exc

    def get(self, key: str) -> bytes:
        body = self._open(key)
        try:
            return bytes(body.read())
        except (ClientError, BotoCoreError) as exc:
            raise self._error("read", key, exc) from exc
        finally:
            body.close()

    def stream(self, key: str) -> Iterator[bytes]:
        body = self._open(key)

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return chunks()

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._name(key))["ContentLength"])
        except (ClientError, BotoCoreError) as exc:
            raise self._error("look up", key, exc) from exc

    def delete(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]
        for start in range(0, len(names), _DELETE_BATCH):
            batch = names[start : start + _DELETE_BATCH]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._error("delete", None, exc) from exc
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise StoreError(
                    f"cannot delete {len(errors)} artifacts from {self.describe()}; the first, "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def objects(self) -> Iterator[StoredObject]:
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            ):
                for item in page.get("Contents", []):
                    key = item["Key"][len(start) :]
                    if is_key(key):
                        yield StoredObject(key, item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", None, exc) from exc

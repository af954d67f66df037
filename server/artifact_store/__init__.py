"""The artifact store: where the bytes of run artifacts live (a folder, or S3-compatible storage).

    store.py     ArtifactStore (the interface), DirectoryStore, keys, StoreError/MissingObject
    s3.py        S3Store (boto3; any S3-compatible endpoint)
    service.py   save/replace/read/delete artifacts, bytes used and the quota per account,
                 moving bytes stored in the database before the store existed, sweeping
                 objects no artifact points at
    jobs.py      the background move of those bytes and the sweep (APScheduler)

`store_from_settings` picks the store the server's settings name.
"""

from __future__ import annotations

from server.artifact_store.store import ArtifactStore, DirectoryStore, MissingObject, StoreError
from server.settings import Settings, data_dir

__all__ = ["ArtifactStore", "DirectoryStore", "MissingObject", "StoreError", "store_from_settings"]


def store_from_settings(settings: Settings) -> ArtifactStore:
    """The store `settings.artifact_store` names, configured from the settings (ValueError saying
    what is missing)."""
    if settings.artifact_store == "s3":
        if not settings.s3_bucket:
            raise ValueError(
                "PHONEFLOW_ARTIFACT_STORE is s3 but PHONEFLOW_S3_BUCKET is not set: name the bucket"
            )
        from server.artifact_store.s3 import S3Store  # boto3 loads only when S3 is used

        secret = settings.s3_secret_access_key
        return S3Store(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            prefix=settings.s3_prefix,
        )
    return DirectoryStore(settings.artifact_dir or data_dir() / "artifacts")

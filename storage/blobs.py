"""Content-addressed photo bytes: the same photo sent twice is stored once, under its SHA-256.

Two stores with one interface (:class:`PhotoStore`): files in a local directory (the default, one
machine), or objects in an S3-compatible bucket (several bot replicas and a worker on different
machines). :func:`open_photo_store` picks one from the ``DOGBOT_PHOTO_STORE`` spec.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is a lowercase hex digest; a name like ``../x`` never reaches a path or key."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


class PhotoStore(Protocol):
    """Where photo bytes live. ``get`` of an unknown digest raises :class:`FileNotFoundError`."""

    def put(self, data: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...

    def exists(self, sha256: str) -> bool: ...


class LocalPhotoStore:
    """Photos as files ``root/ab/cd/<sha256>``: two directory levels keep folders small."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably (write, fsync, rename) and return its SHA-256."""
        digest = sha256_of(data)
        target = self.path_for(digest)
        if target.exists():
            return digest
        write_bytes_atomically(target, data)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that a reader (or a crash) sees the old file or the whole new one, never half.

    ``write(handle)`` fills a temporary file in the same folder; it is fsynced, renamed into place
    and the folder fsynced. Two processes writing the same file at once each rename a complete copy.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, incoming = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.incoming.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(incoming, target)
    except BaseException:
        Path(incoming).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)  # the rename itself survives a power cut only once its folder is synced


def write_bytes_atomically(target: Path, data: bytes) -> None:
    """:func:`write_atomically` for bytes already in memory (model heads and their sidecars)."""
    write_atomically(target, lambda handle: handle.write(data))


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3PhotoStore:
    """Photos as objects ``<prefix>/ab/cd/<sha256>`` in an S3 (or S3-compatible) bucket.

    Objects are never overwritten or deleted: a digest already present is not uploaded again, and two
    replicas uploading the same photo at once write identical bytes. The upload carries its SHA-256
    so the server rejects bytes damaged on the way. boto3 clients are thread-safe, so one store is
    shared by the bot's worker threads.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            import boto3
            from botocore.config import Config

            # Credentials and region come from the standard AWS variables, files or instance role.
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url or None,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        self.client = client

    def key_for(self, sha256: str) -> str:
        check_sha256(sha256)
        key = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, data: bytes) -> str:
        """Upload ``data`` unless an object with its digest exists; return its SHA-256."""
        digest = sha256_of(data)
        if self.exists(digest):
            return digest
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key_for(digest),
            Body=data,
            ContentType="application/octet-stream",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"),
        )
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except self.client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(f"photo {sha256} not in s3://{self.bucket}/{self.prefix}") from error
        with response["Body"] as body:
            return body.read()

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except ClientError as error:
            # HEAD has no body, so a missing object shows only as status 404. Anything else (bad
            # credentials, no permission) is a real failure and must not read as "not stored yet";
            # a missing bucket also answers 404 here, and the upload that follows then says so.
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise
        return True


def open_photo_store(spec: str, local_root: Path, *, s3_endpoint_url: str | None = None) -> PhotoStore:
    """The store a spec names: ``""`` is a directory at ``local_root``; ``s3://bucket/prefix`` a bucket.

    ``s3_endpoint_url`` points at an S3-compatible server (MinIO, Ceph, a cloud's S3 API); empty is AWS.
    """
    if not spec:
        return LocalPhotoStore(local_root)
    if not spec.startswith("s3://"):
        raise ValueError(f"photo store must be empty (a local folder) or s3://bucket/prefix, not {spec!r}")
    bucket, _, prefix = spec.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in photo store {spec!r}; expected s3://bucket/prefix")
    return S3PhotoStore(bucket, prefix, endpoint_url=s3_endpoint_url or None)

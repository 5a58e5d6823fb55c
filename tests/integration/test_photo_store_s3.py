"""The photo stores, local folder and S3, behave alike; the S3 one runs against moto's real HTTP server.

moto's server mode speaks the S3 protocol over a socket on 127.0.0.1, so boto3 goes through its real
HTTP stack (signing, retries, checksums) exactly as it would against MinIO or AWS.
"""

from __future__ import annotations

import pytest

from storage.blobs import LocalPhotoStore, S3PhotoStore, open_photo_store, sha256_of


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """Each behavioural test runs on both stores, built from a spec as the Container builds them."""
    if request.param == "local":
        return open_photo_store("", tmp_path / "photos")
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_photo_store(f"s3://{bucket}/shelter-a/photos", tmp_path, s3_endpoint_url=endpoint)


def test_put_returns_the_digest_and_get_returns_the_bytes(store):
    data = b"\xff\xd8 not really a jpeg \x00\x01"
    digest = store.put(data)
    assert digest == sha256_of(data)
    assert store.exists(digest)
    assert store.get(digest) == data


def test_the_same_bytes_are_stored_once(store):
    first, second = store.put(b"same bytes"), store.put(b"same bytes")
    assert first == second
    assert store.get(first) == b"same bytes"
    assert _object_count(store) == 1


def test_an_unknown_photo_is_not_found(store):
    missing = sha256_of(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        store.get(missing)


def test_a_name_that_is_not_a_digest_is_refused(store):
    for bad in ("../../etc/passwd", "A" * 64, "a" * 63, ""):
        with pytest.raises(ValueError):
            store.get(bad)
        with pytest.raises(ValueError):
            store.exists(bad)


def test_large_photos_round_trip(store):
    data = bytes(range(256)) * (20 * 4096)  # 20 MiB, Telegram's largest download
    assert store.get(store.put(data)) == data


def _object_count(store) -> int:
    if isinstance(store, LocalPhotoStore):
        return len([p for p in store.root.rglob("*") if p.is_file()])
    assert isinstance(store, S3PhotoStore)
    listing = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + "/")
    return listing.get("KeyCount", 0)


def test_s3_keys_are_prefixed_and_content_addressed(s3_bucket, s3_endpoint, tmp_path):
    store = open_photo_store(f"s3://{s3_bucket}/a/b/", tmp_path, s3_endpoint_url=s3_endpoint)
    digest = store.put(b"photo")
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"a/b/{digest[:2]}/{digest[2:4]}/{digest}"]
    # Another prefix in the same bucket (another shelter) does not see it.
    other = open_photo_store(f"s3://{s3_bucket}/other", tmp_path, s3_endpoint_url=s3_endpoint)
    assert not other.exists(digest)


def test_a_missing_bucket_fails_loudly_rather_than_losing_the_photo(s3_bucket, s3_endpoint, tmp_path):
    from botocore.exceptions import ClientError

    store = open_photo_store("s3://no-such-bucket", tmp_path, s3_endpoint_url=s3_endpoint)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.put(b"photo")


@pytest.mark.parametrize("spec", ["s3://", "s3:///prefix", "/var/photos", "gs://bucket"])
def test_a_bad_spec_is_refused(spec, tmp_path):
    with pytest.raises(ValueError):
        open_photo_store(spec, tmp_path)


def test_settings_wire_the_s3_store_into_the_container(s3_bucket, s3_endpoint, tmp_path, monkeypatch):
    from dogbot.app import Container
    from dogbot.settings import Settings

    monkeypatch.setenv("DOGBOT_PHOTO_STORE", f"s3://{s3_bucket}/photos")
    monkeypatch.setenv("DOGBOT_S3_ENDPOINT_URL", s3_endpoint)
    container = Container(Settings(_env_file=None, data_dir=tmp_path))
    store = container.photo_store
    assert isinstance(store, S3PhotoStore) and (store.bucket, store.prefix) == (s3_bucket, "photos")
    assert store.get(store.put(b"x")) == b"x"
    assert not (tmp_path / "photos").exists()


def test_settings_refuse_a_bad_photo_store():
    from pydantic import ValidationError

    from dogbot.settings import Settings

    with pytest.raises(ValidationError, match="s3://bucket/prefix"):
        Settings(_env_file=None, photo_store="/mnt/photos")


@pytest.mark.slow
def test_a_photo_submitted_with_the_s3_store_is_retrievable(
    s3_bucket, s3_endpoint, database_url, predictor, dog_photos, tmp_path
):
    from conftest import open_catalog

    from storage.db import make_engine

    engine = make_engine(database_url)
    store = S3PhotoStore(s3_bucket, "catalog", endpoint_url=s3_endpoint)
    predictor.use_head(predictor.base_head(), "lite0-v0")
    catalog = open_catalog(engine, store, predictor)
    try:
        result = catalog.intake.submit(dog_photos["sure"], source="telegram", sender_id=7, chat_id=7)
        assert store.exists(result.photo.sha256)
        assert catalog.labelling.photo_bytes(result.photo) == dog_photos["sure"]
        # A second replica (a new store and catalog on the same bucket and database) sees it too.
        replica = open_catalog(
            engine, S3PhotoStore(s3_bucket, "catalog", endpoint_url=s3_endpoint), predictor
        )
        again = replica.intake.submit(dog_photos["sure"], source="telegram", sender_id=8, chat_id=8)
        assert again.duplicate and again.photo.id == result.photo.id
        assert replica.labelling.photo_bytes(again.photo) == dog_photos["sure"]
    finally:
        engine.dispose()

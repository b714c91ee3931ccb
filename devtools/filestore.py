"""The files' bucket of `make run`: created in the embedded moto server at
start, and, when the data directory is kept, made durable.

moto holds S3 objects in memory. With a kept data directory, every object of
the bucket whose key is one the service makes (`{customer_id}/{file_id}`,
both UUIDs) is written to `files/` in the data directory when moto stores it,
before moto answers the upload (a browser-style POST, a PUT), and again when
its tags change; it is removed when moto deletes it. At the next start the
objects are put back before the API serves a request.

    files/<customer_id>/<file_id>         the object's bytes
    files/<customer_id>/<file_id>.json    {"content_type": ..., "tags": {...}}

Each file is written aside, fsynced and renamed over the old one (the
description first, the bytes last): a crash at any point leaves the old
version or the new one, and an object answered 204 survives any end of the
process, and a power loss too. Copies (the service copies a file's upload at
its first send) are kept as puts are, and an export's archive once its
multipart upload completes; the parts of one still being written are not (an
export running when the service stops fails, and says so).
"""

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlencode

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "voipbin-chat-files"
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEPT_KEY = re.compile(f"{_UUID}/{_UUID}")
META_SUFFIX = ".json"


# As the stack's bucket (infra/build_template.py): the console's pages, on
# another origin, post uploads to it and fetch downloads from it.
CORS_RULE = {"AllowedMethods": ["POST", "GET"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"],
             "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}


def create_bucket(s3, bucket: str, region: str) -> None:
    """The bucket as the stack makes it: private (public access blocked), encrypted, CORS for browsers."""
    try:
        s3.head_bucket(Bucket=bucket)
        return  # another endpoint's bucket, as its owner made it
    except s3.exceptions.ClientError:
        pass
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [CORS_RULE]})


class FileStore:
    """The kept objects of one bucket, under `directory`."""

    def __init__(self, directory: Path, bucket: str):
        self.directory = directory
        self.bucket = bucket

    def _path(self, key: str) -> Path | None:
        return self.directory / key if KEPT_KEY.fullmatch(key) else None

    def save(self, key: str, data: bytes, content_type: str, tags: dict[str, str]) -> None:
        path = self._path(key)
        if path is None:
            log.warning("not keeping s3://%s/%s: not a key the service makes", self.bucket, key)
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _replace(path.with_name(path.name + META_SUFFIX),
                 json.dumps({"content_type": content_type, "tags": tags}).encode())
        _replace(path, data)

    def save_tags(self, key: str, content_type: str, tags: dict[str, str]) -> None:
        path = self._path(key)
        if path is not None and path.exists():
            _replace(path.with_name(path.name + META_SUFFIX),
                     json.dumps({"content_type": content_type, "tags": tags}).encode())

    def remove(self, key: str) -> None:
        path = self._path(key)
        if path is None:
            return
        removed = False
        for file in (path, path.with_name(path.name + META_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                removed = True
        if removed:
            _fsync_directory(path.parent)

    def restore(self, s3) -> int:
        """Put every kept object back into the bucket; returns how many."""
        if not self.directory.is_dir():
            return 0
        count = 0
        for customer in sorted(self.directory.iterdir()):
            for path in sorted(customer.glob("*")):
                if path.name.startswith(".tmp-"):
                    path.unlink()  # a write cut short
                    continue
                key = f"{customer.name}/{path.name}"
                if path.suffix == META_SUFFIX or not KEPT_KEY.fullmatch(key):
                    continue
                try:
                    meta = json.loads(path.with_name(path.name + META_SUFFIX).read_text())
                    content_type, tags = str(meta["content_type"]), dict(meta["tags"])
                except (OSError, ValueError, KeyError, TypeError) as error:
                    log.warning("not restoring %s: its description is unreadable (%s)", path, error)
                    continue
                s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes(), ContentType=content_type,
                              Tagging=urlencode(tags))
                count += 1
        return count


def _replace(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# ---- moto: keep what it stores ------------------------------------------------------------

def keep(store: FileStore) -> None:
    """From now on, every object moto stores, retags or deletes in the store's
    bucket is written to (or removed from) the store before moto answers."""
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    def sync(backend: S3Backend, bucket: str, key: str, tags_only: bool = False) -> None:
        if bucket != store.bucket:
            return
        stored = backend.get_object(bucket, key)
        if stored is None:
            store.remove(key)
            return
        tags = {tag["Key"]: tag["Value"] for tag in backend.get_object_tagging(stored)["Tags"]}
        content_type = stored.metadata.get("content-type", "binary/octet-stream")
        if tags_only:
            store.save_tags(key, content_type, tags)
        else:
            store.save(key, stored.value, content_type, tags)

    post, put, put_tagging = S3Response._bucket_response_post, S3Response.put_object, S3Response.put_object_tagging
    complete = S3Backend.complete_multipart_upload
    copy = S3Response.copy_object
    delete = S3Backend.delete_object

    def bucket_response_post(self, request, bucket_name):  # a browser-style upload (a presigned POST)
        result = post(self, request, bucket_name)
        if "key" in self.querystring and not self.is_delete_keys():
            sync(self.backend, bucket_name, self.querystring["key"][0])
        return result

    def put_object(self):
        result = put(self)
        sync(self.backend, self.bucket_name, self.parse_key_name())
        return result

    def copy_object(self):
        result = copy(self)
        sync(self.backend, self.bucket_name, self.parse_key_name())
        return result

    def put_object_tagging(self):
        result = put_tagging(self)
        sync(self.backend, self.bucket_name, self.parse_key_name(), tags_only=True)
        return result

    def complete_multipart_upload(self, bucket_name, multipart_id, body):  # an export's archive
        stored = complete(self, bucket_name, multipart_id, body)
        if stored is not None:
            sync(self, bucket_name, stored.name)
        return stored

    def delete_object(self, bucket_name, key_name, *args, **kwargs):
        result = delete(self, bucket_name, key_name, *args, **kwargs)
        if bucket_name == store.bucket:
            store.remove(key_name)
        return result

    S3Response._bucket_response_post = bucket_response_post
    S3Response.put_object = put_object
    S3Response.copy_object = copy_object
    S3Response.put_object_tagging = put_object_tagging
    S3Backend.delete_object = delete_object
    S3Backend.complete_multipart_upload = complete_multipart_upload


def prepare(endpoint: str, region: str, bucket: str, directory: Path | None) -> int:
    """Create the bucket in the embedded server; with a directory, put its kept
    objects back and keep every change from now on. Returns how many came back."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    create_bucket(s3, bucket, region)
    if directory is None:
        return 0
    store = FileStore(directory, bucket)
    restored = store.restore(s3)
    keep(store)
    return restored

"""The files' bucket: presigned URLs, and the object requests the service
makes (COPY, HEAD, DELETE), under the table's write-error policy
(storage/operations.py):

- "no such object" is a business answer (`None`, `False`), never an error;
- transient errors (SlowDown, S3's own 500/503, a timeout, a dropped
  connection) are retried with backoff, then answered 503 (`Unavailable`);
- anything else (access denied, a bucket that is not there) is logged and
  answered 500.

Every request is idempotent, so a retry never does anything twice. Keys are
`{customer_id}/{id}` (a file's upload under its id, its sent copy under an
id of its own), made from ids only: nothing a client sends ever reaches a
key. The S3 client is made on first use (importing boto3 is a good part of
a cold start, and most requests never touch a file).
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from chalicelib import config
from chalicelib.errors import ServiceError, Unavailable
from chalicelib.storage import clients

log = logging.getLogger(__name__)
T = TypeVar("T")

URL_SECONDS = 15 * 60  # presigned POSTs and GETs
ATTEMPTS = 5
TRANSIENT_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed",
    "OperationAborted", "500", "502", "503", "504",
})
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
# The lifecycle rule of the bucket expires objects tagged UPLOAD_TAG=PENDING a day after
# their upload: every upload (the presigned POST requires the tag), so a file never sent,
# or an upload form posted again after the send. A sent file's copy is tagged ATTACHED.
UPLOAD_TAG = "upload"
PENDING = "pending"
ATTACHED = "attached"
PENDING_TAGGING = f"<Tagging><TagSet><Tag><Key>{UPLOAD_TAG}</Key><Value>{PENDING}</Value></Tag></TagSet></Tagging>"

_settings: config.Settings | None = None
_client = None
_client_lock = threading.Lock()


def configure(settings: config.Settings) -> None:
    """Use these settings; the client is made again on next use."""
    global _settings, _client
    with _client_lock:
        _settings, _client = settings, None


def _current() -> config.Settings:
    return _settings if _settings is not None else config.load()


def configured() -> bool:
    return bool(_current().files_bucket)


def bucket() -> str:
    name = _current().files_bucket
    if not name:
        raise ServiceError("files: no bucket is configured (CHAT_FILES_BUCKET)")
    return name


def client():
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import boto3
                from botocore.config import Config

                settings = _current()
                _client = boto3.client(
                    "s3", region_name=settings.region, endpoint_url=settings.s3_endpoint,
                    config=Config(
                        signature_version="s3v4",
                        # A local endpoint (an IP and a port) has no bucket subdomains.
                        s3={"addressing_style": "path" if settings.s3_endpoint else "virtual"},
                        retries={"total_max_attempts": 1, "mode": "standard"},  # retried by `attempt`
                        connect_timeout=clients.CONNECT_TIMEOUT_SECONDS,
                        read_timeout=clients.READ_TIMEOUT_SECONDS,
                    ),
                )
    return _client


def object_key(customer_id: str, file_id: str) -> str:
    return f"{customer_id}/{file_id}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def attempt(request: Callable[[], T], what: str, first_delay: float = 0.05) -> T:
    """Run one S3 request under the policy above. A missing object raises
    ClientError with a MISSING_CODES code, for the caller to read."""
    started = clients.now()
    for number in range(1, ATTEMPTS + 1):
        try:
            return request()
        except ClientError as error:
            code = _code(error)
            if code in MISSING_CODES:
                raise
            transient = code in TRANSIENT_CODES
            failure = error
        except (EndpointUnreachable, HTTPClientError) as error:  # refused, reset, timed out
            transient, failure, code = True, error, type(error).__name__
        except BotoCoreError as error:  # e.g. no credentials
            transient, failure, code = False, error, type(error).__name__
        delay = clients.next_delay(number, started, first_delay) if number < ATTEMPTS else None
        if transient and delay is not None:
            time.sleep(delay)
            continue
        if transient:
            log.warning("%s: still %s after %d attempts", what, code, number)
            raise Unavailable(f"{what}: file storage is busy, nothing was changed; please retry") from failure
        log.error("%s failed: %s", what, failure, exc_info=failure)
        raise ServiceError(f"{what}: file storage error") from failure
    raise AssertionError("unreachable")


# ---- presigned URLs (computed here, no request) ------------------------------------

def presigned_post(key: str, content_type: str, size: int) -> dict:
    """{url, fields} of a browser-style POST that S3 accepts only for this key,
    exactly `size` bytes, this Content-Type and the pending tag, for 15 minutes."""
    fields = {"Content-Type": content_type, "tagging": PENDING_TAGGING}
    conditions = [["content-length-range", size, size], {"Content-Type": content_type},
                  {"tagging": PENDING_TAGGING}]
    name = bucket()
    return attempt(lambda: client().generate_presigned_post(name, key, Fields=fields, Conditions=conditions,
                                                           ExpiresIn=URL_SECONDS), "signing the upload")


def presigned_get(key: str, filename: str) -> str:
    """A GET of the object for 15 minutes, served as an attachment named `filename`."""
    params = {"Bucket": bucket(), "Key": key, "ResponseContentDisposition": attachment(filename)}
    return attempt(lambda: client().generate_presigned_url("get_object", Params=params, ExpiresIn=URL_SECONDS),
                   "signing the download")


def attachment(filename: str) -> str:
    """Content-Disposition for `filename` (RFC 6266): an ASCII fallback, and the
    name itself percent-encoded as UTF-8."""
    from urllib.parse import quote  # a few ms of a cold start that no other request needs

    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ---- requests -----------------------------------------------------------------------

class StoredObject:
    """What HeadObject says of an object (a plain class: a dataclass costs a cold start milliseconds)."""

    __slots__ = ("size", "content_type")

    def __init__(self, size: int, content_type: str):
        self.size, self.content_type = size, content_type


def head(key: str) -> StoredObject | None:
    """What is stored under `key`, or None: one HeadObject."""
    name = bucket()
    try:
        found = attempt(lambda: client().head_object(Bucket=name, Key=key), "checking the uploaded file")
    except ClientError:  # missing
        return None
    return StoredObject(int(found["ContentLength"]), found.get("ContentType", ""))


def copy_sent(upload_key: str, sent_key: str) -> bool:
    """Copy an upload to the key its downloads use, tagged ATTACHED (out of
    the lifecycle rule's reach): one CopyObject (S3 copies up to 5 GB in one
    request; a file is at most 30 MiB). Its upload form cannot reach that key.
    False if the upload is not there."""
    name = bucket()
    try:
        attempt(lambda: client().copy_object(
            Bucket=name, Key=sent_key, CopySource={"Bucket": name, "Key": upload_key}, MetadataDirective="COPY",
            TaggingDirective="REPLACE", Tagging=f"{UPLOAD_TAG}={ATTACHED}"), "keeping the sent file")
    except ClientError:  # missing
        return False
    return True


def remove(key: str) -> None:
    """One DeleteObject; removing what is not there succeeds too."""
    name = bucket()
    try:
        attempt(lambda: client().delete_object(Bucket=name, Key=key), "removing the file")
    except ClientError:  # missing
        pass


# ---- archives (exports) and a customer's prefix (erasure) --------------------------------
# An export is written as one multipart upload, a part per few slices: S3 wants
# every part but the last at least PART_MIN bytes, so a slice's output waits in a
# staging object until there is that much (services/exports.py).
PART_MIN = 5 * 1024 * 1024
PARTS_MAX = 10_000  # S3's, in one multipart upload
PARTS_A_SIZE = 1000  # parts written at each size before the next: part_size()
EXPORT = "export"  # the UPLOAD_TAG value of archives: the bucket's rule expires them (infra)
EXPORT_DAYS = 7  # how long an archive is kept (the rule), and its export's record (the item's TTL)
DELETE_MAX = 1000  # keys in one DeleteObjects


def start_archive(key: str) -> str:
    """A multipart upload of a gzipped archive at `key`, tagged EXPORT; its upload id."""
    name = bucket()
    started = attempt(lambda: client().create_multipart_upload(
        Bucket=name, Key=key, ContentType="application/gzip", Tagging=f"{UPLOAD_TAG}={EXPORT}"),
        "starting the export archive")
    return started["UploadId"]


class ArchiveLost(Exception):
    """The archive's multipart upload is gone (aborted, or a local run restarted)."""


def part_size(parts_written: int) -> int:
    """What the next part waits for: 5 MiB for the first 1,000 parts, 10 MiB
    for the next 1,000, up to 50 MiB: PARTS_MAX parts then hold 268 GiB
    (5 MiB parts alone, 48.8 GiB), and a slice never holds more than 50 MiB
    staged besides its own lines."""
    return PART_MIN * (1 + parts_written // PARTS_A_SIZE)


def put_part(key: str, upload_id: str, number: int, data: bytes) -> None:
    """Part `number` of the archive (writing it again replaces it)."""
    name = bucket()
    _archive_request(lambda: client().upload_part(Bucket=name, Key=key, UploadId=upload_id, PartNumber=number,
                                                  Body=data), "writing the export archive")


def finish_archive(key: str, upload_id: str) -> None:
    """Complete the upload with the parts S3 holds (ListParts: their ETags)."""
    name = bucket()
    parts: list[dict] = []
    marker = 0
    while True:
        page = _archive_request(lambda marker=marker: client().list_parts(
            Bucket=name, Key=key, UploadId=upload_id, PartNumberMarker=marker), "reading the export archive's parts")
        parts += [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in page.get("Parts", [])]
        if not page.get("IsTruncated"):
            break
        marker = page["NextPartNumberMarker"]
    _archive_request(lambda: client().complete_multipart_upload(Bucket=name, Key=key, UploadId=upload_id,
                                                                MultipartUpload={"Parts": parts}),
                     "completing the export archive")


def _archive_request(request: Callable[[], T], what: str) -> T:
    try:
        return attempt(request, what)
    except ClientError as error:  # NoSuchUpload
        raise ArchiveLost(what) from error


def put_bytes(key: str, data: bytes) -> None:
    """One PutObject (a staging object of an export), tagged EXPORT."""
    name = bucket()
    attempt(lambda: client().put_object(Bucket=name, Key=key, Body=data, Tagging=f"{UPLOAD_TAG}={EXPORT}"),
            "staging the export")


def read_bytes(key: str, size: int) -> bytes:
    """The first `size` bytes of an object (a ranged GetObject); b"" for 0."""
    if size <= 0:
        return b""
    name = bucket()
    found = attempt(lambda: client().get_object(Bucket=name, Key=key, Range=f"bytes=0-{size - 1}"),
                    "reading the staged export")
    return found["Body"].read()


def remove_some_under(prefix: str) -> int:
    """Delete up to DELETE_MAX objects under `prefix` (one ListObjectsV2, one
    DeleteObjects); how many were there. 0: none is left."""
    name = bucket()
    listed = attempt(lambda: client().list_objects_v2(Bucket=name, Prefix=prefix, MaxKeys=DELETE_MAX),
                     "listing the customer's files")
    keys = [{"Key": found["Key"]} for found in listed.get("Contents", [])]
    if keys:
        answer = attempt(lambda: client().delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True}),
                         "removing the customer's files")
        errors = answer.get("Errors") or []
        if errors:
            raise Unavailable(f"removing the customer's files: {len(errors)} not removed "
                              f"({errors[0].get('Code')}); retried")
    return len(keys)

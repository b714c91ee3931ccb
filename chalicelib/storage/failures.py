"""Stream records the fan-out could not follow, kept whole in the stage's
bucket (under `stream-failures/`), so `make redrive` can replay them after the
stream has dropped them (24 hours): the on-failure queue's messages hold only
pointers (shard, first and last sequence numbers).

The stream handler keeps each failed record on every failure (the same key
each time: a sequence number is unique within a stream), since it cannot know
which try is Lambda's last; the bucket's lifecycle rule expires them after the
queue's retention (14 days), and a redrive removes those it replayed."""

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.storage import objects

PREFIX = "stream-failures/"
SEQUENCE_DIGITS = 40  # zero-padded: the keys sort as the sequence numbers do


def key(sequence_number: str) -> str:
    return f"{PREFIX}{sequence_number.zfill(SEQUENCE_DIGITS)}.json"


def keep(record: dict[str, Any]) -> None:
    """Store one record ({"eventName", "sequenceNumber", "itemKey", "NewImage", "OldImage"})."""
    body = json.dumps(record, separators=(",", ":")).encode()
    name = objects.bucket()
    objects.attempt(lambda: objects.client().put_object(Bucket=name, Key=key(record["sequenceNumber"]), Body=body,
                                                        ContentType="application/json"),
                    f"keeping stream record {record['sequenceNumber']}")


def in_range(start: str, end: str) -> list[str]:
    """The keys of the kept records from sequence number `start` to `end`, in order."""
    low, high = key(start), key(end)
    found = []
    paginator = objects.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=objects.bucket(), Prefix=PREFIX, StartAfter=key(_before(start))):
        for item in page.get("Contents", []):
            if item["Key"] > high:
                return found
            if item["Key"] >= low:
                found.append(item["Key"])
    return found


def load(record_key: str) -> dict[str, Any]:
    return json.loads(objects.client().get_object(Bucket=objects.bucket(), Key=record_key)["Body"].read())


def forget(record_key: str) -> None:
    objects.client().delete_object(Bucket=objects.bucket(), Key=record_key)


def _before(sequence_number: str) -> str:
    return str(max(int(sequence_number) - 1, 0))


def remove_records_of(customer_id: str) -> int:
    """Delete the kept records of the customer's items (an erasure): every kept
    record is read, as its key names only its sequence number. They are few (a
    record is kept only when the fan-out failed it) and expire in 14 days anyway."""
    removed = 0
    paginator = objects.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=objects.bucket(), Prefix=PREFIX):
        for item in page.get("Contents", []):
            try:
                record = load(item["Key"])
            except ClientError:  # replayed and forgotten meanwhile (make redrive)
                continue
            if _of_customer(record, customer_id):
                forget(item["Key"])
                removed += 1
    return removed


def _of_customer(record: dict[str, Any], customer_id: str) -> bool:
    images = [image for image in (record.get("NewImage"), record.get("OldImage")) if image]
    return str(record.get("itemKey", "")).startswith(f"{customer_id}#") or any(
        image.get("customer_id", {}).get("S") == customer_id for image in images)

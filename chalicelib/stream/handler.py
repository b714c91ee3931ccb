"""Lambda's DynamoDB stream event → the fan-out and cascades, then the events.
Failures are reported per record, as Lambda's partial batch response wants
them; the work is idempotent, so Lambda may retry a failed record."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.services import fanout
from chalicelib.services.delivery import Delivery
from chalicelib.services.events import Lookup, derive
from chalicelib.storage.models import TableItem

log = logging.getLogger(__name__)


@dataclass
class StreamRecord:
    """The parts of a stream record we use (Lambda's or our local poller's)."""

    event_name: str  # INSERT | MODIFY | REMOVE
    sequence_number: str
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> "StreamRecord":
        data = record["dynamodb"]
        return cls(record["eventName"], data["SequenceNumber"], data.get("NewImage"), data.get("OldImage"))


def handle_records(records: Iterable[StreamRecord]) -> dict[str, list[dict[str, str]]]:
    """Process each record, then deliver the events they mean; name exactly
    the records that failed."""
    delivery = Delivery.from_settings()
    lookup = Lookup()
    failed: list[str] = []
    pending = []
    for record in records:
        try:
            old, new = _item(record.old_image), _item(record.new_image)
            fanout.follow(record.event_name, old, new)
            if delivery.enabled:
                pending += [(record.sequence_number, event) for event in derive(record.event_name, old, new, lookup)]
        except Exception:
            log.exception("stream record %s failed", record.sequence_number)
            failed.append(record.sequence_number)
    failed += delivery.deliver(pending)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


def _item(image: dict[str, Any] | None) -> TableItem | None:
    if not image or "kind" not in image:
        return None
    return TableItem.from_raw_data(image)

"""Lambda's DynamoDB stream event → the fan-out and cascades, then the events.
Failures are reported per record, as Lambda's partial batch response wants
them; the work is idempotent, so Lambda may retry a failed record.

A batch's records of one item are followed in order; the records of different
items at once (up to ITEMS_AT_ONCE), as Lambda's own lanes do them: another
chat's 1:1 message in the batch of a 1,000-copy fan-out is copied meanwhile,
not after it. The events are derived first, in record order, all together
(their lookups and requests are shared by the batch), and pushed while the
records are followed (services/delivery.py)."""

import contextvars
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import logcontext, metrics
from chalicelib.services import fanout
from chalicelib.services.delivery import Delivery
from chalicelib.services.events import ChatEvent, Lookup, derive
from chalicelib.storage.models import TableItem

log = logging.getLogger(__name__)


@dataclass
class StreamRecord:
    """The parts of a stream record we use (Lambda's or our local poller's)."""

    event_name: str  # INSERT | MODIFY | REMOVE
    sequence_number: str
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    item_key: str = ""  # the item's partition key: its records are followed in order

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> "StreamRecord":
        data = record["dynamodb"]
        partition = (data.get("Keys") or {}).get("pk") or {}
        return cls(record["eventName"], data["SequenceNumber"], data.get("NewImage"), data.get("OldImage"),
                   next(iter(partition.values()), data["SequenceNumber"]))


ITEMS_AT_ONCE = 4
# The kinds of item whose records the handler acts on (fanout.follow, events.derive):
# a record of another kind (a send window, a typing throttle, a connection, presence,
# a chat's members, a reaction, ...) or of no kind is passed over here, and the
# stage's mapping filters it out (stream_filters) before the function runs.
FOLLOWED_KINDS = ("chat", "chatroom", "chatmessage", "chatroommessage", "customer-settings", "export", "erasure")


def stream_filters() -> list[dict[str, str]]:
    """Lambda's filter of the stream's records (FilterCriteria.Filters, ORed;
    the deploy sets it): only records `followed` would take start the function,
    the others are dropped and never billed. devtools/poller.py and
    tests/conftest.py apply it too, with moto's matcher of AWS's patterns."""
    kinds = {"kind": {"S": list(FOLLOWED_KINDS)}}
    return [{"Pattern": json.dumps(pattern, separators=(",", ":"))} for pattern in (
        {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": kinds}},
        {"eventName": ["REMOVE"], "dynamodb": {"OldImage": kinds}},
    )]


def followed(record: StreamRecord) -> bool:
    """Whether the handler acts on a record, as Lambda's filter decides it: by
    the new image's kind, or a removed item's."""
    image = record.new_image if record.event_name != "REMOVE" else record.old_image
    return ((image or {}).get("kind") or {}).get("S") in FOLLOWED_KINDS


def handle_records(records: Iterable[StreamRecord]) -> dict[str, list[dict[str, str]]]:
    """Derive each record's events and start pushing them, follow each record
    (the items' records at once) meanwhile, then put the followed records'
    events on the bus; name exactly the records that failed.

    The events describe writes that have happened (the records say so), so
    they are pushed before the fan-out, not after it: a message's
    `messagechat_created` reaches a 1,000-agent group while its copies are
    being written. A record that fails is handled again by Lambda and its
    events pushed again: pushes are at least once. A failed record is kept
    whole for `make redrive` (storage/failures.py); the batch's metrics are
    written once, at its end."""
    records = [record for record in records if followed(record)]
    with logcontext.request(logcontext.request_id.get(), "stream"):
        try:
            failed = _handle(records)
        finally:
            metrics.flush()
    _keep(record for record in records if record.sequence_number in set(failed))
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


def _handle(records: list[StreamRecord]) -> list[str]:
    """The failed records' sequence numbers, in order."""
    delivery = Delivery.from_settings()
    failed: dict[str, None] = {}  # the failed records' sequence numbers, in order, once each
    pending: list[tuple[str, ChatEvent]] = []
    if delivery.enabled:
        lookup = Lookup()
        for record in records:
            try:
                old, new = _item(record.old_image), _item(record.new_image)
                pending += [(record.sequence_number, event) for event in derive(record.event_name, old, new, lookup)]
            except Exception:
                log.exception("stream record %s: its events failed", record.sequence_number)
                failed[record.sequence_number] = None
    try:
        delivery.start_pushes([event for _, event in pending])
    except Exception:  # their connections could not be read: Lambda hands these records again
        log.exception("the batch's connections could not be read; its records with events are retried")
        failed.update((sequence, None) for sequence, _ in pending)
    try:
        followed = _follow_all(records)
        failed.update((record.sequence_number, None) for record in records if followed[record.sequence_number] is None)
        on_bus = [(sequence, event) for sequence, event in pending if sequence not in failed]
        failed.update((sequence, None) for sequence in delivery.put_on_bus(on_bus))
    finally:
        delivery.wait_for_pushes()
    return list(failed)


def _keep(records: Iterable[StreamRecord]) -> None:
    """Keep the failed records' images (best effort: the failure stands either way)."""
    from chalicelib.storage import failures

    for record in records:
        try:
            failures.keep({"eventName": record.event_name, "sequenceNumber": record.sequence_number,
                           "itemKey": record.item_key, "NewImage": record.new_image, "OldImage": record.old_image})
        except Exception:
            log.exception("stream record %s: could not keep its images for make redrive", record.sequence_number)


Followed = tuple[TableItem | None, TableItem | None] | None  # (old, new), or None if it failed


def _follow_all(records: list[StreamRecord]) -> dict[str, Followed]:
    """Each record's items once followed, by sequence number: one item's records
    in order, different items' at once."""
    by_item: dict[str, list[StreamRecord]] = {}
    for record in records:
        by_item.setdefault(record.item_key, []).append(record)
    if len(by_item) <= 1:
        return _follow_in_order(records)
    from concurrent.futures import ThreadPoolExecutor  # a batch of several items only

    followed: dict[str, Followed] = {}
    context = contextvars.copy_context()  # the workers' log lines name the batch's route, as this thread's do
    with ThreadPoolExecutor(min(ITEMS_AT_ONCE, len(by_item))) as pool:
        for done in pool.map(lambda item: context.copy().run(_follow_in_order, item), by_item.values()):
            followed.update(done)
    return followed


def _follow_in_order(records: Sequence[StreamRecord]) -> dict[str, Followed]:
    followed: dict[str, Followed] = {}
    for record in records:
        try:
            old, new = _item(record.old_image), _item(record.new_image)
            fanout.follow(record.event_name, old, new)
            followed[record.sequence_number] = (old, new)
        except Exception:
            log.exception("stream record %s failed", record.sequence_number)
            followed[record.sequence_number] = None
    return followed


def _item(image: dict[str, Any] | None) -> TableItem | None:
    if not image or "kind" not in image:
        return None
    return TableItem.from_raw_data(image)

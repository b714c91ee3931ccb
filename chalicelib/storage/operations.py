"""Reading and writing items, with one policy for every failure:

- a failed condition is the business answer: `ConditionFailed`, which the
  service turns into what it means (not found, deleted, not yours, changed);
- transient errors (throttling, a transaction conflict, DynamoDB's own 500s,
  a timeout) are retried with jittered backoff inside a time budget
  (storage/clients.py: botocore's own retries are off, so this is the one
  layer), then answered 503 (`Unavailable`);
- anything else is logged and answered 500.

So a failed write is never reported as a success, nor as "not found".
"""

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, TransactWriteError

from chalicelib import storage
from chalicelib.clock import NOT_DELETED, expired
from chalicelib.errors import NotFound, ServiceError, Unavailable
from chalicelib.storage import clients
from chalicelib.storage.models import META, Resource, TableItem

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Resource)
T = TypeVar("T")

ATTEMPTS = 5
# Errors after which the same request may well succeed a moment later; none
# of them leaves a write half done.
TRANSIENT_ERRORS = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException",
})
# The network failed on the way (the request may or may not have landed).
# Retrying is safe here: every write of ours is conditional or idempotent (a
# landed one comes back as ConditionFailed, which callers read as "done or
# changed: look again"), and transactions carry a ClientRequestToken, with
# which DynamoDB answers a retry of a landed transaction with success.
NETWORK_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)
# The same, as a transaction's cancellation reasons name them.
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
CONDITION_FAILED = "ConditionalCheckFailed"


class ConditionFailed(Exception):
    """A write's condition did not hold; nothing was written. For a
    transaction, `reasons` has one entry per item: CONDITION_FAILED or None."""

    def __init__(self, reasons: list[str | None] | None = None):
        super().__init__("condition failed")
        self.reasons = reasons or []


def _reasons(error: PynamoDBException) -> list[str | None]:
    if not isinstance(error, TransactWriteError):
        return []
    return [reason.code if reason else None for reason in error.cancellation_reasons or []]


def _kind(error: PynamoDBException) -> str:
    if isinstance(error.cause, NETWORK_ERRORS):
        return "transient"
    if isinstance(error, PutError) and error.cause is None:
        return "transient"  # a BatchWriteItem's unprocessed items (throttled): PynamoDB resends none of them
    code = _code(error)
    if code == "ConditionalCheckFailedException":
        return "condition"
    if code == "TransactionCanceledException":
        codes = {reason for reason in _reasons(error) if reason not in (None, "None")}
        if CONDITION_FAILED in codes:
            return "condition"
        if codes and codes <= TRANSIENT_REASONS:
            return "transient"
        return "other"
    return "transient" if code in TRANSIENT_ERRORS else "other"


def attempt(request: Callable[[], T], what: str, first_delay: float = 0.05) -> T:
    """Run one DynamoDB request (a read, a write or a transaction) under the
    policy above. `what` names it in the log and in the error message."""
    started = clients.now()
    for number in range(1, ATTEMPTS + 1):
        try:
            return request()
        except DoesNotExist:
            raise
        except PynamoDBException as error:
            kind = _kind(error)
            if kind == "condition":
                raise ConditionFailed(_reasons(error)) from error
            delay = clients.next_delay(number, started, first_delay) if number < ATTEMPTS else None
            if kind == "transient" and delay is not None:
                time.sleep(delay)
                continue
            if kind == "transient":
                log.warning("%s: still %s after %d attempts in %.1f s", what, _code(error), number,
                            clients.now() - started)
                raise Unavailable(f"{what}: the database is busy, nothing was changed; please retry") from error
            log.error("%s failed: %s", what, error, exc_info=error)
            raise ServiceError(f"{what}: storage error") from error
    raise AssertionError("unreachable")


def _code(error: PynamoDBException) -> str:
    """DynamoDB's error code, or else the failure's name. (A timed out request
    has a `response` of None, on which PynamoDB's cause_response_code fails.)"""
    response = getattr(error.cause, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code or type(error.cause if error.cause is not None else error).__name__


BATCH_WRITE_MAX = 25  # items in one BatchWriteItem
_sleep, _monotonic = time.sleep, time.monotonic  # a fake clock in tests
CONCURRENT_BATCH_WRITES = 4


# One partition serves about 1,000 write units a second: writes of many items
# of one partition go at half that, so it keeps room for its other writes.
ONE_PARTITION_ITEMS_PER_SECOND = 500


def put_all(model: type[TableItem], items: list[TableItem], what: str,
            paced: tuple[int, int] | None = None) -> None:
    """Put every item, 25 to a BatchWriteItem, up to CONCURRENT_BATCH_WRITES of
    them at once (a 1,000-agent group's 1,900 items in a fraction of 77
    round trips), each under the policy above. `paced` = (first, per second):
    the batches that hold items[first:] (one partition's) go one after another,
    at most `per second` items a second, after the others. The batch with the
    last item goes only once all the others are written: whoever sees the
    last item sees them all."""
    def request(chunk: list[TableItem]) -> None:
        with model.batch_write() as batch:
            for item in chunk:
                batch.save(item)

    _in_batches(items, request, what, paced)


def delete_all(keys: list[tuple[str, str]], what: str, paced: tuple[int, int] | None = None) -> None:
    """Delete items by (pk, sk), in batches as put_all writes them (deleting
    what is gone already is no error)."""
    def request(chunk: list[tuple[str, str]]) -> None:
        with TableItem.batch_write() as batch:
            for pk, sk in chunk:
                batch.delete(TableItem(pk, sk))

    _in_batches(keys, request, what, paced)


def _in_batches(items: list, request: Callable[[list], None], what: str, paced: tuple[int, int] | None) -> None:
    """put_all's and delete_all's batches: `request(chunk)` writes one."""
    chunks = [items[start:start + BATCH_WRITE_MAX] for start in range(0, len(items), BATCH_WRITE_MAX)]
    first_paced = paced[0] // BATCH_WRITE_MAX if paced else len(chunks) - 1

    def write(chunk: list) -> None:
        attempt(lambda: request(chunk), what)

    if first_paced > 0:
        from concurrent.futures import ThreadPoolExecutor  # large groups only: not on a cold start's path

        with ThreadPoolExecutor(CONCURRENT_BATCH_WRITES) as pool:
            for written in [pool.submit(write, chunk) for chunk in chunks[:first_paced]]:
                written.result()
    started = _monotonic()
    for number, chunk in enumerate(chunks[max(first_paced, 0):]):
        if paced:
            due = started + number * BATCH_WRITE_MAX / paced[1]
            if due > _monotonic():
                _sleep(due - _monotonic())
        write(chunk)


def load(model: type[R], customer_id: str, item_id: str, what: str) -> R:
    """One strongly consistent GetItem; another tenant's id is simply not there."""
    try:
        item = attempt(lambda: model.get(model.key(customer_id, item_id), META, consistent_read=True),
                       f"reading {what} {item_id}")
    except DoesNotExist:
        raise NotFound(f"{what} {item_id} not found") from None
    if expired(getattr(item, "expires_at", None)):  # past its TTL: gone, though DynamoDB may not have deleted it yet
        raise NotFound(f"{what} {item_id} not found")
    return item


def load_live(model: type[R], customer_id: str, item_id: str, what: str) -> R:
    item = load(model, customer_id, item_id, what)
    if item.deleted:
        raise NotFound(f"{what} {item_id} is deleted")
    return item


def update(item: TableItem, actions: list, condition, what: str) -> TableItem:
    """One conditional UpdateItem; the item comes back as it is now (ALL_NEW)."""
    attempt(lambda: item.update(actions, condition=condition), what)
    return item


class _InCallOrder:
    """A TransactWrite that remembers the order of its actions. PynamoDB sends
    them grouped by kind (checks, deletes, puts, updates), so DynamoDB's
    cancellation reasons come in that order; ConditionFailed.reasons are put
    back in the order the caller added the actions."""

    SENT_ORDER = ("condition_check", "delete", "save", "update")

    def __init__(self, transaction):
        self._transaction = transaction
        self.kinds: list[str] = []

    def __getattr__(self, kind: str):
        if kind not in self.SENT_ORDER:
            raise AttributeError(kind)
        self.kinds.append(kind)
        return getattr(self._transaction, kind)

    def in_call_order(self, reasons: list[str | None]) -> list[str | None]:
        sent = [index for kind in self.SENT_ORDER for index, called in enumerate(self.kinds) if called == kind]
        if len(reasons) != len(sent):
            return reasons
        ordered: list[str | None] = [None] * len(sent)
        for position, index in enumerate(sent):
            ordered[index] = reasons[position]
        return ordered


def transact(build: Callable, what: str) -> None:
    """One TransactWriteItems: `build(tx)` adds the actions (again on a retry).
    A ConditionFailed names its reasons in the order `build` added the actions."""
    from pynamodb.transactions import TransactWrite  # a tenth of a cold start: only where a transaction is made

    last: list[_InCallOrder] = []
    token = uuid.uuid4().hex  # the same on every retry of this one transaction

    def run() -> None:
        with TransactWrite(connection=storage.connection(), client_request_token=token) as transaction:
            last[:] = [_InCallOrder(transaction)]
            build(last[0])

    try:
        attempt(run, what)
    except ConditionFailed as failed:
        failed.reasons = last[0].in_call_order(failed.reasons)
        raise


def is_live():
    return Resource.tm_delete == NOT_DELETED


def soft_delete_actions(when: str) -> list:
    """Mark deleted and leave the list and order indexes, so lists never read
    the item again. Its relation-index entry stays: the customer's registry
    (models.registered) and a message's copies (readers of which skip the
    deleted ones) name every item until it is gone from the table."""
    return [
        Resource.tm_delete.set(when),
        Resource.tm_update.set(when),
        TableItem.gsi1pk.remove(),
        TableItem.gsi1sk.remove(),
        TableItem.gsi3pk.remove(),
        TableItem.gsi3sk.remove(),
    ]

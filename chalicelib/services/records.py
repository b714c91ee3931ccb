"""Small storage helpers the services share: load by id, soft delete, transactions."""

import time
from collections.abc import Callable
from typing import TypeVar

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.transactions import TransactWrite

from chalicelib import storage
from chalicelib.clock import NOT_DELETED
from chalicelib.errors import NotFound
from chalicelib.storage.models import META, Resource, TableItem

R = TypeVar("R", bound=Resource)


def load(model: type[R], customer_id: str, item_id: str, what: str) -> R:
    """One GetItem; another tenant's id is simply not there."""
    try:
        return model.get(model.key(customer_id, item_id), META, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"{what} {item_id} not found") from None


def load_live(model: type[R], customer_id: str, item_id: str, what: str) -> R:
    item = load(model, customer_id, item_id, what)
    if item.deleted:
        raise NotFound(f"{what} {item_id} is deleted")
    return item


def is_live():
    return Resource.tm_delete == NOT_DELETED


def soft_delete_actions(when: str) -> list:
    """Mark deleted and leave every index, so lists never read the item again."""
    return [
        Resource.tm_delete.set(when),
        Resource.tm_update.set(when),
        TableItem.gsi1pk.remove(),
        TableItem.gsi1sk.remove(),
        TableItem.gsi2pk.remove(),
        TableItem.gsi2sk.remove(),
    ]


def transaction() -> TransactWrite:
    return TransactWrite(connection=storage.connection())


# Errors after which the same write may well succeed a moment later.
TRANSIENT_ERRORS = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
}
T = TypeVar("T")


def is_condition_failure(error: PynamoDBException) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def with_retries(write: Callable[[], T], attempts: int = 5, first_delay: float = 0.05) -> T:
    """Run a write, again after a short backoff while it fails transiently
    (throttling, a conflict); any other error is the caller's. Only for
    writes that are safe to repeat (conditional or idempotent)."""
    for attempt in range(attempts):
        try:
            return write()
        except PynamoDBException as error:
            if error.cause_response_code not in TRANSIENT_ERRORS or attempt == attempts - 1:
                raise
            time.sleep(min(first_delay * 2 ** attempt, 1.0))
    raise AssertionError("unreachable")

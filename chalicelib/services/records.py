"""Small storage helpers the services share: load by id, soft delete, transactions."""

from typing import TypeVar

from pynamodb.exceptions import DoesNotExist
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

"""Newest-first pages over the list index, one Query per page, and the
children of a parent over the relation index."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from chalicelib.clock import NOT_DELETED, expired
from chalicelib.storage.models import REGISTRY_SHARDS, TableItem, registry_key

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    # the token that resumes after each item, so that a page can end early
    # (an answer too large for Lambda: schemas/render.py)
    keys: list[str] | None = None


def list_page(partition: str, page: "PageRequest", index=None) -> Page:
    """Items of one partition of the list index (or of `index`, the order
    index) before the token, newest first.

    Asks for one item more than the page holds, so the last page is known
    for sure (its next_page_token is "") without a second request.
    """
    index = index or TableItem.list_index
    sort_key = TableItem.gsi3sk if index.Meta.index_name == TableItem.order_index.Meta.index_name else TableItem.gsi1sk
    condition = sort_key < page.token if page.token else None
    items = list(
        index.query(
            partition,
            range_key_condition=condition,
            scan_index_forward=False,
            limit=page.size + 1,
            page_size=page.size + 1,
        )
    )
    keys = [getattr(item, sort_key.attr_name) for item in items[:page.size]]
    token = keys[-1] if len(items) > page.size else ""
    # Past their TTL: gone, though DynamoDB may not have deleted them yet. The
    # token still resumes after the last item read, so a page may hold fewer.
    shown = [(item, key) for item, key in zip(items[:page.size], keys, strict=True)
             if not expired(getattr(item, "expires_at", None))]
    return Page([item for item, _ in shown], token, [key for _, key in shown])


def related(partition: str, sort_key: str | None = None) -> list:
    """Every item of one relation-index partition (all pages), deleted ones too."""
    condition = TableItem.gsi2sk == sort_key if sort_key is not None else None
    return list(TableItem.relation_index.query(partition, range_key_condition=condition))


def live_related(partition: str) -> list:
    """The live items of one relation-index partition (its projection carries tm_delete)."""
    return [item for item in related(partition) if getattr(item, "tm_delete", NOT_DELETED) == NOT_DELETED]


@dataclass(frozen=True)
class PageRequest:
    """Which page a caller asks for: its size, the token of the page before
    (its sort key), and the order (`create`, or `activity` for chatrooms)."""

    size: int
    token: str | None = None
    order: str = "create"


REGISTRY_START = "start"  # a walk's first cursor (kept in an item's attribute, so not "")


def registry(customer_id: str, cursor: str):
    """The customer's registered partitions (models.registered) from `cursor`
    (REGISTRY_START, else "<shard>|<pk>" of the last one done), in shard then
    key order, each once (a partition registered by several of its items has
    as many entries, one after another): (cursor after it, its entry)."""
    shard, after = (0, "") if cursor == REGISTRY_START else (int(cursor.split("|", 1)[0]), cursor.split("|", 1)[1])
    for number in range(shard, REGISTRY_SHARDS):
        condition = TableItem.gsi2sk > after if after and number == shard else None
        previous = None
        for entry in TableItem.relation_index.query(registry_key(customer_id, number), range_key_condition=condition):
            if entry.gsi2sk != previous:
                yield f"{number:02}|{entry.gsi2sk}", entry
            previous = entry.gsi2sk


def walk_registry(customer_id: str, cursor: str, budget: int, visit) -> str | None:
    """Visit the customer's registered partitions from `cursor` until the work
    `visit(entry)` reports (at least 1 an entry) reaches `budget`: the cursor
    the next walk resumes from, or None once every partition was visited. The
    slices of an export or an erasure, each bounded to seconds of work."""
    work, last = 0, None
    for position, entry in registry(customer_id, cursor):
        if work >= budget:
            return last
        last = position
        work += max(visit(entry), 1)
    return None

"""Newest-first pages over the list index, one Query per page, and the
children of a parent over the relation index."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from chalicelib.storage.models import TableItem

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def list_page(partition: str, page: "PageRequest") -> Page:
    """Items of one list-index partition older than the token, newest first.

    Asks for one item more than the page holds, so the last page is known
    for sure (its next_page_token is "") without a second request.
    """
    condition = TableItem.gsi1sk < page.token if page.token else None
    items = list(
        TableItem.list_index.query(
            partition,
            range_key_condition=condition,
            scan_index_forward=False,
            limit=page.size + 1,
            page_size=page.size + 1,
        )
    )
    if len(items) > page.size:
        items = items[:page.size]
        return Page(items, items[-1].gsi1sk)
    return Page(items, "")


def related(partition: str, sort_key: str | None = None) -> list:
    """Every item of one relation-index partition (all pages)."""
    condition = TableItem.gsi2sk == sort_key if sort_key is not None else None
    return list(TableItem.relation_index.query(partition, range_key_condition=condition))


@dataclass(frozen=True)
class PageRequest:
    """Which page a caller asks for: its size, and the token of the page before."""

    size: int
    token: str | None = None

"""Newest-first pages over the list index, one Query per page."""

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from chalicelib.clock import is_timestamp
from chalicelib.errors import BadRequest
from chalicelib.storage.models import TableItem

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 100
_TOKEN = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})(~[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$"
)

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def parse_page_size(raw: str | None) -> int:
    if raw is None:
        return PAGE_SIZE_DEFAULT
    if not re.fullmatch(r"\d{1,4}", raw) or not 1 <= int(raw) <= PAGE_SIZE_MAX:
        raise BadRequest(f"page_size: must be an integer from 1 to {PAGE_SIZE_MAX}")
    return int(raw)


def parse_page_token(raw: str | None) -> str | None:
    """A token we issued ("tm_create~id") or a bare tm_create; "" means the first page."""
    if not raw:
        return None
    match = _TOKEN.match(raw)
    if not match or not is_timestamp(match.group("ts")):
        raise BadRequest(
            "page_token: must be a next_page_token from an earlier page or a timestamp "
            "'YYYY-MM-DD HH:MM:SS.ffffff'"
        )
    return raw


def list_page(partition: str, page_size: int, page_token: str | None) -> Page:
    """Items of one list-index partition older than the token, newest first.

    Asks for one item more than the page holds, so the last page is known
    for sure (its next_page_token is "") without a second request.
    """
    condition = TableItem.gsi1sk < page_token if page_token else None
    items = list(
        TableItem.list_index.query(
            partition,
            range_key_condition=condition,
            scan_index_forward=False,
            limit=page_size + 1,
            page_size=page_size + 1,
        )
    )
    if len(items) > page_size:
        items = items[:page_size]
        return Page(items, items[-1].gsi1sk)
    return Page(items, "")


def related(partition: str, sort_key: str | None = None) -> list:
    """Every item of one relation-index partition (all pages)."""
    condition = TableItem.gsi2sk == sort_key if sort_key is not None else None
    return list(TableItem.relation_index.query(partition, range_key_condition=condition))

"""GET /chats/{id}/transcript: a chat's messages oldest first, with sender
names, edits and deletes marked, a page at a time.

Live messages come from the list index (the chat's partition, ascending);
deleted ones from the order index, where the stream handler files them when
they are deleted (services/lifecycle.py, on_chatmessage_deleted). The two
ascending Queries are merged by their sort key `tm_create~id`, which is also
the page token, so paging never skips nor repeats a message.

A page ends at PAGE_ITEMS_MAX messages or once its answer reaches
ANSWER_BYTES_MAX, whichever comes first: far inside Lambda's 6 MB answer,
and reading at most a few 1 MB Query pages, far inside API Gateway's 29 s.
A 100,000-message chat is 100 pages or more; a client follows
next_page_token until it is "".
"""

from __future__ import annotations

import heapq
from types import SimpleNamespace

from chalicelib.auth import Principal
from chalicelib.errors import BadRequest
from chalicelib.schemas.render import answer_bytes
from chalicelib.services import lifecycle, membership
from chalicelib.storage.models import ChatItem, ChatmessageItem, TableItem
from chalicelib.storage.operations import attempt, load

PAGE_ITEMS_MAX = 1000  # messages examined per page
# The page's entries as Lambda hands them to API Gateway (escaped twice,
# schemas/render.py); the entry that reaches it may pass it by one message
# (at most ~0.5 MB: 10,000 characters of emoji and medias, escaped twice).
ANSWER_BYTES_MAX = 4 * 1024 * 1024
FORMATS = ("json", "text")
EDITED, DELETED = " (edited)", "(deleted)"


def sender_name(source: dict) -> str:
    source = source or {}
    return source.get("target_name") or source.get("name") or source.get("target") or source.get("type") or "unknown"


def entry(message: ChatmessageItem) -> dict:
    deleted = message.deleted
    return {
        "id": message.id, "tm_create": message.tm_create, "sender": sender_name(message.source),
        "source": message.source, "type": message.type,
        # a deleted message's content is not shown (it is purged after the customer's grace period)
        "text": "" if deleted else message.text, "medias": [] if deleted else message.medias,
        "edited": not deleted and message.tm_update != message.tm_create,
        "deleted": deleted, "tm_update": message.tm_update, "tm_delete": message.tm_delete,
        "parent_id": message.parent_id or "",
    }


def line(shown: dict) -> str:
    if shown["deleted"]:
        return f"[{shown['tm_create']}] {shown['sender']}: {DELETED}"
    text = shown["text"].replace("\r\n", "\n").replace("\n", "\n    ")  # continuation lines stay indented
    medias = "".join(f" [{media.get('type')}: {_media_name(media)}]" for media in shown["medias"])
    return f"[{shown['tm_create']}] {shown['sender']}: {text}{medias}{EDITED if shown['edited'] else ''}"


def _media_name(media: dict) -> str:
    return str(media.get("file_id") or media.get("link_url") or (media.get("agent") or {}).get("id")
               or (media.get("address") or {}).get("target") or "")


def _ascending(index, partition: str, sort_key, token: str | None):
    """One index partition after `token`, oldest first, as (sort key, item); Query pages of at most 1 MB."""
    condition = sort_key > token if token else None
    for item in index.query(partition, range_key_condition=condition, scan_index_forward=True, page_size=250):
        yield getattr(item, sort_key.attr_name), item


def transcript(principal: Principal, chat_id: str, format_: str | None, token: str | None) -> SimpleNamespace:
    format_ = format_ or "json"
    if format_ not in FORMATS:
        raise BadRequest(f"format: one of {', '.join(FORMATS)}")
    membership.require_member(principal, chat_id, "chat")
    load(ChatItem, principal.customer_id, chat_id, "chat")
    c = principal.customer_id

    def read() -> tuple[list[tuple[dict, object]], str]:
        """Entries until the page is full, lazily: Query pages are read only as the merge needs them."""
        merged = heapq.merge(
            _ascending(TableItem.list_index, ChatmessageItem.list_key(c, chat_id), TableItem.gsi1sk, token),
            _ascending(TableItem.order_index, ChatmessageItem.deleted_key(c, chat_id), TableItem.gsi3sk, token),
            key=lambda pair: pair[0])
        page, used, last_key = [], 0, ""
        for examined, (sort_key, message) in enumerate(merged, start=1):
            if not lifecycle.expired(message):  # expired: gone, even before DynamoDB's TTL deletes it
                item = entry(message)
                rendered = line(item) if format_ == "text" else item
                used += answer_bytes(rendered)
                page.append((item, rendered))
            last_key = sort_key
            if examined == PAGE_ITEMS_MAX or used >= ANSWER_BYTES_MAX:
                more = next(merged, None) is not None
                return page, last_key if more else ""
        return page, ""

    page, next_token = attempt(read, f"reading the transcript of chat {chat_id}")
    if format_ == "text":
        text = "".join(rendered + "\n" for _, rendered in page)
        return SimpleNamespace(chat_id=chat_id, format=format_, result=[], text=text, next_page_token=next_token)
    return SimpleNamespace(chat_id=chat_id, format=format_, result=[item for item, _ in page], text="",
                           next_page_token=next_token)

"""Data lifecycle: a customer's retention settings, and the expiry they put on
what is written (DynamoDB TTL, the table's `expires_at`).

- `retention_days` (0 keeps forever): a chatmessage, its copies and its
  history versions are written with `expires_at` = tm_create + retention.
  Reads treat an expired item as gone (DynamoDB deletes within about 48 h
  of `expires_at`), and the stream handler deletes the copies of a
  chatmessage that TTL removed.
- `purge_deleted_after_days`: a deleted chatmessage, its copies and its
  history get `expires_at` = the delete's time + grace (or their retention
  expiry, whichever comes first).
- A change of `retention_days` re-stamps older messages in a pass run by the
  stream function in bounded slices (restamp_slice).
- A live copy removed from the table moves its chatroom's read state.

Expiry is read on `chalicelib.clock.now` (the clock tests move) through
`clock.expired`, the same check storage applies on reads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

from pynamodb.exceptions import DoesNotExist

from chalicelib import clock
from chalicelib.auth import Principal
from chalicelib.clock import epoch, now
from chalicelib.errors import NotFound
from chalicelib.services import access, readstate
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    CustomerSettingsItem,
    TableItem,
    list_sort_key,
    registering,
)
from chalicelib.storage.operations import (
    ONE_PARTITION_ITEMS_PER_SECOND,
    ConditionFailed,
    attempt,
    delete_all,
    is_live,
    load,
    put_all,
    update,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from chalicelib.schemas.bodies import CustomerSettingsUpdate

DEFAULT_PURGE_DAYS = 30
DAY = 86400


@dataclass(frozen=True)
class Settings:
    customer_id: str
    retention_days: int = 0
    purge_deleted_after_days: int = DEFAULT_PURGE_DAYS
    tm_update: str = ""

    def expires_at(self, tm_create: str) -> int | None:
        """When an item created at `tm_create` expires (epoch seconds), or None (kept)."""
        if not self.retention_days:
            return None
        return epoch(tm_create) + self.retention_days * DAY

    def purged_at(self, tm_delete: str, tm_create: str) -> int:
        """When a deleted message's content goes: after the grace, or at its retention expiry if sooner."""
        purge = epoch(tm_delete) + self.purge_deleted_after_days * DAY
        retained = self.expires_at(tm_create)
        return purge if retained is None else min(purge, retained)


def expired(item) -> bool:
    """An item past its expiry: gone for every reader, whether or not DynamoDB deleted it yet."""
    return clock.expired(getattr(item, "expires_at", None))


# Settings change rarely and count in days: a warm Lambda reads a customer's
# once a minute, not on every send. A change is seen by every container
# within CACHE_SECONDS (at once by the one that made it).
CACHE_SECONDS = 60
_cache: dict[str, tuple[float, Settings]] = {}


def not_expired(model):
    """A write's condition: the item is not past its TTL (DynamoDB may not have deleted it yet)."""
    return model.expires_at.does_not_exist() | (model.expires_at > clock.epoch(clock.now()))


def settings_of(customer_id: str) -> Settings:
    """The customer's settings: one GetItem, at most once a minute per container."""
    cached = _cache.get(customer_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    settings = _read_settings(customer_id)
    _cache[customer_id] = (time.monotonic() + CACHE_SECONDS, settings)
    return settings


def _read_settings(customer_id: str) -> Settings:
    try:
        item = attempt(lambda: CustomerSettingsItem.get(CustomerSettingsItem.key(customer_id), META),
                       "reading the customer's settings")
    except DoesNotExist:
        return Settings(customer_id)
    return Settings(customer_id, int(item.retention_days or 0),
                    int(item.purge_deleted_after_days or DEFAULT_PURGE_DAYS), item.tm_update or "")


# ---- GET|PUT /customer/settings ----------------------------------------------------------------

def get_settings(principal: Principal) -> Settings:
    access.require_privileged(principal, "the customer's settings are for customer tokens, admins and managers")
    return _read_settings(principal.customer_id)


def put_settings(principal: Principal, body: CustomerSettingsUpdate) -> Settings:
    """One UpdateItem; the fields not given keep their values."""
    access.require_privileged(principal, "the customer's settings are for customer tokens, admins and managers")
    tm = now()
    item = CustomerSettingsItem(CustomerSettingsItem.key(principal.customer_id), META)
    actions = [CustomerSettingsItem.customer_id.set(principal.customer_id), CustomerSettingsItem.tm_update.set(tm),
               *registering(CustomerSettingsItem, principal.customer_id, item.pk)]
    if body.retention_days is not None:
        actions.append(CustomerSettingsItem.retention_days.set(body.retention_days))
        # older messages follow through the stream: a pass from the start (restamp_slice)
        actions.append(CustomerSettingsItem.pass_cursor.set(PASS_START))
    if body.purge_deleted_after_days is not None:
        actions.append(CustomerSettingsItem.purge_deleted_after_days.set(body.purge_deleted_after_days))
    update(item, actions, None, "saving the customer's settings")
    settings = Settings(principal.customer_id, int(item.retention_days or 0),
                        int(item.purge_deleted_after_days or DEFAULT_PURGE_DAYS), tm)
    _cache[principal.customer_id] = (time.monotonic() + CACHE_SECONDS, settings)
    return settings


# ---- what the stream handler does (services/fanout.py) -----------------------------------------

def purge_time(message: ChatmessageItem) -> int:
    """When a just-deleted message's content goes (the settings: one GetItem, once a minute)."""
    return settings_of(message.customer_id).purged_at(message.tm_delete, message.tm_create)


def on_chatmessage_deleted(message: ChatmessageItem, purge_at: int) -> None:
    """A deleted message: filed in its chat's deleted messages (its transcript
    shows the delete), and it and everything in its partition (history
    versions, reactions) expire at `purge_at`. One UpdateItem, one Query of the
    partition and one BatchWriteItem per 25 of its items: O(its items)."""
    keyed = ChatmessageItem.keyed(message.customer_id, message.id)
    try:
        update(keyed, [ChatmessageItem.gsi3pk.set(ChatmessageItem.deleted_key(message.customer_id, message.chat_id)),
                       ChatmessageItem.gsi3sk.set(list_sort_key(message.tm_create, message.id)),
                       ChatmessageItem.expires_at.set(purge_at)],
               ChatmessageItem.tm_delete == message.tm_delete, f"filing deleted chatmessage {message.id}")
    except ConditionFailed:
        return  # gone already (its TTL passed): nothing of it to keep
    expire_partition(message.pk, purge_at)


def expire_partition(pk: str, expires_at: int) -> int:
    """Every item of a message's partition but the message itself expires by
    `expires_at` (an earlier expiry is kept); how many were changed."""
    items = attempt(lambda: [item for item in TableItem.query(pk, TableItem.sk > META, consistent_read=True)
                             if getattr(item, "expires_at", None) is None or int(item.expires_at) > expires_at],
                    f"reading the items of {pk}")
    for item in items:
        item.expires_at = expires_at
    put_all(TableItem, items, f"expiring the items of {pk}", paced=(0, ONE_PARTITION_ITEMS_PER_SECOND))  # one partition
    return len(items)


def on_chatmessage_removed(message: ChatmessageItem) -> None:
    """A chatmessage removed from the table (DynamoDB TTL: its retention or
    its purge) takes what is left of it along: its live copies (one Query of
    the relation index) and its partition's items (one Query), deleted 25 to
    a BatchWriteItem. Copies and versions carry the same expiry and usually
    go by TTL by themselves; this covers the ones written before it."""
    copies = attempt(lambda: paging.related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                     f"reading the copies of chatmessage {message.id}")
    rest = attempt(lambda: list(TableItem.query(message.pk, TableItem.sk > META)),
                   f"reading the items of chatmessage {message.id}")
    # the copies, each in its own partition, then the message's partition (its reactions: up to 50 per member), paced
    delete_all([(copy.pk, copy.sk) for copy in copies] + [(item.pk, item.sk) for item in rest],
               f"removing what is left of chatmessage {message.id}",
               paced=(len(copies), ONE_PARTITION_ITEMS_PER_SECOND))


def on_copy_removed(copy: ChatroommessageItem) -> None:
    """A live copy removed from the table (TTL, or the cascade above): its
    chatroom's read state lets it go as a delete would (unread count, and the
    preview when it was the newest). One GetItem of the chatroom, one UpdateItem
    conditioned on the revision read (again when the chatroom changed meanwhile)."""
    # what is_own and the mention count read of the chatmessage (gone): the copy says both
    sender = SimpleNamespace(source=copy.source, sender_id=None, mentions_agent=lambda _owner: bool(copy.mentioned))
    for _ in range(5):
        try:
            room = load(ChatroomItem, copy.customer_id, copy.chatroom_id, "chatroom")
        except NotFound:
            return
        if room.deleted:
            return
        state = readstate.RoomState.of(room)
        replacement = None
        if state.newest is not None and state.newest.copy_id == copy.id:
            replacement = readstate.newest_other_copy(room, copy.id)
        actions, condition = readstate.on_copy_deleted(room, copy, sender, state, replacement)
        try:
            update(room, actions, condition, f"moving the read state of chatroom {room.id}")
            return
        except ConditionFailed:
            continue  # the chatroom changed meanwhile: read again
    raise RuntimeError(f"chatroom {copy.chatroom_id} kept changing; the stream retries the record")


# ---- the pass that re-stamps older messages after a retention change ---------------------------

PASS_START = "start"
PASS_WORK_MAX = 2000  # messages read plus items written per slice: seconds of one stream invocation


def on_settings_changed(old: CustomerSettingsItem | None, new: CustomerSettingsItem) -> None:
    """A settings record on the stream: run the next slice of the pass when
    its cursor moved (a retention change starts it; each slice's own cursor
    update brings the next slice, so no invocation runs long)."""
    if new.pass_cursor is None:
        return
    if old is not None and old.pass_cursor == new.pass_cursor and old.retention_days == new.retention_days:
        return  # another field changed: the pass is driven by its own records
    restamp_slice(new)


def restamp_slice(item: CustomerSettingsItem) -> None:
    """Give every live message of the customer's live chats, with its copies
    and history, the expiry its retention now says, from the cursor on, for
    at most PASS_WORK_MAX reads and writes; then save the cursor (or the end). O(items
    of that customer): one Query of its chats, per chat Queries of its
    messages' partition, per message one of its copies and one of its history;
    never a Scan. Deleted messages keep the purge expiry set at their delete."""
    settings = Settings(item.customer_id, int(item.retention_days or 0))
    chat_from, message_from = ("", "") if item.pass_cursor == PASS_START else item.pass_cursor.split("|", 1)
    work = 0  # writes, and messages read (a slice over messages already right still ends)
    # Read lazily, a Query page at a time; a failed read fails the stream record, and Lambda's retry runs
    # the slice again from the saved cursor (every write here is idempotent).
    for chat in ChatItem.list_index.query(ChatItem.list_key(item.customer_id),
                                          ChatItem.gsi1sk >= chat_from if chat_from else None,
                                          scan_index_forward=True):
        after = message_from if chat.gsi1sk == chat_from else ""
        for message in ChatmessageItem.list_index.query(ChatmessageItem.list_key(item.customer_id, chat.id),
                                                        ChatmessageItem.gsi1sk > after if after else None,
                                                        scan_index_forward=True):
            work += 1 + _restamp(message, settings.expires_at(message.tm_create))
            if work >= PASS_WORK_MAX:
                _save_cursor(item, f"{chat.gsi1sk}|{message.gsi1sk}")
                return
    _save_cursor(item, None)


def _restamp(message: ChatmessageItem, expires_at: int | None) -> int:
    """The message, its copies and its history get `expires_at` (None: kept forever); the writes made."""
    if (int(message.expires_at) if message.expires_at is not None else None) == expires_at:
        return 0
    stamp = ChatmessageItem.expires_at.set(expires_at) if expires_at is not None else \
        ChatmessageItem.expires_at.remove()
    try:
        update(ChatmessageItem.keyed(message.customer_id, message.id), [stamp], is_live(),
               f"stamping chatmessage {message.id}")
    except ConditionFailed:
        return 1  # deleted meanwhile: its purge expiry stands
    copies = attempt(lambda: paging.live_related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                     f"reading the copies of chatmessage {message.id}")
    for copy in copies:
        keyed = ChatroommessageItem.keyed(message.customer_id, copy.id)
        copy_stamp = ChatroommessageItem.expires_at.set(expires_at) if expires_at is not None else \
            ChatroommessageItem.expires_at.remove()
        try:
            update(keyed, [copy_stamp], is_live(), f"stamping chatroommessage {copy.id}")
        except ConditionFailed:
            pass  # deleted meanwhile
    history = attempt(lambda: list(TableItem.query(message.pk, TableItem.sk > META)),
                      f"reading the items of chatmessage {message.id}")
    for version in history:
        version.expires_at = expires_at
    put_all(TableItem, history, f"stamping the history of chatmessage {message.id}",
            paced=(0, ONE_PARTITION_ITEMS_PER_SECOND))  # the message's partition
    return 1 + len(copies) + len(history)


def _save_cursor(item: CustomerSettingsItem, cursor: str | None) -> None:
    """Where the next slice starts (its record on the stream runs it), or the
    end. Conditioned on the settings the slice ran with: a newer change
    started its own pass, and this one stops here."""
    actions = [CustomerSettingsItem.pass_cursor.set(cursor)] if cursor else \
        [CustomerSettingsItem.pass_cursor.remove(), CustomerSettingsItem.pass_done.set(now())]
    condition = (CustomerSettingsItem.retention_days == item.retention_days) & \
        (CustomerSettingsItem.pass_cursor == item.pass_cursor)
    try:
        update(CustomerSettingsItem(item.pk, META), actions, condition, "saving the retention pass's cursor")
    except ConditionFailed:
        log.info("customer %s: settings changed during the retention pass; the newer pass goes on", item.customer_id)

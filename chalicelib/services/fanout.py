"""The work that follows a write, as the table's stream reports it:

- a new chatmessage is copied into every live chatroom of its chat;
- a deleted chatmessage takes its copies with it;
- a deleted chat takes its chatrooms with it;
- a chat too large for one transaction gets any chatroom it is missing.

Every action is idempotent (derived ids, conditional writes), so a replayed
record changes nothing. A membership change needs nothing here: chatrooms
show their chat's participant list, stored once in the chat.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import metrics
from chalicelib.clock import NOT_DELETED, TIME_FORMAT
from chalicelib.errors import NotFound
from chalicelib.services import erasure, exports, lifecycle, membership, readstate, views
from chalicelib.services.chats import TRANSACTION_ROOMS, write_order
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    CustomerSettingsItem,
    ErasureItem,
    ExportItem,
    TableItem,
    list_sort_key,
)
from chalicelib.storage.operations import (
    CONDITION_FAILED,
    ConditionFailed,
    attempt,
    is_live,
    load,
    soft_delete_actions,
    transact,
)

# 25 copies to a transaction (with their chatrooms' checks, 50 actions) keeps
# a transaction of the largest copies (10,000 characters, 10 medias) under
# DynamoDB's 4 MB, and makes one request per 25 chatrooms.
ITEMS_PER_TRANSACTION = 25
WRITE_ROUNDS = 10  # a chunk whose conditions keep failing (heavy churn) fails its record, to be retried


def follow(event_name: str, old: TableItem | None, new: TableItem | None) -> None:
    """Do what one stream record asks for."""
    if isinstance(new, ChatmessageItem):
        if event_name == "INSERT" and not new.deleted:
            copy_message(new)
        elif just_deleted(old, new):
            purge_at = lifecycle.purge_time(new)
            delete_copies(new, purge_at)
            lifecycle.on_chatmessage_deleted(new, purge_at)
    elif event_name == "REMOVE" and isinstance(old, ChatmessageItem):
        if not erasure.in_progress(old.customer_id):  # an erasure deletes all the cascade would
            lifecycle.on_chatmessage_removed(old)  # DynamoDB TTL: retention or purge
    elif event_name == "REMOVE" and isinstance(old, ChatroommessageItem) and not old.deleted:
        if not erasure.in_progress(old.customer_id):
            lifecycle.on_copy_removed(old)  # its chatroom's unread count and preview let it go
    elif isinstance(new, ExportItem):
        exports.on_export_changed(old, new)  # the export's next slice
    elif isinstance(new, ErasureItem):
        erasure.on_erasure_changed(old, new)  # the erasure's next slice
    elif isinstance(new, CustomerSettingsItem):
        lifecycle.on_settings_changed(old, new)  # a retention change re-stamps older messages
    elif isinstance(new, ChatItem):
        if event_name == "INSERT" and len(new.participant_ids) > TRANSACTION_ROOMS:
            ensure_chatrooms(new)
        elif just_deleted(old, new):
            delete_chatrooms(new)


def just_deleted(old, new) -> bool:
    return old is not None and old.tm_delete == NOT_DELETED and new.deleted


def members_of(customer_id: str, chat_id: str) -> list[ChatMemberItem]:
    """The chat's members and their chatrooms: one Query (a chat written
    before member items is indexed first, once)."""
    found = membership.members(customer_id, chat_id)
    if not found:
        membership.ensure_indexed(load(ChatItem, customer_id, chat_id, "chat"))
        found = membership.members(customer_id, chat_id)
    return found


def copy_message(message: ChatmessageItem) -> None:
    """One query for the chat's members, then one transaction per 25
    chatrooms: each copy with its chatroom's read state (services/readstate.py),
    whose condition also keeps a deleted chatroom from getting a copy.
    Membership is the one at the send: a chatroom created after the message
    (a participant added before the stream got here) gets no copy of it."""
    rooms = [Delivery(m.chatroom_id, m.agent_id, None) for m in members_of(message.customer_id, message.chat_id)
             if m.tm_join <= message.tm_create]

    def add(tx, delivery: "Delivery") -> int:
        room = ChatroomItem.keyed(message.customer_id, delivery.chatroom_id)
        room.owner_id, room.customer_id, room.id = delivery.owner_id, message.customer_id, delivery.chatroom_id
        copy = ChatroommessageItem.copy_of(message, delivery.chatroom_id, delivery.owner_id)
        if delivery.chatroom_id == message.origin_chatroom_id:
            # written with the message by POST /chatroommessages: only its chatroom's state follows,
            # once (the mark is set with it), and not for a copy deleted since
            tx.update(ChatroommessageItem.keyed(message.customer_id, copy.id), [ChatroommessageItem.counted.set(True)],
                      condition=is_live() & ChatroommessageItem.counted.does_not_exist())
        else:
            # conditional, so that a replayed record never brings back a copy
            # deleted since (by its owner, or with its chatmessage), nor counts twice
            tx.save(copy, condition=TableItem.pk.does_not_exist())
        actions, condition = readstate.on_copy_added(room, copy, message, delivery.state)
        tx.update(room, actions, condition=condition)
        return 2

    def refused(delivery: "Delivery", reasons: list) -> "Delivery | None":
        if reasons[0] == CONDITION_FAILED:
            return None  # copied (or, the sender's own copy, counted) already: a replay; or deleted since
        try:
            room = load(ChatroomItem, message.customer_id, delivery.chatroom_id, "chatroom")
        except NotFound:
            return None
        if room.deleted:
            return None  # a deleted chatroom gets no copy
        return Delivery(delivery.chatroom_id, delivery.owner_id, readstate.RoomState.of(room))

    copied = write_each_once(rooms, add, f"copying chatmessage {message.id}", refused)
    metrics.count("CopiesWritten", copied)
    if copied:  # a replayed record writes none: no lag to speak of
        metrics.measure("FanoutLag", lag_milliseconds(message.tm_create))


def lag_milliseconds(tm_create: str) -> float:
    """From a message's tm_create to now (its copies just written)."""
    created = datetime.strptime(tm_create, TIME_FORMAT).replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - created).total_seconds() * 1000)


@dataclass(frozen=True)
class Delivery:
    """One chatroom a copy goes to, and (after a refused first try) the read
    state its update is computed from."""

    chatroom_id: str
    owner_id: str
    state: object


def write_each_once(items: list, add: Callable[[Any, Any], int], what: str,
                    refused: Callable[[Any, list], Any] | None = None) -> int:
    """Conditional writes, 25 items to a transaction: one request per 25.
    `add(tx, item)` adds an item's actions and says how many. An item whose
    condition fails is passed to `refused(item, its reasons)`, which returns
    the item to try again (recomputed) or None to leave it out (done already,
    or not wanted); the rest is written. Transient failures are retried by
    storage.operations. Returns how many items were written."""
    written = 0
    for start in range(0, len(items), ITEMS_PER_TRANSACTION):
        chunk = items[start:start + ITEMS_PER_TRANSACTION]
        for _ in range(WRITE_ROUNDS):
            if not chunk:
                break
            counts: list[int] = []
            try:
                transact(lambda tx, chunk=chunk, counts=counts: counts.extend(add(tx, item) or 1 for item in chunk),
                         what)
                written += len(chunk)
                break
            except ConditionFailed as failed:
                counts = counts[-len(chunk):]
                if len(failed.reasons) != sum(counts):
                    raise RuntimeError(f"{what}: a cancelled transaction without one reason per action") from None
                again, position = [], 0
                for item, count in zip(chunk, counts, strict=True):
                    reasons = failed.reasons[position:position + count]
                    position += count
                    if CONDITION_FAILED not in reasons:
                        again.append(item)
                    elif refused is not None and (retry := refused(item, reasons)) is not None:
                        again.append(retry)
                chunk = again
        else:
            raise RuntimeError(f"{what}: still refused after {WRITE_ROUNDS} rounds")
    return written


def delete_copies(message: ChatmessageItem, purge_at: int | None = None) -> None:
    """One query for the live copies (their keys), one BatchGetItem per 100 of
    their chatrooms, then one transaction per 25 copies with their chatrooms'
    read state. A chatroom whose newest copy goes gets the chat's previous
    message as its preview, checked live in the same transaction (else the
    chatroom's own newest, one Query)."""
    copies = attempt(lambda: paging.live_related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                     f"reading the copies of chatmessage {message.id}")
    for copy in copies:
        copy.chatroom_id = copy.gsi2sk  # the relation index's sort key: the copies' chatroom
    rooms = views.fetch({(ChatroomItem.key(message.customer_id, copy.chatroom_id), META) for copy in copies},
                        f"reading the chatrooms of chatmessage {message.id}")
    previous = _previous_message(message) if any(
        room.last_copy_id for room in rooms.values()) else None

    def plan(copy, room: ChatroomItem | None, fallback: bool) -> "Removal":
        if room is None or room.deleted:
            return Removal(copy, None, None, None)
        state = readstate.RoomState.of(room)
        replacement = check = None
        if state.newest is not None and state.newest.copy_id == copy.id:
            if previous is not None and not fallback and previous.tm_create >= room.tm_create:
                replacement = readstate.Newest(ChatroommessageItem.derived_id(previous.id, room.id), previous.id,
                                               previous.tm_create)
            else:
                replacement = readstate.newest_other_copy(room, copy.id)
            check = replacement
        return Removal(copy, room, readstate.on_copy_deleted(room, copy, message, state, replacement), check)

    deletion = soft_delete_actions(message.tm_delete)
    if purge_at is not None:  # the customer's purge of deleted content (services/lifecycle.py)
        deletion.append(ChatroommessageItem.expires_at.set(purge_at))

    def add(tx, removal: "Removal") -> int:
        tx.update(removal.copy, deletion, condition=is_live())
        if removal.room is None:
            return 1
        tx.update(removal.room, removal.room_update[0], condition=removal.room_update[1])
        if removal.check is None:
            return 2
        tx.condition_check(ChatroommessageItem, ChatroommessageItem.key(message.customer_id, removal.check.copy_id),
                           META, condition=is_live())
        return 3

    def refused(removal: "Removal", reasons: list) -> "Removal | None":
        if reasons[0] == CONDITION_FAILED:
            return None  # deleted already
        try:
            room = load(ChatroomItem, message.customer_id, removal.copy.chatroom_id, "chatroom")
        except NotFound:
            room = None
        # the chatroom changed meanwhile, or the copy before this one is gone too: plan again from what is there
        return plan(removal.copy, room, fallback=len(reasons) == 3 and reasons[2] == CONDITION_FAILED)

    removals = [plan(copy, rooms.get(ChatroomItem.key(message.customer_id, copy.chatroom_id)), False)
                for copy in copies]
    write_each_once(removals, add, f"deleting the copies of chatmessage {message.id}", refused)


@dataclass(frozen=True)
class Removal:
    copy: Any
    room: ChatroomItem | None
    room_update: tuple | None
    check: Any


def _previous_message(message: ChatmessageItem) -> ChatmessageItem | None:
    """The chat's newest live message before `message`: one Query."""
    found = attempt(lambda: list(ChatmessageItem.list_index.query(
        ChatmessageItem.list_key(message.customer_id, message.chat_id),
        range_key_condition=ChatmessageItem.gsi1sk < list_sort_key(message.tm_create, message.id),
        scan_index_forward=False, limit=1, page_size=1)), f"reading chat {message.chat_id}")
    return found[0] if found else None


def delete_chatrooms(chat: ChatItem) -> None:
    """One query for the members' chatrooms, then one write per 25."""
    def delete(tx, member: ChatMemberItem) -> int:
        tx.update(ChatroomItem.keyed(chat.customer_id, member.chatroom_id), soft_delete_actions(chat.tm_delete)
                  + ChatroomItem.registering_deleted(chat.customer_id, member.chatroom_id), condition=is_live())
        return 1

    write_each_once(members_of(chat.customer_id, chat.id), delete, f"deleting the chatrooms of chat {chat.id}")


def ensure_chatrooms(chat: ChatItem) -> None:
    """For chats written in more than one request: create the chatrooms and
    member items a create cut short left out. The create may still be writing
    them, and (stream batches run concurrently) its first messages may be
    fanned out and participants removed meanwhile: so only what is missing is
    written, each item only if absent (a chatroom's read state is never reset),
    and only while the chat's membership is the one read (a participant removed
    meanwhile never gets a member item back). The common case, a create
    that wrote everything, costs the one Query. A create still running is let
    finish first (_wait_for_the_create): writing beside it would only double
    its work."""
    if not _missing_members(chat):
        return
    _wait_for_the_create(chat)
    for _ in range(WRITE_ROUNDS):
        missing = _missing_members(chat)  # what the create wrote meanwhile is not
        if not missing:
            return
        try:
            current = load(ChatItem, chat.customer_id, chat.id, "chat")
        except NotFound:
            return
        if current.deleted:
            return
        missing = [p for p in missing if p in set(current.participant_ids)]
        # ids as the create made them: derived from the chat's version at its creation
        rooms = [ChatroomItem.for_participant(chat, p, chat.tm_create) for p in missing]
        if all(_write_if_absent(current, rooms[start:start + MISSING_PER_TRANSACTION])
               for start in range(0, len(rooms), MISSING_PER_TRANSACTION)):
            return
    raise RuntimeError(f"the chatrooms of chat {chat.id}: its membership kept changing")


def _missing_members(chat: ChatItem) -> list[str]:
    """The chat's participants without a member item: one Query."""
    present = {m.agent_id for m in membership.members(chat.customer_id, chat.id)}
    return [p for p in chat.participant_ids if p not in present]


# a check of the chat, and a chatroom and a member item per participant: 49 actions
MISSING_PER_TRANSACTION = 24
# A create is over within the API function's timeout (29 s): a younger chat
# whose last member item is missing is taken to be still being written.
CREATE_GRACE_SECONDS = 30.0
CREATE_POLL_SECONDS = 0.25  # the first wait; each next one twice as long, up to CREATE_POLL_MAX_SECONDS
CREATE_POLL_MAX_SECONDS = 2.0
_sleep = time.sleep


def _wait_for_the_create(chat: ChatItem) -> None:
    """Until the create's last member item is there (one GetItem after a
    quarter second, then after ever longer waits: a create that died costs
    about 17 reads, not one every quarter second), or the chat is
    CREATE_GRACE_SECONDS old."""
    last = write_order(chat.owner_id, chat.participant_ids)[-1]
    created = datetime.strptime(chat.tm_create, TIME_FORMAT).replace(tzinfo=UTC)
    wait = CREATE_POLL_SECONDS
    while membership.member(chat.customer_id, chat.id, last) is None:
        left = CREATE_GRACE_SECONDS - (datetime.now(UTC) - created).total_seconds()
        if left <= 0:
            return
        _sleep(min(wait, left))
        wait = min(wait * 2, CREATE_POLL_MAX_SECONDS)


def _write_if_absent(chat: ChatItem, rooms: list[ChatroomItem]) -> bool:
    """Each chatroom and member item if absent, while the chat is still at the
    version read; False if it is not (read again)."""
    items = [item for room in rooms for item in (room, ChatMemberItem.of(room, chat))]
    for _ in range(WRITE_ROUNDS):
        if not items:
            return True

        def write(tx, items=items) -> None:
            tx.condition_check(ChatItem, chat.pk, META, condition=is_live() & (ChatItem.version == chat.version))
            for item in items:
                tx.save(item, condition=TableItem.pk.does_not_exist())

        try:
            transact(write, f"creating the chatrooms of chat {chat.id}")
            return True
        except ConditionFailed as failed:
            if len(failed.reasons) != len(items) + 1:
                raise RuntimeError(f"chat {chat.id}: a cancelled transaction without one reason per action") from None
            if failed.reasons[0] == CONDITION_FAILED:
                return False
            items = [item for item, reason in zip(items, failed.reasons[1:], strict=True) if reason != CONDITION_FAILED]
    raise RuntimeError(f"the chatrooms of chat {chat.id}: still refused after {WRITE_ROUNDS} rounds")

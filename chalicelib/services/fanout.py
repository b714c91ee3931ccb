"""The work that follows a write, as the table's stream reports it:

- a new chatmessage is copied into every live chatroom of its chat;
- a deleted chatmessage takes its copies with it;
- a deleted chat takes its chatrooms with it;
- a chat too large for one transaction gets any chatroom it is missing.

Every action is idempotent (derived ids, conditional writes), so a replayed
record changes nothing. A membership change needs nothing here: chatrooms
show their chat's participant list, stored once in the chat.
"""

from collections.abc import Callable
from typing import Any

from chalicelib.clock import NOT_DELETED
from chalicelib.services import membership
from chalicelib.services.chats import TRANSACTION_ROOMS
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    TableItem,
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


def follow(event_name: str, old: TableItem | None, new: TableItem | None) -> None:
    """Do what one stream record asks for."""
    if isinstance(new, ChatmessageItem):
        if event_name == "INSERT" and not new.deleted:
            copy_message(new)
        elif just_deleted(old, new):
            delete_copies(new)
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
    """One query for the chat's members, then one write per 25 copies, each
    with a check that its chatroom is live (a deleted chatroom gets no copy).
    Membership is the one at the send: a chatroom created after the message
    (a participant added before the stream got here) gets no copy of it."""
    rooms = [m for m in members_of(message.customer_id, message.chat_id)
             if m.chatroom_id != message.origin_chatroom_id and m.tm_join <= message.tm_create]

    def add(tx, room: ChatMemberItem) -> None:
        # Conditional, so that a replayed record never brings back a copy
        # deleted since (by its owner, or with its chatmessage).
        tx.save(ChatroommessageItem.copy_of(message, room.chatroom_id, room.agent_id),
                condition=TableItem.pk.does_not_exist())
        tx.condition_check(ChatroomItem, ChatroomItem.key(message.customer_id, room.chatroom_id), META,
                           condition=is_live())

    write_each_once(rooms, add, f"copying chatmessage {message.id}", actions_per_item=2)


def write_each_once(items: list, add: Callable[[Any, Any], None], what: str, actions_per_item: int = 1) -> None:
    """Conditional writes, 25 items to a transaction: one request per 25. An
    item whose condition fails (done already, or not wanted) is left out and
    the rest written; transient failures are retried (storage.operations)."""
    for start in range(0, len(items), ITEMS_PER_TRANSACTION):
        chunk = items[start:start + ITEMS_PER_TRANSACTION]
        while chunk:
            try:
                transact(lambda tx, chunk=chunk: [add(tx, item) for item in chunk], what)
                break
            except ConditionFailed as failed:
                if len(failed.reasons) != len(chunk) * actions_per_item:
                    raise RuntimeError(f"{what}: a cancelled transaction without one reason per action") from None
                chunk = [item for index, item in enumerate(chunk)
                         if CONDITION_FAILED not in failed.reasons[index * actions_per_item:
                                                                   (index + 1) * actions_per_item]]


def delete_copies(message: ChatmessageItem) -> None:
    """One query for the live copies (their keys), then one write per 25."""
    copies = attempt(lambda: paging.related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                     f"reading the copies of chatmessage {message.id}")
    actions = soft_delete_actions(message.tm_delete)
    write_each_once(copies, lambda tx, copy: tx.update(copy, actions, condition=is_live()),
                    f"deleting the copies of chatmessage {message.id}")


def delete_chatrooms(chat: ChatItem) -> None:
    """One query for the members' chatrooms, then one write per 25."""
    rooms = [ChatroomItem.keyed(chat.customer_id, m.chatroom_id) for m in members_of(chat.customer_id, chat.id)]
    actions = soft_delete_actions(chat.tm_delete)
    write_each_once(rooms, lambda tx, room: tx.update(room, actions, condition=is_live()),
                    f"deleting the chatrooms of chat {chat.id}")


def ensure_chatrooms(chat: ChatItem) -> None:
    """For chats written in more than one request: create what is missing."""
    present = {m.agent_id for m in membership.members(chat.customer_id, chat.id)}
    wanted = {room.pk: room for room in (ChatroomItem.for_participant(chat, p, chat.tm_create)
                                          for p in chat.participant_ids if p not in present)}
    if not wanted:
        return
    # A chatroom its owner already deleted exists, deleted: leave it so.
    keys = [(pk, META) for pk in wanted]
    existing = set()
    for start in range(0, len(keys), 100):
        found = attempt(lambda start=start: list(ChatroomItem.batch_get(keys[start:start + 100])),
                        f"reading the chatrooms of chat {chat.id}")
        existing |= {room.pk for room in found}

    def write() -> None:
        with ChatroomItem.batch_write() as batch:
            for pk, room in wanted.items():
                if pk not in existing:
                    batch.save(room)
                batch.save(ChatMemberItem.of(room))

    attempt(write, f"creating the chatrooms of chat {chat.id}")

"""The work that follows a write, as the table's stream reports it:

- a new chatmessage is copied into every live chatroom of its chat;
- a deleted chatmessage takes its copies with it;
- a deleted chat takes its chatrooms with it (and a normal chat its pair guard);
- a membership change reaches the participant list of every chatroom;
- a chat too large for one transaction gets any chatroom it is missing.

Every action is idempotent (derived ids, conditional writes, version
conditions), so a replayed record changes nothing.
"""

from collections.abc import Callable
from typing import Any

from chalicelib.clock import NOT_DELETED
from chalicelib.services.chats import TRANSACTION_ROOMS, release_pair_guard
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    PairGuardItem,
    TableItem,
)
from chalicelib.storage.operations import (
    CONDITION_FAILED,
    ConditionFailed,
    attempt,
    is_live,
    soft_delete_actions,
    transact,
)

# 25 keeps a transaction of the largest copies (10,000 characters, 10 medias)
# under DynamoDB's 4 MB, and one request per 25 items.
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
        elif isinstance(old, ChatItem) and old.version != new.version and not new.deleted:
            sync_chatrooms(new)


def just_deleted(old, new) -> bool:
    return old is not None and old.tm_delete == NOT_DELETED and new.deleted


def _live_chatrooms(customer_id: str, chat_id: str) -> list[ChatroomItem]:
    return attempt(lambda: paging.related(ChatroomItem.by_chat_key(customer_id, chat_id)),
                   f"reading the chatrooms of chat {chat_id}")


def copy_message(message: ChatmessageItem) -> None:
    """One query for the chat's live chatrooms, then one write per 25 copies.
    Membership is the one at the send: a chatroom created after the message
    (a participant added before the stream got here) gets no copy of it."""
    rooms = [r for r in _live_chatrooms(message.customer_id, message.chat_id)
             if r.id != message.origin_chatroom_id and r.tm_create <= message.tm_create]
    copies = [ChatroommessageItem.copy_of(message, room) for room in rooms]
    # Conditional, so that a replayed record never brings back a copy
    # deleted since (by its owner, or with its chatmessage).
    write_each_once(copies, lambda tx, copy: tx.save(copy, condition=TableItem.pk.does_not_exist()),
                    f"copying chatmessage {message.id}")


def write_each_once(items: list, add: Callable[[Any, Any], None], what: str) -> None:
    """Conditional writes, 25 to a transaction: one request per 25 items. An
    item whose condition fails (done already) is left out and the rest
    written; transient failures are retried (storage.operations)."""
    for start in range(0, len(items), ITEMS_PER_TRANSACTION):
        chunk = items[start:start + ITEMS_PER_TRANSACTION]
        while chunk:
            try:
                transact(lambda tx, chunk=chunk: [add(tx, item) for item in chunk], what)
                break
            except ConditionFailed as failed:
                if len(failed.reasons) != len(chunk):
                    raise RuntimeError(f"{what}: a cancelled transaction without one reason per item") from None
                chunk = [item for item, reason in zip(chunk, failed.reasons, strict=True)
                         if reason != CONDITION_FAILED]


def delete_copies(message: ChatmessageItem) -> None:
    """One query for the live copies (their keys), then one write per 25."""
    copies = attempt(lambda: paging.related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                     f"reading the copies of chatmessage {message.id}")
    actions = soft_delete_actions(message.tm_delete)
    write_each_once(copies, lambda tx, copy: tx.update(copy, actions, condition=is_live()),
                    f"deleting the copies of chatmessage {message.id}")


def delete_chatrooms(chat: ChatItem) -> None:
    """One query for the live chatrooms, then one write per 25; a normal
    chat's pair guard is released, so the two may start a new one."""
    rooms = _live_chatrooms(chat.customer_id, chat.id)
    actions = soft_delete_actions(chat.tm_delete)
    write_each_once(rooms, lambda tx, room: tx.update(room, actions, condition=is_live()),
                    f"deleting the chatrooms of chat {chat.id}")
    if chat.type == "normal":
        release_pair_guard(chat.customer_id, PairGuardItem.key(chat.customer_id, *chat.participant_ids), chat.id)


def sync_chatrooms(chat: ChatItem) -> None:
    """Chatrooms follow their chat's participants and type; each records the
    chat version it mirrors, so an older record never overwrites a newer one."""
    stale = [room for room in _live_chatrooms(chat.customer_id, chat.id) if room.chat_version < chat.version]
    actions = [
        ChatroomItem.participant_ids.set(chat.participant_ids),
        ChatroomItem.type.set(chat.type),
        ChatroomItem.chat_version.set(chat.version),
        ChatroomItem.tm_update.set(chat.tm_update),
    ]
    condition = is_live() & (ChatroomItem.chat_version < chat.version)
    write_each_once(stale, lambda tx, room: tx.update(room, actions, condition=condition),
                    f"syncing the chatrooms of chat {chat.id}")


def ensure_chatrooms(chat: ChatItem) -> None:
    """For chats written in more than one request: create what is missing."""
    present = {room.owner_id for room in _live_chatrooms(chat.customer_id, chat.id)}
    wanted = {room.pk: room for room in (ChatroomItem.for_participant(chat, p, chat.tm_create)
                                          for p in chat.participant_ids if p not in present)}
    # A chatroom its owner already deleted exists, deleted: leave it so.
    existing = attempt(lambda: list(ChatroomItem.batch_get([(pk, META) for pk in wanted])),
                       f"reading the chatrooms of chat {chat.id}")
    for room in existing:
        wanted.pop(room.pk, None)

    def write() -> None:
        with ChatroomItem.batch_write() as batch:
            for room in wanted.values():
                batch.save(room)

    attempt(write, f"creating the chatrooms of chat {chat.id}")

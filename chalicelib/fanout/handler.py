"""DynamoDB stream records → the work that follows a write.

- a new chatmessage is copied into every live chatroom of its chat;
- a deleted chatmessage takes its copies with it;
- a deleted chat takes its chatrooms with it;
- a membership change reaches the participant list of every chatroom;
- a chat too large for one transaction gets any chatroom it is missing.

Every action is idempotent (derived ids, conditional writes, version
conditions), so a replayed record changes nothing. Failures are reported per record, as Lambda's
partial batch response wants them.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.clock import NOT_DELETED
from chalicelib.realtime.delivery import Delivery
from chalicelib.realtime.events import derive
from chalicelib.services import paging
from chalicelib.services.chats import TRANSACTION_ROOMS, new_chatroom
from chalicelib.services.messages import new_copy
from chalicelib.services.records import (
    TRANSIENT_ERRORS,
    is_condition_failure,
    is_live,
    soft_delete_actions,
    transaction,
    with_retries,
)
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    TableItem,
)

log = logging.getLogger(__name__)
COPIES_PER_TRANSACTION = 25
TRANSACTION_ATTEMPTS = 5


@dataclass
class StreamRecord:
    """The parts of a stream record we use (Lambda's or our local poller's)."""

    event_name: str  # INSERT | MODIFY | REMOVE
    sequence_number: str
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> "StreamRecord":
        data = record["dynamodb"]
        return cls(record["eventName"], data["SequenceNumber"], data.get("NewImage"), data.get("OldImage"))


def handle_records(records: Iterable[StreamRecord]) -> dict[str, list[dict[str, str]]]:
    """Process each record, then deliver the events they mean; name exactly
    the records that failed (their work is idempotent, so Lambda may retry)."""
    delivery = Delivery.from_environment()
    failed: list[str] = []
    pending = []
    for record in records:
        try:
            old, new = handle_record(record)
            if delivery.enabled:
                event = derive(record.event_name, old, new, delivery.participants_of)
                if event is not None:
                    pending.append((record.sequence_number, event))
        except Exception:
            log.exception("stream record %s failed", record.sequence_number)
            failed.append(record.sequence_number)
    failed += delivery.deliver(pending)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


def _item(image: dict[str, Any] | None) -> TableItem | None:
    if not image or "kind" not in image:
        return None
    return TableItem.from_raw_data(image)


def handle_record(record: StreamRecord) -> tuple[TableItem | None, TableItem | None]:
    """Do what the record asks for; return its (old, new) items."""
    new, old = _item(record.new_image), _item(record.old_image)
    if isinstance(new, ChatmessageItem):
        if record.event_name == "INSERT" and not new.deleted:
            copy_message(new)
        elif _just_deleted(old, new):
            delete_copies(new)
    elif isinstance(new, ChatItem):
        if record.event_name == "INSERT" and len(new.participant_ids) > TRANSACTION_ROOMS:
            ensure_chatrooms(new)
        elif _just_deleted(old, new):
            delete_chatrooms(new)
        elif isinstance(old, ChatItem) and old.version != new.version and not new.deleted:
            sync_chatrooms(new)
    return old, new


def _just_deleted(old, new) -> bool:
    return old is not None and old.tm_delete == NOT_DELETED and new.deleted


def _live_chatrooms(chat_customer: str, chat_id: str) -> list[ChatroomItem]:
    return paging.related(ChatroomItem.by_chat_key(chat_customer, chat_id))


def copy_message(message: ChatmessageItem) -> None:
    """One query for the chat's live chatrooms, then one write per 25 copies.
    Membership is the one at the send: a chatroom created after the message
    (a participant added before the stream got here) gets no copy of it."""
    rooms = [r for r in _live_chatrooms(message.customer_id, message.chat_id)
             if r.id != message.origin_chatroom_id and r.tm_create <= message.tm_create]
    put_if_absent([new_copy(message, room) for room in rooms])


def put_if_absent(items: list[TableItem]) -> None:
    """Write the items that do not exist yet.

    Conditional, so that a replayed record never brings back a copy deleted
    since (by its owner, or with its chatmessage).
    """
    _write_once_each(items, lambda tx, item: tx.save(item, condition=TableItem.pk.does_not_exist()))


def _write_once_each(items: list[TableItem], add: Callable[[Any, TableItem], None]) -> None:
    """Conditional writes, 25 to a transaction: one request per 25 items. An
    item whose condition fails is left out and the rest retried (a conflict
    with a concurrent write cancels a whole transaction). 25 keeps a
    transaction of the largest copies (10,000 characters, 10 medias) under
    DynamoDB's 4 MB."""
    for start in range(0, len(items), COPIES_PER_TRANSACTION):
        chunk = items[start:start + COPIES_PER_TRANSACTION]
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with transaction() as tx:
                    for item in chunk:
                        add(tx, item)
                break
            except TransactWriteError as error:
                reasons = error.cancellation_reasons or []
                if len(reasons) == len(chunk):
                    chunk = [item for item, reason in zip(chunk, reasons, strict=True)
                             if not (reason and reason.code == "ConditionalCheckFailed")]
                    if not chunk:
                        break
                elif error.cause_response_code not in TRANSIENT_ERRORS:
                    raise
                time.sleep(min(0.05 * 2 ** attempt, 1.0))  # throttled or in conflict: back off
        else:
            raise RuntimeError(f"items not written after {TRANSACTION_ATTEMPTS} attempts")


def delete_copies(message: ChatmessageItem) -> None:
    """One query for the live copies (their keys), then one write per 25."""
    copies = paging.related(ChatroommessageItem.by_message_key(message.customer_id, message.id))
    actions = soft_delete_actions(message.tm_delete)
    _write_once_each(copies, lambda tx, copy: tx.update(copy, actions, condition=is_live()))


def delete_chatrooms(chat: ChatItem) -> None:
    for room in _live_chatrooms(chat.customer_id, chat.id):
        try:
            with_retries(lambda room=room: room.update(soft_delete_actions(chat.tm_delete), condition=is_live()))
        except UpdateError as error:
            if not is_condition_failure(error):
                raise  # the record fails and is retried
            # already deleted


def sync_chatrooms(chat: ChatItem) -> None:
    """Chatrooms follow their chat's participants and type; each records the
    chat version it mirrors, so an older record never overwrites a newer one."""
    for room in _live_chatrooms(chat.customer_id, chat.id):
        if room.chat_version >= chat.version:
            continue
        try:
            with_retries(lambda room=room: room.update(
                [
                    ChatroomItem.participant_ids.set(chat.participant_ids),
                    ChatroomItem.type.set(chat.type),
                    ChatroomItem.chat_version.set(chat.version),
                    ChatroomItem.tm_update.set(chat.tm_update),
                ],
                condition=is_live() & (ChatroomItem.chat_version < chat.version),
            ))
        except UpdateError as error:
            if not is_condition_failure(error):
                raise  # the record fails and is retried
            # deleted meanwhile, or a newer version got there first


def ensure_chatrooms(chat: ChatItem) -> None:
    """For chats written in more than one request: create what is missing."""
    present = {room.owner_id for room in _live_chatrooms(chat.customer_id, chat.id)}
    wanted = {new_chatroom(chat, p, chat.tm_create).pk: p for p in chat.participant_ids if p not in present}
    # A chatroom its owner already deleted exists, deleted: leave it so.
    for existing in ChatroomItem.batch_get([(pk, META) for pk in wanted]):
        wanted.pop(existing.pk, None)
    with ChatroomItem.batch_write() as batch:
        for participant in wanted.values():
            batch.save(new_chatroom(chat, participant, chat.tm_create))

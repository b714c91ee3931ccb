"""Chats: create (with one chatroom per participant), read, change, delete,
and membership. Cascades to other chatrooms run in the stream handler.

Writes are single conditional requests where the contract allows: the
condition carries the rules (live, owned by the caller), and the item is read
only when it fails, to say why (404, 403, ...)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.schemas.limits import PARTICIPANTS_MAX
from chalicelib.services import access, membership
from chalicelib.storage import paging
from chalicelib.storage.models import META, ChatItem, ChatMemberItem, ChatroomItem, ChatStatusItem, PairGuardItem
from chalicelib.storage.operations import (
    CONDITION_FAILED,
    ONE_PARTITION_ITEMS_PER_SECOND,
    ConditionFailed,
    attempt,
    is_live,
    load,
    load_live,
    put_all,
    soft_delete_actions,
    transact,
    update,
)

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import ChatCreate, ChatUpdate, ParticipantAdd

# DynamoDB takes 100 actions in one transaction: the chat, its status and the
# pair guard leave room for this many chatrooms with their member items.
# Larger groups get the rest in batches right after, re-checked by the stream.
TRANSACTION_ROOMS = 48
log = logging.getLogger(__name__)
MEMBERSHIP_RETRIES = 5
CREATE_ATTEMPTS = 3


def chat_type_for(count: int) -> str:
    return "normal" if count == 2 else "group"


# ---- create -----------------------------------------------------------------

def create_chat(principal: Principal, body: ChatCreate) -> ChatItem:
    participants = body.participant_ids
    if principal.is_agent and not principal.is_privileged and principal.agent_id not in participants:
        raise Forbidden("participant_ids: an agent may only create chats that include themselves")
    count = len(participants)
    if body.type == "normal" and count != 2:
        raise BadRequest(f"participant_ids: a normal chat has exactly 2 distinct participants, got {count}")
    if body.type == "group" and count < 2:
        raise BadRequest(f"participant_ids: a group chat has 2 to {PARTICIPANTS_MAX} participants, got {count}")
    if body.owner_id not in participants:
        raise BadRequest("owner_id: must be one of participant_ids")
    chat, _ = create_chat_with_rooms(
        principal.customer_id, body.type, body.owner_id, participants, body.name, body.detail
    )
    return chat


def create_chat_with_rooms(customer_id: str, chat_type: str, owner_id: str, participants: list[str],
                           name: str, detail: str) -> tuple[ChatItem, list[ChatroomItem]]:
    """Write the chat, its chatrooms and (for `normal`) the pair guard together."""
    tm = now()
    chat = ChatItem.new(customer_id, chat_type, owner_id, participants, name, detail, tm)
    rooms = [ChatroomItem.for_participant(chat, p, tm) for p in write_order(owner_id, participants)]
    status, *members = membership.index_items(chat, rooms)

    def write(tx) -> None:
        tx.save(chat, condition=ChatItem.pk.does_not_exist())
        tx.save(status)
        if chat_type == "normal":
            tx.save(PairGuardItem.for_chat(chat), condition=PairGuardItem.pk.does_not_exist())
        for item in rooms[:TRANSACTION_ROOMS] + members[:TRANSACTION_ROOMS]:
            tx.save(item)

    for _ in range(CREATE_ATTEMPTS):
        try:
            transact(write, "creating the chat")
            break
        except ConditionFailed:
            # Only the pair guard's condition can fail (the chat's id is new).
            _conflict_or_release_guard(customer_id, *participants)
    else:
        raise Conflict("participant_ids: a chat between these two agents is being created or deleted right now; retry")
    if len(rooms) > TRANSACTION_ROOMS:
        _write_the_rest(chat, rooms[TRANSACTION_ROOMS:], members[TRANSACTION_ROOMS:])
    return chat, rooms


# The member items share the chat's partition: a 1,000-agent group's are paced.
MEMBER_WRITES_PER_SECOND = ONE_PARTITION_ITEMS_PER_SECOND


def _write_the_rest(chat: ChatItem, rooms: list[ChatroomItem], members: list) -> None:
    """After the transaction: the other chatrooms (each its own partition) at
    full speed, then their member items, paced (in the same batches: as few
    requests as 25 items a batch allow), the last one last (the stream
    handler waits for it). The chat exists from the transaction on, so a
    failure here is not the create's: the stream handler writes what is
    missing (fanout.ensure_chatrooms) and the create answers 200."""
    try:
        put_all(ChatroomItem, rooms + members, "creating the chat's chatrooms",
                paced=(len(rooms), MEMBER_WRITES_PER_SECOND))
    except Exception:  # noqa: BLE001 - whatever it was, the chat is there and the stream finishes it
        log.exception("chat %s: writing its other chatrooms failed; the stream handler completes them", chat.id)


def write_order(owner_id: str, participants: list[str]) -> list[str]:
    """The order a create writes chatrooms and member items in: the owner's
    first (always inside the transaction); the last member item is the last
    item written (the stream handler waits for it, fanout.ensure_chatrooms)."""
    return [owner_id] + [p for p in participants if p != owner_id]


def _conflict_or_release_guard(customer_id: str, first: str, second: str) -> None:
    """A live normal chat holds the pair: 409 naming it. A guard left by a chat
    deleted moments ago (the stream removes it) is released here instead."""
    key = PairGuardItem.key(customer_id, first, second)
    try:
        guard = attempt(lambda: PairGuardItem.get(key, META, consistent_read=True), "reading the pair guard")
    except DoesNotExist:
        return  # released meanwhile: try again
    try:
        holder = load(ChatItem, customer_id, guard.chat_id, "chat")
    except NotFound:
        holder = None
    if holder is not None and not holder.deleted:
        raise Conflict(f"participant_ids: a normal chat between these two agents already exists: {holder.id}")
    release_pair_guard(customer_id, key, guard.chat_id)


def release_pair_guard(customer_id: str, key: str, chat_id: str) -> None:
    """Delete the guard if it still names this chat (a newer chat may hold it)."""
    guard = PairGuardItem(key, META)
    try:
        attempt(lambda: guard.delete(condition=PairGuardItem.chat_id == chat_id), "releasing the pair guard")
    except ConditionFailed:
        pass  # gone already, or another chat's by now


# ---- read ---------------------------------------------------------------------

def get_chat(principal: Principal, chat_id: str) -> ChatItem:
    chat = load(ChatItem, principal.customer_id, chat_id, "chat")
    access.require_participant(principal, chat)
    return chat


def list_chats(principal: Principal, page: paging.PageRequest) -> paging.Page:
    access.require_privileged(principal, "listing every chat of the customer needs an admin or manager; "
                                         "agents list their own chatrooms with GET /v1.0/chatrooms")
    return paging.list_page(ChatItem.list_key(principal.customer_id), page)


# ---- change -------------------------------------------------------------------

def _owned_live(principal: Principal):
    """The condition of a change: the chat is live and, for plain agents, theirs."""
    condition = is_live()
    if not principal.is_privileged:
        condition &= ChatItem.owner_id == principal.agent_id
    return condition


def _explain_refusal(principal: Principal, chat_id: str) -> ChatItem:
    """After a failed condition: 404 (unknown or deleted), 403 (not the owner),
    or the chat as it is now when it holds after all (changed meanwhile)."""
    chat = load_live(ChatItem, principal.customer_id, chat_id, "chat")
    access.require_chat_owner(principal, chat)
    return chat


def update_chat(principal: Principal, chat_id: str, body: ChatUpdate) -> ChatItem:
    actions = [ChatItem.tm_update.set(now())]
    if body.name is not None:
        actions.append(ChatItem.name.set(body.name))
    if body.detail is not None:
        actions.append(ChatItem.detail.set(body.detail))
    for _ in range(MEMBERSHIP_RETRIES):
        try:
            return update(ChatItem.keyed(principal.customer_id, chat_id), actions, _owned_live(principal),
                          "changing the chat")
        except ConditionFailed:
            _explain_refusal(principal, chat_id)  # raises, unless the owner changed back meanwhile
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def delete_chat(principal: Principal, chat_id: str) -> ChatItem:
    """The chat, its status and (normal chats) the pair guard change in one
    transaction, so no send gets through after the answer; the stream handler
    then deletes the chatrooms."""
    for _ in range(MEMBERSHIP_RETRIES):
        chat = load(ChatItem, principal.customer_id, chat_id, "chat")
        access.require_chat_owner(principal, chat)
        if chat.deleted:
            return chat  # deleting twice answers the same deleted chat
        tm = now()
        deleted = _changed(chat, tm_delete=tm, tm_update=tm, gsi1pk=None, gsi1sk=None, version=chat.version)

        def write(tx, chat=chat, deleted=deleted) -> None:
            tx.update(chat, soft_delete_actions(deleted.tm_delete), condition=is_live() & _unchanged(chat))
            tx.save(ChatStatusItem.of(deleted))
            if chat.type == "normal":  # the guard is this live chat's: the pair may start a new one
                tx.delete(PairGuardItem.for_chat(chat))

        try:
            transact(write, "deleting the chat")
        except ConditionFailed:
            continue  # changed under us: read again
        return deleted
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def change_owner(principal: Principal, chat_id: str, new_owner: str, field: str = "owner_id") -> ChatItem:
    """One update, conditioned on the new owner being a participant then."""
    actions = [ChatItem.owner_id.set(new_owner), ChatItem.tm_update.set(now())]
    condition = _owned_live(principal) & ChatItem.participant_ids.contains(new_owner)
    for _ in range(MEMBERSHIP_RETRIES):
        try:
            return update(ChatItem.keyed(principal.customer_id, chat_id), actions, condition, "changing the owner")
        except ConditionFailed:
            chat = _explain_refusal(principal, chat_id)
            if new_owner not in chat.participant_ids:
                raise BadRequest(f"{field}: must be one of the chat's participant_ids") from None
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def add_participant(principal: Principal, chat_id: str, body: ParticipantAdd) -> ChatItem:
    """Writes the chat, the newcomer's chatroom and member item: the other
    chatrooms show the new list from the chat, unchanged themselves."""
    new = body.participant_id
    for _ in range(MEMBERSHIP_RETRIES):
        chat = membership.ensure_indexed(_explain_refusal(principal, chat_id))
        if new in chat.participant_ids:
            raise Conflict(f"participant_id: {new} is already a participant of chat {chat.id}")
        if len(chat.participant_ids) >= PARTICIPANTS_MAX:
            raise BadRequest(f"participant_id: chat {chat.id} already has the maximum of {PARTICIPANTS_MAX}")
        participants = sorted(chat.participant_ids + [new])
        tm = now()
        updated = _changed(chat, participant_ids=participants, type=chat_type_for(len(participants)), tm_update=tm)
        room = ChatroomItem.for_participant(updated, new, tm)

        def write(tx, chat=chat, updated=updated, room=room) -> None:
            tx.update(chat, _membership_actions(updated), condition=is_live() & _unchanged(chat))
            tx.save(room)
            tx.save(ChatMemberItem.of(room))
            if chat.type == "normal":  # no longer a pair: the guard goes
                tx.delete(PairGuardItem.for_chat(chat), condition=PairGuardItem.chat_id == chat.id)

        try:
            transact(write, "adding the participant")
        except ConditionFailed:
            continue  # changed under us: read again
        return updated
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def remove_participant(principal: Principal, chat_id: str, participant_id: str) -> ChatItem:
    """Writes the chat, and deletes the participant's chatroom and member item."""
    for _ in range(MEMBERSHIP_RETRIES):
        chat, leaving = membership.chat_and_member(principal.customer_id, chat_id, participant_id)
        if chat.deleted:
            raise NotFound(f"chat {chat_id} is deleted")
        access.require_chat_owner(principal, chat)
        if participant_id not in chat.participant_ids:
            raise NotFound(f"participant_id: {participant_id} is not a participant of chat {chat.id}")
        if chat.type == "normal":
            raise Conflict("participant_id: a normal (1:1) chat keeps both participants; delete the chat instead")
        if len(chat.participant_ids) <= 2:
            raise Conflict("participant_id: a group chat keeps at least 2 participants")
        if participant_id == chat.owner_id:
            raise Conflict("participant_id: this is the chat's owner; give the chat another owner first")
        tm = now()
        updated = _changed(chat, participant_ids=[p for p in chat.participant_ids if p != participant_id],
                           tm_update=tm)
        for with_room in (True, False):
            def write(tx, chat=chat, updated=updated, with_room=with_room, leaving=leaving, tm=tm) -> None:
                tx.update(chat, _membership_actions(updated), condition=is_live() & _unchanged(chat))
                if leaving is not None:
                    tx.delete(leaving)
                    if with_room:  # unless its owner deleted it already; it keeps the chat as it was
                        as_it_was = [ChatroomItem.left_participant_ids.set(chat.participant_ids),
                                     ChatroomItem.left_type.set(chat.type)]
                        tx.update(ChatroomItem.keyed(chat.customer_id, leaving.chatroom_id),
                                  soft_delete_actions(tm) + as_it_was + ChatroomItem.registering_deleted(
                                      chat.customer_id, leaving.chatroom_id), condition=is_live())

            try:
                transact(write, "removing the participant")
                return updated
            except ConditionFailed as failed:
                room_refused = failed.reasons[-1:] == [CONDITION_FAILED] and failed.reasons[0] != CONDITION_FAILED
                if not (with_room and room_refused):
                    break  # the chat changed under us: read again
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def _membership_actions(updated: ChatItem) -> list:
    return [
        ChatItem.participant_ids.set(updated.participant_ids), ChatItem.type.set(updated.type),
        ChatItem.tm_update.set(updated.tm_update), ChatItem.version.set(updated.version),
    ]


def _unchanged(chat: ChatItem):
    """Nobody changed the chat's membership or owner since we read it (an
    owner change and the owner's removal must not both win)."""
    return (ChatItem.version == chat.version) & (ChatItem.owner_id == chat.owner_id)


def _changed(chat: ChatItem, **fields) -> ChatItem:
    """The chat as it will be after a change (by default one version on)."""
    updated = ChatItem.from_raw_data(chat.serialize())
    updated.version = chat.version + 1
    for name, value in fields.items():
        setattr(updated, name, value)
    return updated

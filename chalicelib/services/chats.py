"""Chats: create (with one chatroom per participant), read, change, delete,
and membership. Cascades to other chatrooms run in the stream handler.

Writes are single conditional requests where the contract allows: the
condition carries the rules (live, owned by the caller), and the item is read
only when it fails, to say why (404, 403, ...)."""

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.schemas.bodies import ChatCreate, ChatUpdate, ParticipantAdd
from chalicelib.schemas.common import PARTICIPANTS_MAX
from chalicelib.services import access
from chalicelib.storage import paging
from chalicelib.storage.models import META, ChatItem, ChatroomItem, PairGuardItem
from chalicelib.storage.operations import (
    ConditionFailed,
    attempt,
    is_live,
    load,
    load_live,
    soft_delete_actions,
    transact,
    update,
)

# DynamoDB takes 100 actions in one transaction; the chat and the pair guard
# leave room for this many chatrooms. Larger groups get the rest in batches
# right after, re-checked by the stream handler.
TRANSACTION_ROOMS = 98
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
    # The owner's chatroom first: it is always inside the transaction.
    ordered = [owner_id] + [p for p in participants if p != owner_id]
    rooms = [ChatroomItem.for_participant(chat, p, tm) for p in ordered]

    def write(tx) -> None:
        tx.save(chat, condition=ChatItem.pk.does_not_exist())
        if chat_type == "normal":
            tx.save(PairGuardItem.for_chat(chat), condition=PairGuardItem.pk.does_not_exist())
        for room in rooms[:TRANSACTION_ROOMS]:
            tx.save(room)

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
        def write_rest() -> None:
            with ChatroomItem.batch_write() as batch:
                for room in rooms[TRANSACTION_ROOMS:]:
                    batch.save(room)

        attempt(write_rest, "creating the chat's chatrooms")
    return chat, rooms


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
    """One conditional update; the stream handler then deletes the chatrooms
    and releases a normal chat's pair guard."""
    try:
        return update(ChatItem.keyed(principal.customer_id, chat_id), soft_delete_actions(now()),
                      _owned_live(principal), "deleting the chat")
    except ConditionFailed:
        chat = load(ChatItem, principal.customer_id, chat_id, "chat")
        access.require_chat_owner(principal, chat)
        if chat.deleted:
            return chat  # deleting twice answers the same deleted chat
        raise Conflict(f"chat {chat_id} is being changed by others right now; retry") from None


def change_owner(principal: Principal, chat_id: str, new_owner: str) -> ChatItem:
    """One update, conditioned on the new owner being a participant then."""
    actions = [ChatItem.owner_id.set(new_owner), ChatItem.tm_update.set(now())]
    condition = _owned_live(principal) & ChatItem.participant_ids.contains(new_owner)
    for _ in range(MEMBERSHIP_RETRIES):
        try:
            return update(ChatItem.keyed(principal.customer_id, chat_id), actions, condition, "changing the owner")
        except ConditionFailed:
            chat = _explain_refusal(principal, chat_id)
            if new_owner not in chat.participant_ids:
                raise BadRequest("owner_id: must be one of the chat's participant_ids") from None
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def add_participant(principal: Principal, chat_id: str, body: ParticipantAdd) -> ChatItem:
    new = body.participant_id

    def change(chat: ChatItem):
        if new in chat.participant_ids:
            raise Conflict(f"participant_id: {new} is already a participant of chat {chat.id}")
        if len(chat.participant_ids) >= PARTICIPANTS_MAX:
            raise BadRequest(f"participant_id: chat {chat.id} already has the maximum of {PARTICIPANTS_MAX}")
        participants = sorted(chat.participant_ids + [new])
        tm = now()
        updated = _changed(chat, participant_ids=participants, type=chat_type_for(len(participants)), tm_update=tm)

        def also(tx) -> None:
            tx.save(ChatroomItem.for_participant(updated, new, tm))
            if chat.type == "normal":  # no longer a pair: the guard goes
                tx.delete(PairGuardItem.for_chat(chat), condition=PairGuardItem.chat_id == chat.id)

        return updated, also

    return _change_membership(principal, chat_id, change)


def remove_participant(principal: Principal, chat_id: str, participant_id: str) -> ChatItem:
    def change(chat: ChatItem):
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
        rooms = paging.related(ChatroomItem.by_chat_key(chat.customer_id, chat.id), participant_id)

        def also(tx) -> None:
            for room in rooms:
                tx.update(room, soft_delete_actions(tm), condition=is_live())

        return updated, also

    return _change_membership(principal, chat_id, change)


def _changed(chat: ChatItem, **fields) -> ChatItem:
    """The chat as it will be after a membership change (one version on)."""
    updated = ChatItem.from_raw_data(chat.serialize())
    for name, value in fields.items():
        setattr(updated, name, value)
    updated.version = chat.version + 1
    return updated


def _change_membership(principal: Principal, chat_id: str, change) -> ChatItem:
    """Optimistic update of a chat: the write holds only if nobody changed the
    chat's membership or owner since we read it; otherwise read again and retry."""
    for _ in range(MEMBERSHIP_RETRIES):
        chat = _explain_refusal(principal, chat_id)
        updated, also = change(chat)
        actions = [
            ChatItem.participant_ids.set(updated.participant_ids), ChatItem.type.set(updated.type),
            ChatItem.tm_update.set(updated.tm_update), ChatItem.version.set(updated.version),
        ]
        # Also unchanged owner: an owner change and the owner's removal must not both win.
        condition = is_live() & (ChatItem.version == chat.version) & (ChatItem.owner_id == chat.owner_id)

        def write(tx, chat=chat, actions=actions, condition=condition, also=also) -> None:
            tx.update(chat, actions, condition=condition)
            also(tx)

        try:
            transact(write, "changing the chat's participants")
        except ConditionFailed:
            continue  # changed under us: read again
        return updated
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")

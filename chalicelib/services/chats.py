"""Chats: create (with one chatroom per participant), read, change, delete,
and membership. Cascades to other chatrooms run in the stream handler."""

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.auth import Principal
from chalicelib.clock import derived_id, new_id, now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError
from chalicelib.schemas.common import PARTICIPANTS_MAX
from chalicelib.schemas.requests import ChatCreate, ChatOwnerUpdate, ChatUpdate, ParticipantAdd
from chalicelib.services import access, paging
from chalicelib.services.records import (
    is_live,
    load,
    load_live,
    soft_delete_actions,
    transaction,
)
from chalicelib.storage.models import META, ChatItem, ChatroomItem, PairGuardItem, list_sort_key

# DynamoDB takes 100 actions in one transaction; the chat and the pair guard
# leave room for this many chatrooms. Larger groups get the rest in batches
# right after, re-checked by the stream handler.
TRANSACTION_ROOMS = 98
MEMBERSHIP_RETRIES = 5
CREATE_ATTEMPTS = 3


def chatroom_id(chat_id: str, owner_id: str, chat_version: int) -> str:
    """Derived, so the API and the stream handler name the same chatroom;
    the version makes a re-added participant's chatroom a new one."""
    return derived_id("chatroom", chat_id, owner_id, str(chat_version))


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
    chat_id = new_id()
    chat = ChatItem(
        ChatItem.key(customer_id, chat_id),
        id=chat_id, customer_id=customer_id, type=chat_type, owner_id=owner_id,
        participant_ids=participants, name=name, detail=detail, tm_create=tm, tm_update=tm,
        gsi1pk=ChatItem.list_key(customer_id), gsi1sk=list_sort_key(tm, chat_id), version=1,
    )
    # The owner's chatroom first: it is always inside the transaction.
    ordered = [owner_id] + [p for p in participants if p != owner_id]
    rooms = [new_chatroom(chat, p, tm) for p in ordered]
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            with transaction() as tx:
                tx.save(chat, condition=ChatItem.pk.does_not_exist())
                if chat_type == "normal":
                    tx.save(_pair_guard(chat), condition=PairGuardItem.pk.does_not_exist())
                for room in rooms[:TRANSACTION_ROOMS]:
                    tx.save(room)
            break
        except TransactWriteError as error:
            if chat_type == "normal":
                existing = _live_pair_chat(customer_id, *participants)
                if existing:
                    raise Conflict(
                        f"participant_ids: a normal chat between these two agents already exists: {existing}"
                    ) from None
            # Cancelled by a concurrent transaction (TransactionConflict), or the
            # guard's chat was deleted meanwhile: nobody holds the pair, try again.
            if attempt == CREATE_ATTEMPTS:
                raise ServiceError(f"chat not created, please retry: {error.cause_response_code}") from error
    if len(rooms) > TRANSACTION_ROOMS:
        with ChatroomItem.batch_write() as batch:
            for room in rooms[TRANSACTION_ROOMS:]:
                batch.save(room)
    return chat, rooms


def new_chatroom(chat: ChatItem, owner_id: str, tm: str) -> ChatroomItem:
    room_id = chatroom_id(chat.id, owner_id, chat.version)
    return ChatroomItem(
        ChatroomItem.key(chat.customer_id, room_id),
        id=room_id, customer_id=chat.customer_id, type=chat.type, chat_id=chat.id, owner_id=owner_id,
        participant_ids=chat.participant_ids, name=chat.name, detail=chat.detail,
        tm_create=tm, tm_update=tm, chat_version=chat.version,
        gsi1pk=ChatroomItem.list_key(chat.customer_id, owner_id), gsi1sk=list_sort_key(tm, room_id),
        gsi2pk=ChatroomItem.by_chat_key(chat.customer_id, chat.id), gsi2sk=owner_id,
    )


def _pair_guard(chat: ChatItem) -> PairGuardItem:
    return PairGuardItem(PairGuardItem.key(chat.customer_id, *chat.participant_ids), chat_id=chat.id)


def _live_pair_chat(customer_id: str, first: str, second: str) -> str | None:
    try:
        return PairGuardItem.get(PairGuardItem.key(customer_id, first, second), META, consistent_read=True).chat_id
    except DoesNotExist:
        return None


# ---- read ---------------------------------------------------------------------

def get_chat(principal: Principal, chat_id: str) -> ChatItem:
    chat = load(ChatItem, principal.customer_id, chat_id, "chat")
    access.require_participant(principal, chat)
    return chat


def list_chats(principal: Principal, page_size: int, page_token: str | None) -> paging.Page:
    access.require_privileged(principal, "listing every chat of the customer needs an admin or manager; "
                                         "agents list their own chatrooms with GET /v1.0/chatrooms")
    return paging.list_page(ChatItem.list_key(principal.customer_id), page_size, page_token)


# ---- change -------------------------------------------------------------------

def _load_for_change(principal: Principal, chat_id: str) -> ChatItem:
    chat = load_live(ChatItem, principal.customer_id, chat_id, "chat")
    access.require_chat_owner(principal, chat)
    return chat


def update_chat(principal: Principal, chat_id: str, body: ChatUpdate) -> ChatItem:
    chat = _load_for_change(principal, chat_id)
    actions = [ChatItem.tm_update.set(now())]
    if body.name is not None:
        actions.append(ChatItem.name.set(body.name))
    if body.detail is not None:
        actions.append(ChatItem.detail.set(body.detail))
    return _update_live(chat, actions)


def delete_chat(principal: Principal, chat_id: str) -> ChatItem:
    chat = load(ChatItem, principal.customer_id, chat_id, "chat")
    access.require_chat_owner(principal, chat)
    if chat.deleted:
        return chat  # deleting twice answers the same deleted chat
    try:
        with transaction() as tx:
            tx.update(chat, soft_delete_actions(now()), condition=is_live())
            if chat.type == "normal":
                tx.delete(_pair_guard(chat), condition=PairGuardItem.chat_id == chat.id)
    except TransactWriteError:
        chat = load(ChatItem, principal.customer_id, chat_id, "chat")
        if chat.deleted:
            return chat
        raise ServiceError("chat not deleted, please retry") from None
    # The chatrooms follow through the stream handler.
    return load(ChatItem, principal.customer_id, chat_id, "chat")


def change_owner(principal: Principal, chat_id: str, body: ChatOwnerUpdate) -> ChatItem:
    def change(chat: ChatItem):
        if body.owner_id not in chat.participant_ids:
            raise BadRequest("owner_id: must be one of the chat's participant_ids")
        return [ChatItem.owner_id.set(body.owner_id), ChatItem.tm_update.set(now())], None

    return _change_membership(principal, chat_id, change, bump_version=False)


def add_participant(principal: Principal, chat_id: str, body: ParticipantAdd) -> ChatItem:
    new = body.participant_id

    def change(chat: ChatItem):
        if new in chat.participant_ids:
            raise Conflict(f"participant_id: {new} is already a participant of chat {chat.id}")
        if len(chat.participant_ids) >= PARTICIPANTS_MAX:
            raise BadRequest(f"participant_id: chat {chat.id} already has the maximum of {PARTICIPANTS_MAX}")
        participants = sorted(chat.participant_ids + [new])
        new_type = chat_type_for(len(participants))
        tm = now()

        def also(tx, updated: ChatItem):
            tx.save(new_chatroom(updated, new, tm))
            if chat.type == "normal":  # no longer a pair: the guard goes
                tx.delete(_pair_guard(chat), condition=PairGuardItem.chat_id == chat.id)

        actions = [ChatItem.participant_ids.set(participants), ChatItem.type.set(new_type), ChatItem.tm_update.set(tm)]
        return actions, (also, participants, new_type)

    return _change_membership(principal, chat_id, change, bump_version=True)


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
        participants = [p for p in chat.participant_ids if p != participant_id]
        tm = now()
        rooms = paging.related(ChatroomItem.by_chat_key(chat.customer_id, chat.id), participant_id)

        def also(tx, updated: ChatItem):
            for room in rooms:
                tx.update(room, soft_delete_actions(tm), condition=is_live())

        actions = [ChatItem.participant_ids.set(participants), ChatItem.tm_update.set(tm)]
        return actions, (also, participants, chat.type)

    return _change_membership(principal, chat_id, change, bump_version=True)


def _change_membership(principal: Principal, chat_id: str, change, bump_version: bool) -> ChatItem:
    """Optimistic update of a chat: the write holds only if nobody changed the
    chat's membership since we read it; otherwise read again and retry."""
    for _ in range(MEMBERSHIP_RETRIES):
        chat = _load_for_change(principal, chat_id)
        actions, extra = change(chat)
        version = chat.version
        if bump_version:
            actions.append(ChatItem.version.set(version + 1))
        # Also unchanged owner: an owner change and the owner's removal must not both win.
        condition = is_live() & (ChatItem.version == version) & (ChatItem.owner_id == chat.owner_id)
        try:
            with transaction() as tx:
                tx.update(chat, actions, condition=condition)
                if extra:
                    also, participants, new_type = extra
                    updated = ChatItem.from_raw_data(chat.serialize())
                    updated.participant_ids, updated.type, updated.version = participants, new_type, version + 1
                    also(tx, updated)
        except TransactWriteError:
            continue  # changed under us: read again
        return load(ChatItem, principal.customer_id, chat_id, "chat")
    raise Conflict(f"chat {chat_id} is being changed by others right now; retry")


def _update_live(chat: ChatItem, actions: list) -> ChatItem:
    try:
        chat.update(actions, condition=is_live())
    except UpdateError:
        raise NotFound(f"chat {chat.id} is deleted") from None
    return chat

"""Chatrooms: each participant's own view of a chat."""

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.schemas.bodies import ChatroomCreate, ChatroomUpdate, unique_sorted
from chalicelib.schemas.common import PARTICIPANTS_MAX
from chalicelib.services import access
from chalicelib.services.chats import chat_type_for, create_chat_with_rooms
from chalicelib.storage import paging
from chalicelib.storage.models import META, ChatItem, ChatroomItem
from chalicelib.storage.operations import ConditionFailed, attempt, is_live, load, soft_delete_actions, update

BATCH_GET_MAX = 100  # keys in one BatchGetItem


def with_chats(rooms: list[ChatroomItem], known: ChatItem | None = None) -> list[ChatroomItem]:
    """Chatrooms show their chat's type and participant list, stored once in
    the chat: one BatchGetItem for the distinct chats of a page (none for
    `known`, a chat the caller has at hand)."""
    chats = {known.id: known} if known is not None else {}
    wanted = sorted({room.chat_id for room in rooms} - set(chats))
    for start in range(0, len(wanted), BATCH_GET_MAX):
        keys = [(ChatItem.key(rooms[0].customer_id, chat_id), META) for chat_id in wanted[start:start + BATCH_GET_MAX]]
        chats.update((chat.id, chat) for chat in attempt(lambda keys=keys: list(ChatItem.batch_get(keys)),
                                                           "reading the chatrooms' chats"))
    for room in rooms:
        chat = chats.get(room.chat_id)
        room.type = chat.type if chat else "unknown"
        room.participant_ids = chat.participant_ids if chat else []
    return rooms


def with_chat(room: ChatroomItem) -> ChatroomItem:
    return with_chats([room])[0]


def create_chatroom(principal: Principal, body: ChatroomCreate) -> ChatroomItem:
    """An agent starts a chat with others; answers with the caller's chatroom."""
    caller = access.require_agent(principal, "creating a chatroom")
    participants = unique_sorted(body.participant_ids + [caller])
    if len(participants) < 2:
        raise BadRequest("participant_ids: name at least one agent other than yourself")
    if len(participants) > PARTICIPANTS_MAX:
        raise BadRequest(f"participant_ids: at most {PARTICIPANTS_MAX} distinct participants, yourself included")
    chat, rooms = create_chat_with_rooms(
        principal.customer_id, chat_type_for(len(participants)), caller, participants, body.name, body.detail
    )
    return with_chats([next(room for room in rooms if room.owner_id == caller)], known=chat)[0]


def list_chatrooms(principal: Principal, owner_id: str | None, page: paging.PageRequest) -> paging.Page:
    if owner_id is None:
        if not principal.is_agent:
            raise BadRequest("owner_id: required with a customer token")
        owner_id = principal.agent_id
    access.require_own(principal, owner_id, f"the chatrooms of agent {owner_id}")
    result = paging.list_page(ChatroomItem.list_key(principal.customer_id, owner_id), page)
    with_chats(result.items)
    return result


def get_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
    return with_chat(_own(principal, chatroom_id))


def _own(principal: Principal, chatroom_id: str) -> ChatroomItem:
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    return room


def _own_live(principal: Principal):
    condition = is_live()
    if not principal.is_privileged:
        condition &= ChatroomItem.owner_id == principal.agent_id
    return condition


def update_chatroom(principal: Principal, chatroom_id: str, body: ChatroomUpdate) -> ChatroomItem:
    """One conditional update (live, the caller's); read only to explain a refusal."""
    actions = [ChatroomItem.tm_update.set(now())]
    if body.name is not None:
        actions.append(ChatroomItem.name.set(body.name))
    if body.detail is not None:
        actions.append(ChatroomItem.detail.set(body.detail))
    try:
        return with_chat(update(ChatroomItem.keyed(principal.customer_id, chatroom_id), actions,
                                _own_live(principal), "changing the chatroom"))
    except ConditionFailed:
        room = _own(principal, chatroom_id)
        if room.deleted:
            raise NotFound(f"chatroom {chatroom_id} is deleted") from None
        raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None


def delete_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
    """Deletes this view only; the chat and the other chatrooms stay."""
    try:
        return with_chat(update(ChatroomItem.keyed(principal.customer_id, chatroom_id), soft_delete_actions(now()),
                                _own_live(principal), "deleting the chatroom"))
    except ConditionFailed:
        room = _own(principal, chatroom_id)
        if room.deleted:
            return with_chat(room)  # deleting twice answers the same deleted chatroom
        raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None


def owned_live_chatroom(principal: Principal, chatroom_id: str, action: str) -> ChatroomItem:
    """A chatroom the caller may post into: their own, or any for admins and managers."""
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    if not principal.is_privileged and room.owner_id != principal.agent_id:
        raise Forbidden(f"chatroom_id: chatroom {chatroom_id} belongs to another agent; {action} only into your own")
    if room.deleted:
        raise NotFound(f"chatroom_id: chatroom {chatroom_id} is deleted")
    return room

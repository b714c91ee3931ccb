"""Chatrooms: each participant's own view of a chat."""

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.schemas.bodies import ChatroomCreate, ChatroomUpdate, unique_sorted
from chalicelib.schemas.common import PARTICIPANTS_MAX
from chalicelib.services import access
from chalicelib.services.chats import chat_type_for, create_chat_with_rooms
from chalicelib.storage import paging
from chalicelib.storage.models import ChatroomItem
from chalicelib.storage.operations import ConditionFailed, is_live, load, soft_delete_actions, update


def create_chatroom(principal: Principal, body: ChatroomCreate) -> ChatroomItem:
    """An agent starts a chat with others; answers with the caller's chatroom."""
    caller = access.require_agent(principal, "creating a chatroom")
    participants = unique_sorted(body.participant_ids + [caller])
    if len(participants) < 2:
        raise BadRequest("participant_ids: name at least one agent other than yourself")
    if len(participants) > PARTICIPANTS_MAX:
        raise BadRequest(f"participant_ids: at most {PARTICIPANTS_MAX} distinct participants, yourself included")
    _, rooms = create_chat_with_rooms(
        principal.customer_id, chat_type_for(len(participants)), caller, participants, body.name, body.detail
    )
    return next(room for room in rooms if room.owner_id == caller)


def list_chatrooms(principal: Principal, owner_id: str | None, page: paging.PageRequest) -> paging.Page:
    if owner_id is None:
        if not principal.is_agent:
            raise BadRequest("owner_id: required with a customer token")
        owner_id = principal.agent_id
    access.require_own(principal, owner_id, f"the chatrooms of agent {owner_id}")
    return paging.list_page(ChatroomItem.list_key(principal.customer_id, owner_id), page)


def get_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
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
        return update(ChatroomItem.keyed(principal.customer_id, chatroom_id), actions, _own_live(principal),
                      "changing the chatroom")
    except ConditionFailed:
        room = get_chatroom(principal, chatroom_id)
        if room.deleted:
            raise NotFound(f"chatroom {chatroom_id} is deleted") from None
        raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None


def delete_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
    """Deletes this view only; the chat and the other chatrooms stay."""
    try:
        return update(ChatroomItem.keyed(principal.customer_id, chatroom_id), soft_delete_actions(now()),
                      _own_live(principal), "deleting the chatroom")
    except ConditionFailed:
        room = get_chatroom(principal, chatroom_id)
        if room.deleted:
            return room  # deleting twice answers the same deleted chatroom
        raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None


def owned_live_chatroom(principal: Principal, chatroom_id: str, action: str) -> ChatroomItem:
    """A chatroom the caller may post into: their own, or any for admins and managers."""
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    if not principal.is_privileged and room.owner_id != principal.agent_id:
        raise Forbidden(f"chatroom_id: chatroom {chatroom_id} belongs to another agent; {action} only into your own")
    if room.deleted:
        raise NotFound(f"chatroom_id: chatroom {chatroom_id} is deleted")
    return room

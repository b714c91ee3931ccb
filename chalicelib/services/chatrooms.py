"""Chatrooms: each participant's own view of a chat."""

from pynamodb.exceptions import UpdateError

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.schemas.requests import ChatroomCreate, ChatroomUpdate, unique_sorted
from chalicelib.services import access, paging
from chalicelib.services.chats import chat_type_for, create_chat_with_rooms
from chalicelib.services.records import is_live, load, soft_delete_actions
from chalicelib.storage.models import ChatroomItem


def create_chatroom(principal: Principal, body: ChatroomCreate) -> ChatroomItem:
    """An agent starts a chat with others; answers with the caller's chatroom."""
    caller = access.require_agent(principal, "creating a chatroom")
    participants = unique_sorted(body.participant_ids + [caller])
    if len(participants) < 2:
        raise BadRequest("participant_ids: name at least one agent other than yourself")
    if len(participants) > 1000:
        raise BadRequest("participant_ids: at most 1000 distinct participants, yourself included")
    _, rooms = create_chat_with_rooms(
        principal.customer_id, chat_type_for(len(participants)), caller, participants, body.name, body.detail
    )
    return next(room for room in rooms if room.owner_id == caller)


def list_chatrooms(principal: Principal, owner_id: str | None, page_size: int,
                   page_token: str | None) -> paging.Page:
    if owner_id is None:
        if not principal.is_agent:
            raise BadRequest("owner_id: required with a customer token")
        owner_id = principal.agent_id
    access.require_own(principal, owner_id, f"the chatrooms of agent {owner_id}")
    return paging.list_page(ChatroomItem.list_key(principal.customer_id, owner_id), page_size, page_token)


def get_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    return room


def update_chatroom(principal: Principal, chatroom_id: str, body: ChatroomUpdate) -> ChatroomItem:
    room = get_chatroom(principal, chatroom_id)
    actions = [ChatroomItem.tm_update.set(now())]
    if body.name is not None:
        actions.append(ChatroomItem.name.set(body.name))
    if body.detail is not None:
        actions.append(ChatroomItem.detail.set(body.detail))
    try:
        room.update(actions, condition=is_live())
    except UpdateError:
        raise NotFound(f"chatroom {chatroom_id} is deleted") from None
    return room


def delete_chatroom(principal: Principal, chatroom_id: str) -> ChatroomItem:
    """Deletes this view only; the chat and the other chatrooms stay."""
    room = get_chatroom(principal, chatroom_id)
    if not room.deleted:
        try:
            room.update(soft_delete_actions(now()), condition=is_live())
        except UpdateError:
            room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    return room


def owned_live_chatroom(principal: Principal, chatroom_id: str, action: str) -> ChatroomItem:
    """A chatroom the caller may post into: their own, or any for admins and managers."""
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    if not principal.is_privileged and room.owner_id != principal.agent_id:
        raise Forbidden(f"chatroom_id: chatroom {chatroom_id} belongs to another agent; {action} only into your own")
    if room.deleted:
        raise NotFound(f"chatroom_id: chatroom {chatroom_id} is deleted")
    return room

"""Chatrooms: each participant's own view of a chat, with its read state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.schemas.limits import PARTICIPANTS_MAX
from chalicelib.services import access, readstate, views
from chalicelib.services.chats import chat_type_for, create_chat_with_rooms
from chalicelib.storage import paging
from chalicelib.storage.models import META, ChatroomItem, ChatroommessageItem, TableItem
from chalicelib.storage.operations import ConditionFailed, attempt, is_live, load, soft_delete_actions, update

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import ChatroomCreate, ChatroomRead, ChatroomUpdate

MARK_READ_ATTEMPTS = 5


def create_chatroom(principal: Principal, body: ChatroomCreate):
    """An agent starts a chat with others; answers with the caller's chatroom."""
    caller = access.require_agent(principal, "creating a chatroom")
    participants = sorted(set(body.participant_ids) | {caller})
    if len(participants) < 2:
        raise BadRequest("participant_ids: name at least one agent other than yourself")
    if len(participants) > PARTICIPANTS_MAX:
        raise BadRequest(f"participant_ids: at most {PARTICIPANTS_MAX} distinct participants, yourself included")
    chat, rooms = create_chat_with_rooms(
        principal.customer_id, chat_type_for(len(participants)), caller, participants, body.name, body.detail
    )
    room = next(room for room in rooms if room.owner_id == caller)
    return views.chatroom(room, chat, None)


def list_chatrooms(principal: Principal, owner_id: str | None, page: paging.PageRequest) -> paging.Page:
    """An agent's chatrooms, newest first (`order=activity`: by newest
    activity): one Query and one BatchGetItem a page."""
    if owner_id is None:
        if not principal.is_agent:
            raise BadRequest("owner_id: required with a customer token")
        owner_id = principal.agent_id
    access.require_own(principal, owner_id, f"the chatrooms of agent {owner_id}")
    if page.order == "activity":
        result = readstate.page_by_activity(principal.customer_id, owner_id, page)
    else:
        result = paging.list_page(ChatroomItem.list_key(principal.customer_id, owner_id), page)
    result.items = views.chatrooms(result.items)
    return result


def _own(principal: Principal, chatroom_id: str) -> ChatroomItem:
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    return room


def get_chatroom(principal: Principal, chatroom_id: str):
    return views.chatrooms([_own(principal, chatroom_id)])[0]


def _own_live(principal: Principal):
    condition = is_live()
    if not principal.is_privileged:
        condition &= ChatroomItem.owner_id == principal.agent_id
    return condition


def update_chatroom(principal: Principal, chatroom_id: str, body: ChatroomUpdate):
    """One conditional update (live, the caller's); read only to explain a refusal."""
    actions = [ChatroomItem.tm_update.set(now())]
    if body.name is not None:
        actions.append(ChatroomItem.name.set(body.name))
    if body.detail is not None:
        actions.append(ChatroomItem.detail.set(body.detail))
    try:
        room = update(ChatroomItem.keyed(principal.customer_id, chatroom_id), actions, _own_live(principal),
                      "changing the chatroom")
    except ConditionFailed:
        room = _own(principal, chatroom_id)
        if room.deleted:
            raise NotFound(f"chatroom {chatroom_id} is deleted") from None
        raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None
    return views.chatrooms([room])[0]


def delete_chatroom(principal: Principal, chatroom_id: str):
    """Deletes this view only; the chat and the other chatrooms stay."""
    try:
        room = update(ChatroomItem.keyed(principal.customer_id, chatroom_id),
                      soft_delete_actions(now()) + ChatroomItem.registering_deleted(principal.customer_id, chatroom_id),
                      _own_live(principal), "deleting the chatroom")
    except ConditionFailed:
        room = _own(principal, chatroom_id)
        if not room.deleted:
            raise Conflict(f"chatroom {chatroom_id} changed meanwhile; retry") from None
    return views.chatrooms([room])[0]  # deleting twice answers the same deleted chatroom


def owned_live_chatroom(principal: Principal, chatroom_id: str, action: str) -> ChatroomItem:
    """A chatroom the caller may post into: their own, or any for admins and managers."""
    room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom")
    if not principal.is_privileged and room.owner_id != principal.agent_id:
        raise Forbidden(f"chatroom_id: chatroom {chatroom_id} belongs to another agent; {action} only into your own")
    if room.deleted:
        raise NotFound(f"chatroom_id: chatroom {chatroom_id} is deleted")
    return room


# ---- read state ------------------------------------------------------------------------

def mark_read(principal: Principal, chatroom_id: str, body: ChatroomRead):
    """Move the owner's read marker forward: to the newest copy (no id), or to
    a copy of this chatroom; never back. The unread count is recomputed from
    the marker. At most 3 requests: the chatroom (with the copy named, in one
    consistent BatchGetItem: the list index may not show a copy just written),
    for a copy newer than the marker the copies newer than the old marker,
    and one update conditioned on the chatroom's revision, so a fan-out
    racing it is never lost."""
    for _ in range(MARK_READ_ATTEMPTS):
        room, copy = _room_and_copy(principal, chatroom_id, body.chatroommessage_id)
        _require_owner(principal, room)
        state = readstate.RoomState.of(room)
        if copy is None:
            target, unread, mentions = state.tm_activity, 0, 0
        else:
            if copy.tm_create <= state.tm_read:
                return views.chatrooms([room])[0]  # a copy at or before the marker: it stays where it is
            target, (unread, mentions) = copy.tm_create, _unread_after(room, state, copy.tm_create)
        if target <= state.tm_read:
            return views.chatrooms([room])[0]
        actions = [ChatroomItem.tm_read.set(target), ChatroomItem.unread.set(unread),
                   ChatroomItem.mention_count.set(mentions), ChatroomItem.revision.add(1)]
        if state.revision is None:  # written before read state
            actions += [ChatroomItem.tm_activity.set(state.tm_activity),
                        ChatroomItem.gsi3pk.set(ChatroomItem.by_activity_key(room.customer_id, room.owner_id)),
                        ChatroomItem.gsi3sk.set(f"{state.tm_activity}~{room.id}")]
            if state.newest:
                actions += [ChatroomItem.last_copy_id.set(state.newest.copy_id),
                            ChatroomItem.last_messagechat_id.set(state.newest.messagechat_id)]
            condition = is_live() & ChatroomItem.revision.does_not_exist()
        else:
            condition = is_live() & (ChatroomItem.revision == state.revision)
        try:
            room = update(ChatroomItem.keyed(principal.customer_id, chatroom_id), actions, condition,
                          "moving the read marker")
        except ConditionFailed:
            continue  # a copy came or went meanwhile: count again
        return views.chatrooms([room])[0]
    raise Conflict(f"chatroom {chatroom_id} is changing right now; retry")


def _room_and_copy(principal: Principal, chatroom_id: str,
                   copy_id: str | None) -> tuple[ChatroomItem, ChatroommessageItem | None]:
    """The caller's chatroom, and the live copy of it that `copy_id` names
    (400 if it names none): one consistent read."""
    if copy_id is None:
        return load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom"), None
    room_key = ChatroomItem.key(principal.customer_id, chatroom_id)
    copy_key = ChatroommessageItem.key(principal.customer_id, copy_id)
    found = {item.pk: item for item in attempt(lambda: list(TableItem.batch_get(
        [(room_key, META), (copy_key, META)], consistent_read=True)), f"reading chatroom {chatroom_id}")}
    room, copy = found.get(room_key), found.get(copy_key)
    if room is None:
        raise NotFound(f"chatroom {chatroom_id} not found")
    _require_owner(principal, room)
    if not isinstance(copy, ChatroommessageItem) or copy.chatroom_id != room.id:
        raise BadRequest(f"chatroommessage_id: {copy_id} is not a message of chatroom {chatroom_id}")
    if copy.deleted:
        raise BadRequest(f"chatroommessage_id: {copy_id} is deleted")
    return room, copy


def _require_owner(principal: Principal, room: ChatroomItem) -> None:
    if principal.agent_id != room.owner_id:
        raise Forbidden(f"chatroom {room.id}: only its owner moves its read marker")
    if room.deleted:
        raise NotFound(f"chatroom {room.id} is deleted")


def _unread_after(room: ChatroomItem, state, target: str) -> tuple[int, int]:
    """The unread copies newer than `target`, and those of them that mention
    the owner, from one Query of the copies newer than the old marker."""
    for settle in range(3):
        newer = attempt(lambda: list(ChatroommessageItem.list_index.query(
            ChatroommessageItem.list_key(room.customer_id, room.id),
            range_key_condition=ChatroommessageItem.gsi1sk > state.tm_read + readstate.AFTER)),
            f"reading chatroom {room.id}")
        others = [copy for copy in newer if not readstate.from_owner(copy.source, room.owner_id)]
        # The list index lags the table by a moment on DynamoDB: it holds every
        # unread copy once it shows as many as the chatroom counts.
        if len(others) == state.unread or settle == 2:
            break
        time.sleep(0.1 * (settle + 1))
    after = [copy for copy in others if copy.tm_create > target]
    return len(after), sum(1 for copy in after if copy.mentioned)

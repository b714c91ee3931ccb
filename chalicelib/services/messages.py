"""Chatmessages (sent to a chat) and chatroommessages (their copies, one per
chatroom). The stream handler writes the copies; see services/fanout.py."""

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import Conflict, Forbidden
from chalicelib.schemas.bodies import ChatmessageCreate, ChatroommessageCreate
from chalicelib.services import access, files, idempotency, membership
from chalicelib.services.chatrooms import owned_live_chatroom
from chalicelib.storage import paging
from chalicelib.storage.models import ChatItem, ChatmessageItem, ChatroomItem, ChatroommessageItem
from chalicelib.storage.operations import (
    ConditionFailed,
    is_live,
    load,
    soft_delete_actions,
    update,
)

EMPTY_SOURCE = {"type": "", "target": "", "target_name": "", "name": "", "detail": ""}


def caller_source(principal: Principal) -> dict:
    return {**EMPTY_SOURCE, "type": "agent", "target": principal.agent_id, "target_name": principal.name}


def sent_by(message: ChatmessageItem, agent_id: str | None) -> bool:
    return message.source.get("type") == "agent" and message.source.get("target") == agent_id


# ---- chatmessages -------------------------------------------------------------

def send_chatmessage(principal: Principal, body: ChatmessageCreate, key: str | None) -> ChatmessageItem:
    membership.require_live_member(principal, body.chat_id, "chat_id: chat")
    if not principal.is_privileged:
        source = caller_source(principal)  # plain agents speak only as themselves
    elif body.source is not None:
        source = body.source.model_dump()
    else:
        source = caller_source(principal) if principal.is_agent else dict(EMPTY_SOURCE)
    medias = files.attach(principal, body.medias, body.chat_id)
    message = ChatmessageItem.new(principal.customer_id, body.chat_id, source, body.type, body.text, medias, now())
    first = idempotency.write_once(
        principal, "chatmessages", key, idempotency.request_hash(body.model_dump_json()),
        [message], (message.id, None),
    )
    if first:
        return load(ChatmessageItem, principal.customer_id, first[0], "chatmessage")
    return message


def list_chatmessages(principal: Principal, chat_id: str, page: paging.PageRequest) -> paging.Page:
    membership.require_member(principal, chat_id, "chat_id: chat")
    result = paging.list_page(ChatmessageItem.list_key(principal.customer_id, chat_id), page)
    if principal.is_privileged and not result.items:
        load(ChatItem, principal.customer_id, chat_id, "chat_id: chat")  # empty page or unknown chat?
    return result


def get_chatmessage(principal: Principal, message_id: str) -> ChatmessageItem:
    message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    membership.require_member(principal, message.chat_id, "chat")
    return message


def delete_chatmessage(principal: Principal, message_id: str) -> ChatmessageItem:
    """One conditional update (live, sent by the caller unless privileged);
    the stream handler then deletes every copy."""
    condition = is_live()
    if not principal.is_privileged:
        condition &= ChatmessageItem.sender_id == principal.agent_id
    keyed = ChatmessageItem.keyed(principal.customer_id, message_id)
    try:
        return update(keyed, soft_delete_actions(now()), condition, "deleting the chatmessage")
    except ConditionFailed:
        message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    if not principal.is_privileged and not sent_by(message, principal.agent_id):
        raise Forbidden(f"chatmessage {message_id} was sent by someone else; only its sender may delete it")
    if message.deleted:
        return message  # deleting twice answers the same deleted message
    if message.sender_id is None:  # stored before sender_id existed: its source says who sent it
        try:
            return update(keyed, soft_delete_actions(now()), is_live(), "deleting the chatmessage")
        except ConditionFailed:
            return load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    raise Conflict(f"chatmessage {message_id} changed meanwhile; retry")


# ---- chatroommessages ---------------------------------------------------------

def send_chatroommessage(principal: Principal, body: ChatroommessageCreate, key: str | None) -> ChatroommessageItem:
    """The caller sends into a chat through a chatroom; answers with that
    chatroom's copy at once (written with the message, in one transaction)."""
    access.require_agent(principal, "sending a chatroommessage")
    room = owned_live_chatroom(principal, body.chatroom_id, "send")
    membership.require_live(principal.customer_id, room.chat_id, "chat")  # its own chatroom: a participant
    medias = files.attach(principal, body.medias, room.chat_id)
    message = ChatmessageItem.new(principal.customer_id, room.chat_id, caller_source(principal), "normal", body.text,
                                  medias, now(), origin_chatroom_id=room.id)
    copy = ChatroommessageItem.copy_of(message, room.id, room.owner_id)
    first = idempotency.write_once(
        principal, "chatroommessages", key, idempotency.request_hash(body.model_dump_json()),
        [message, copy], (message.id, copy.id),
    )
    if first:
        return load(ChatroommessageItem, principal.customer_id, first[1], "chatroommessage")
    return copy


def list_chatroommessages(principal: Principal, chatroom_id: str, page: paging.PageRequest) -> paging.Page:
    """One Query. Every copy names its chatroom's owner, so a page with items
    answers who may see it; only an empty page needs the chatroom read (to
    tell an unknown or another agent's chatroom from an empty one)."""
    result = paging.list_page(ChatroommessageItem.list_key(principal.customer_id, chatroom_id), page)
    if result.items:
        access.require_own(principal, result.items[0].owner_id, f"chatroom {chatroom_id}")
    else:
        room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom_id: chatroom")
        access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    return result


def get_chatroommessage(principal: Principal, copy_id: str) -> ChatroommessageItem:
    copy = load(ChatroommessageItem, principal.customer_id, copy_id, "chatroommessage")
    access.require_own(principal, copy.owner_id, f"chatroommessage {copy_id}")
    return copy


def delete_chatroommessage(principal: Principal, copy_id: str) -> ChatroommessageItem:
    """Deletes this copy only: one conditional update (live, the caller's)."""
    condition = is_live()
    if not principal.is_privileged:
        condition &= ChatroommessageItem.owner_id == principal.agent_id
    try:
        return update(ChatroommessageItem.keyed(principal.customer_id, copy_id), soft_delete_actions(now()),
                      condition, "deleting the chatroommessage")
    except ConditionFailed:
        copy = get_chatroommessage(principal, copy_id)
        if copy.deleted:
            return copy
        raise Conflict(f"chatroommessage {copy_id} changed meanwhile; retry") from None

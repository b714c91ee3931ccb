"""Chatmessages (sent to a chat) and chatroommessages (their copies, one per
chatroom). The stream handler writes the copies; see chalicelib.fanout."""

from pynamodb.exceptions import UpdateError

from chalicelib.auth import Principal
from chalicelib.clock import derived_id, new_id, now
from chalicelib.errors import Forbidden
from chalicelib.schemas.requests import ChatmessageCreate, ChatroommessageCreate
from chalicelib.services import access, idempotency, paging
from chalicelib.services.chatrooms import owned_live_chatroom
from chalicelib.services.records import is_live, load, load_live, soft_delete_actions
from chalicelib.storage.models import (
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    list_sort_key,
)

EMPTY_SOURCE = {"type": "", "target": "", "target_name": "", "name": "", "detail": ""}


def caller_source(principal: Principal) -> dict:
    return {**EMPTY_SOURCE, "type": "agent", "target": principal.agent_id, "target_name": principal.name}


def copy_id(message_id: str, chatroom_id: str) -> str:
    """Derived, so a replayed stream record writes the same copy, never a second."""
    return derived_id("chatroommessage", message_id, chatroom_id)


def new_copy(message: ChatmessageItem, room: ChatroomItem) -> ChatroommessageItem:
    cid = copy_id(message.id, room.id)
    c = message.customer_id
    return ChatroommessageItem(
        ChatroommessageItem.key(c, cid),
        id=cid, customer_id=c, chatroom_id=room.id, messagechat_id=message.id, owner_id=room.owner_id,
        source=message.source, type=message.type, text=message.text, medias=message.medias,
        tm_create=message.tm_create, tm_update=message.tm_create,
        gsi1pk=ChatroommessageItem.list_key(c, room.id), gsi1sk=list_sort_key(message.tm_create, cid),
        gsi2pk=ChatroommessageItem.by_message_key(c, message.id), gsi2sk=room.id,
    )


def _new_message(chat: ChatItem, source: dict, message_type: str, text: str, medias: list,
                 origin_chatroom_id: str | None = None) -> ChatmessageItem:
    tm, mid, c = now(), new_id(), chat.customer_id
    return ChatmessageItem(
        ChatmessageItem.key(c, mid),
        id=mid, customer_id=c, chat_id=chat.id, source=source, type=message_type, text=text,
        medias=medias, tm_create=tm, tm_update=tm, origin_chatroom_id=origin_chatroom_id,
        gsi1pk=ChatmessageItem.list_key(c, chat.id), gsi1sk=list_sort_key(tm, mid),
    )


# ---- chatmessages -------------------------------------------------------------

def send_chatmessage(principal: Principal, body: ChatmessageCreate, key: str | None) -> ChatmessageItem:
    chat = load_live(ChatItem, principal.customer_id, body.chat_id, "chat_id: chat")
    access.require_participant(principal, chat)
    if not principal.is_privileged:
        source = caller_source(principal)  # plain agents speak only as themselves
    elif body.source is not None:
        source = body.source.model_dump()
    else:
        source = caller_source(principal) if principal.is_agent else dict(EMPTY_SOURCE)
    medias = [m.stored() for m in body.medias]
    message = _new_message(chat, source, body.type, body.text, medias)
    first = idempotency.write_once(
        principal, "chatmessages", key, idempotency.request_hash(body.model_dump_json()),
        [message], (message.id, None),
    )
    if first:
        return load(ChatmessageItem, principal.customer_id, first[0], "chatmessage")
    return message


def list_chatmessages(principal: Principal, chat_id: str, page_size: int, page_token: str | None) -> paging.Page:
    if not principal.is_privileged:
        access.require_participant(principal, load(ChatItem, principal.customer_id, chat_id, "chat_id: chat"))
    page = paging.list_page(ChatmessageItem.list_key(principal.customer_id, chat_id), page_size, page_token)
    if principal.is_privileged and not page.items:
        load(ChatItem, principal.customer_id, chat_id, "chat_id: chat")  # empty page or unknown chat?
    return page


def get_chatmessage(principal: Principal, message_id: str) -> ChatmessageItem:
    message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    if not principal.is_privileged:
        access.require_participant(principal, load(ChatItem, principal.customer_id, message.chat_id, "chat"))
    return message


def delete_chatmessage(principal: Principal, message_id: str) -> ChatmessageItem:
    """Deletes the message; the stream handler then deletes every copy."""
    message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    if not principal.is_privileged:
        sent_by_caller = message.source.get("type") == "agent" and message.source.get("target") == principal.agent_id
        if not sent_by_caller:
            raise Forbidden(f"chatmessage {message_id} was sent by someone else; only its sender may delete it")
    if not message.deleted:
        try:
            message.update(soft_delete_actions(now()), condition=is_live())
        except UpdateError:
            message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    return message


# ---- chatroommessages ---------------------------------------------------------

def send_chatroommessage(principal: Principal, body: ChatroommessageCreate, key: str | None) -> ChatroommessageItem:
    """The caller sends into a chat through a chatroom; answers with that
    chatroom's copy at once (written with the message, in one transaction)."""
    access.require_agent(principal, "sending a chatroommessage")
    room = owned_live_chatroom(principal, body.chatroom_id, "send")
    chat = load_live(ChatItem, principal.customer_id, room.chat_id, "chat")
    medias = [m.stored() for m in body.medias]
    message = _new_message(chat, caller_source(principal), "normal", body.text, medias, origin_chatroom_id=room.id)
    copy = new_copy(message, room)
    first = idempotency.write_once(
        principal, "chatroommessages", key, idempotency.request_hash(body.model_dump_json()),
        [message, copy], (message.id, copy.id),
    )
    if first:
        return load(ChatroommessageItem, principal.customer_id, first[1], "chatroommessage")
    return copy


def list_chatroommessages(principal: Principal, chatroom_id: str, page_size: int,
                          page_token: str | None) -> paging.Page:
    if not principal.is_privileged:
        room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom_id: chatroom")
        access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    page = paging.list_page(ChatroommessageItem.list_key(principal.customer_id, chatroom_id), page_size, page_token)
    if principal.is_privileged and not page.items:
        load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom_id: chatroom")
    return page


def get_chatroommessage(principal: Principal, copy_id_: str) -> ChatroommessageItem:
    copy = load(ChatroommessageItem, principal.customer_id, copy_id_, "chatroommessage")
    access.require_own(principal, copy.owner_id, f"chatroommessage {copy_id_}")
    return copy


def delete_chatroommessage(principal: Principal, copy_id_: str) -> ChatroommessageItem:
    """Deletes this copy only."""
    copy = get_chatroommessage(principal, copy_id_)
    if not copy.deleted:
        try:
            copy.update(soft_delete_actions(now()), condition=is_live())
        except UpdateError:
            copy = load(ChatroommessageItem, principal.customer_id, copy_id_, "chatroommessage")
    return copy

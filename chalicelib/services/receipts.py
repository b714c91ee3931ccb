"""Seen-by: who has read a chatmessage, from the read markers the chatrooms
already keep (nothing is written for it).

A participant has seen a message when their chatroom's `tm_read` is at or
past the message's `tm_create`. A page costs one GetItem (the message), one
Query of the chat's partition from `member#` on (its member items, which say
who is in it and name their chatrooms, and its status item; some 200 bytes a
member, so one page of 1 MB holds any group), and one BatchGetItem per 100
chatrooms looked at: a 1,000-agent group's whole list is 12 requests.
"""

from types import SimpleNamespace

from chalicelib.auth import Principal
from chalicelib.services import access, membership, readstate
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatroomItem,
    ChatStatusItem,
    TableItem,
)
from chalicelib.storage.operations import attempt, load

BATCH_GET_MAX = 100
TOKEN_SEPARATOR = "~"  # "<the message's tm_create>~<the last agent looked at>": the lists' token shape


def _members_and_status(customer_id: str, chat_id: str) -> tuple[list[ChatMemberItem], ChatStatusItem | None]:
    """The chat's member items and status item: one Query (status sorts after member#)."""
    items = attempt(lambda: list(TableItem.query(
        ChatItem.key(customer_id, chat_id), TableItem.sk >= ChatMemberItem.SORT_PREFIX, consistent_read=True)),
        f"reading the members of chat {chat_id}")
    members = [item for item in items if isinstance(item, ChatMemberItem)]
    status = next((item for item in items if isinstance(item, ChatStatusItem)), None)
    return members, status


def _after(page: paging.PageRequest) -> str:
    """The agent id a token names (a bare timestamp: from the start)."""
    if not page.token or TOKEN_SEPARATOR not in page.token:
        return ""
    return page.token.split(TOKEN_SEPARATOR, 1)[1]


def receipts(principal: Principal, message_id: str, page: paging.PageRequest) -> paging.Page:
    """`{agent_id, tm_read}` of the participants other than the sender whose
    marker is at or past the message, by agent id; to anyone who may read it."""
    message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    members, status = _members_and_status(principal.customer_id, message.chat_id)
    if status is None:  # a chat written before member items: indexed once, then as any other
        membership.ensure_indexed(load(ChatItem, principal.customer_id, message.chat_id, "chat"))
        members, status = _members_and_status(principal.customer_id, message.chat_id)
    if not principal.is_privileged and not any(m.agent_id == principal.agent_id for m in members):
        access.require_participant(principal, load(ChatItem, principal.customer_id, message.chat_id, "chat"))
    after = _after(page)
    # Those who had a copy of it: in the chat at the send, not its sender.
    candidates = [m for m in members if m.agent_id > after and m.tm_join <= message.tm_create
                  and not readstate.is_own(message, m.agent_id)]
    found: list[SimpleNamespace] = []
    for start in range(0, len(candidates), BATCH_GET_MAX):
        chunk = candidates[start:start + BATCH_GET_MAX]
        keys = [(ChatroomItem.key(principal.customer_id, m.chatroom_id), META) for m in chunk]
        rooms = {room.pk: room for room in attempt(lambda keys=keys: list(ChatroomItem.batch_get(keys)),
                                                   f"reading the chatrooms of chat {message.chat_id}")}
        for m in chunk:
            room = rooms.get(ChatroomItem.key(principal.customer_id, m.chatroom_id))
            tm_read = (room.tm_read or room.tm_create) if room is not None and not room.deleted else None
            if tm_read is not None and tm_read >= message.tm_create:
                found.append(SimpleNamespace(agent_id=m.agent_id, tm_read=tm_read))
        if len(found) >= page.size and (len(found) > page.size or start + BATCH_GET_MAX < len(candidates)):
            found = found[:page.size]  # the next page starts after the last one shown
            return paging.Page(found, f"{message.tm_create}{TOKEN_SEPARATOR}{found[-1].agent_id}")
    return paging.Page(found, "")

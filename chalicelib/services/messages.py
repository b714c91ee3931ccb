"""Chatmessages (sent to a chat) and chatroommessages (their copies, one per
chatroom): sends, threads, edits with history, deletes (reactions: reactions.py). The stream
handler writes the copies (services/fanout.py). A copy shows its chatmessage's
text, medias, reactions and thread, so an edit or a reaction writes one item
whatever the size of the group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import metrics
from chalicelib.auth import Principal
from chalicelib.clock import NOT_DELETED, now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.services import access, files, idempotency, lifecycle, limits, membership, readstate, views
from chalicelib.services.chatrooms import owned_live_chatroom
from chalicelib.storage import paging
from chalicelib.storage.models import (
    ChatItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatmessageVersionItem,
    ChatroomItem,
    ChatroommessageItem,
    ChatStatusItem,
    TableItem,
)
from chalicelib.storage.operations import (
    CONDITION_FAILED,
    ConditionFailed,
    attempt,
    is_live,
    load,
    soft_delete_actions,
    transact,
    update,
)

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import ChatmessageCreate, ChatmessageEdit, ChatroommessageCreate

EMPTY_SOURCE = {"type": "", "target": "", "target_name": "", "name": "", "detail": ""}
CHANGE_ATTEMPTS = 5


def caller_source(principal: Principal) -> dict:
    return {**EMPTY_SOURCE, "type": "agent", "target": principal.agent_id, "target_name": principal.name}


def sent_by(message: ChatmessageItem, agent_id: str | None) -> bool:
    return agent_id is not None and readstate.from_owner(message.source, agent_id)


# ---- sends and threads --------------------------------------------------------------------

def _parent(principal: Principal, chat_id: str, parent_id: str | None) -> ChatmessageItem | None:
    """The chatmessage a reply answers: of the same chat, deleted or not."""
    if parent_id is None:
        return None
    try:
        parent = load(ChatmessageItem, principal.customer_id, parent_id, "chatmessage")
    except NotFound:
        raise BadRequest(f"parent_id: chatmessage {parent_id} not found") from None
    if parent.chat_id != chat_id:
        raise BadRequest(f"parent_id: chatmessage {parent_id} belongs to another chat")
    return parent


def _expiry(principal: Principal, tm: str) -> int | None:
    """The customer's retention (one GetItem of its settings): copies and history carry the message's expiry."""
    return lifecycle.settings_of(principal.customer_id).expires_at(tm)


def _counts_reply(parent: ChatmessageItem | None):
    """The parent's reply_count moves in the reply's own transaction: exact
    under concurrent replies, and a retried send (Idempotency-Key) writes nothing."""
    if parent is None:
        return None
    return lambda tx: tx.update(ChatmessageItem.keyed(parent.customer_id, parent.id),
                                [ChatmessageItem.reply_count.add(1)], condition=ChatmessageItem.pk.exists())


def _write_send(principal: Principal, scope: str, key: str | None, body, items: list, ids: tuple,
                parent: ChatmessageItem | None, attachment: files.Attachment):
    """The send's one write: its items, the parent's reply count, and what it
    records of its files, together (a refused send gives no one a file).
    Returns the first result's ids when the Idempotency-Key was used before."""
    adders = [add for add in (_counts_reply(parent), attachment.write if attachment.needed else None) if add]
    extra = (lambda tx: [add(tx) for add in adders]) if adders else None
    with attachment.writing() as written:
        try:
            first = idempotency.write_once(principal, scope, key, idempotency.request_hash(body.model_dump_json()),
                                           items, ids, extra=extra)
        except ConditionFailed as failed:
            attachment.explain(failed.reasons)
            raise Conflict(f"{scope[:-1]}: what it names changed meanwhile; retry") from None
        if first is None:
            written()
    return first


def send_chatmessage(principal: Principal, body: ChatmessageCreate, key: str | None):
    limits.allow_send(principal)  # first: over a limit, nothing is read or written
    membership.require_live_member(principal, body.chat_id, "chat_id: chat", mentions=body.mentions)
    parent = _parent(principal, body.chat_id, body.parent_id)
    if not principal.is_privileged:
        source = caller_source(principal)  # plain agents speak only as themselves
    elif body.source is not None:
        source = body.source.model_dump()
    else:
        source = caller_source(principal) if principal.is_agent else dict(EMPTY_SOURCE)
    attachment = files.prepare(principal, body.medias, body.chat_id)
    tm = now()
    message = ChatmessageItem.new(principal.customer_id, body.chat_id, source, body.type, body.text,
                                  attachment.stored, tm, parent_id=body.parent_id, mentions=body.mentions,
                                  expires_at=_expiry(principal, tm))
    first = _write_send(principal, "chatmessages", key, body, [message], (message.id, None), parent, attachment)
    if first:
        message = load(ChatmessageItem, principal.customer_id, first[0], "chatmessage")
    else:
        metrics.count("MessagesSent")  # a replay of an Idempotency-Key sends nothing
    return views.chatmessage(message)


def list_chatmessages(principal: Principal, chat_id: str, parent_id: str | None, page: paging.PageRequest):
    """A chat's messages, or (parent_id) one thread's replies: one Query a page."""
    membership.require_member(principal, chat_id, "chat_id: chat")
    if parent_id is None:
        result = paging.list_page(ChatmessageItem.list_key(principal.customer_id, chat_id), page)
    else:
        result = paging.list_page(ChatmessageItem.replies_key(principal.customer_id, parent_id), page,
                                  index=TableItem.order_index)
        if result.items and result.items[0].chat_id != chat_id:
            raise BadRequest(f"parent_id: chatmessage {parent_id} belongs to another chat")
    if not result.items:  # an empty page, or an unknown chat or thread?
        if principal.is_privileged:
            load(ChatItem, principal.customer_id, chat_id, "chat_id: chat")
        if parent_id is not None:
            _parent(principal, chat_id, parent_id)
    result.items = views.chatmessages(result.items)
    return result


def _readable(principal: Principal, message_id: str) -> ChatmessageItem:
    message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
    membership.require_member(principal, message.chat_id, "chat")
    return message


def get_chatmessage(principal: Principal, message_id: str):
    return views.chatmessage(_readable(principal, message_id))


def delete_chatmessage(principal: Principal, message_id: str):
    """One conditional update (live, sent by the caller unless privileged, not
    a reply); a reply also takes its one back from its parent's reply_count, in
    one transaction. The stream handler then deletes every copy."""
    condition = is_live() & ChatmessageItem.parent_id.does_not_exist() & lifecycle.not_expired(ChatmessageItem)
    if not principal.is_privileged:
        condition &= ChatmessageItem.sender_id == principal.agent_id
    keyed = ChatmessageItem.keyed(principal.customer_id, message_id)
    try:
        return views.chatmessage(update(keyed, soft_delete_actions(now()), condition, "deleting the chatmessage"))
    except ConditionFailed:
        pass
    for _ in range(CHANGE_ATTEMPTS):
        message = load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")
        if not principal.is_privileged and not sent_by(message, principal.agent_id):
            raise Forbidden(f"chatmessage {message_id} was sent by someone else; only its sender may delete it")
        if message.deleted:
            return views.chatmessage(message)  # deleting twice answers the same deleted message
        tm = now()

        def write(tx, message=message, tm=tm) -> None:
            unchanged = is_live() & (ChatmessageItem.tm_update == message.tm_update)
            tx.update(message, soft_delete_actions(tm), condition=unchanged)
            if message.parent_id:
                tx.update(ChatmessageItem.keyed(message.customer_id, message.parent_id),
                          [ChatmessageItem.reply_count.add(-1)], condition=ChatmessageItem.pk.exists())

        try:
            transact(write, "deleting the chatmessage")
        except ConditionFailed:
            continue  # changed meanwhile: read again
        message.tm_delete = message.tm_update = tm
        return views.chatmessage(message)
    raise Conflict(f"chatmessage {message_id} is changing right now; retry")


# ---- edits and history --------------------------------------------------------------------

def edit_chatmessage(principal: Principal, message_id: str, body: ChatmessageEdit):
    """Its sender only (admins too may delete a message, not put words in it),
    while the chat is live and, as for a send, they are still a participant
    of it (admins and managers, who may send to any chat, need not be). The earlier version goes to
    the history in the same transaction, which also checks the chat's status
    and the sender's member item and records the files the new medias name:
    one transaction whatever the size of the group (copies show the
    chatmessage's text)."""
    message = _editable(principal, load(ChatmessageItem, principal.customer_id, message_id, "chatmessage"))
    attachment = files.prepare(principal, body.medias, message.chat_id)
    with attachment.writing() as written:
        for _ in range(CHANGE_ATTEMPTS):
            tm = now()

            def write(tx, message=message, tm=tm) -> None:
                tx.save(ChatmessageVersionItem.of(message), condition=ChatmessageVersionItem.pk.does_not_exist())
                tx.update(message, [ChatmessageItem.text.set(body.text),
                                    ChatmessageItem.medias.set(attachment.stored), ChatmessageItem.tm_update.set(tm),
                                    ChatmessageItem.tm_edited.set(tm)],
                          condition=is_live() & (ChatmessageItem.tm_update == message.tm_update))
                chat = ChatItem.key(message.customer_id, message.chat_id)
                tx.condition_check(ChatStatusItem, chat, ChatStatusItem.SORT_KEY,
                                   condition=ChatStatusItem.tm_delete == NOT_DELETED)
                if not principal.is_privileged:  # as for a send: admins and managers need not be in the chat
                    tx.condition_check(ChatMemberItem, chat, ChatMemberItem.sort_key(principal.agent_id),
                                       condition=ChatMemberItem.pk.exists())
                if attachment.needed:
                    attachment.write(tx)

            try:
                transact(write, "editing the chatmessage")
            except ConditionFailed as failed:
                if CONDITION_FAILED in failed.reasons[2:3 if principal.is_privileged else 4]:
                    _require_editor_in_live_chat(principal, message.chat_id)  # else: a chat indexed just now
                attachment.explain(failed.reasons)
                # edited or deleted meanwhile: read again
                message = _editable(principal, load(ChatmessageItem, principal.customer_id, message_id, "chatmessage"))
                continue
            written()
            message.text, message.medias, message.tm_update = body.text, attachment.stored, tm
            return views.chatmessage(message)
    raise Conflict(f"chatmessage {message_id} is changing right now; retry")


def _editable(principal: Principal, message: ChatmessageItem) -> ChatmessageItem:
    if not sent_by(message, principal.agent_id):
        raise Forbidden(f"chatmessage {message.id}: only its sender may edit it")
    if message.deleted:
        raise NotFound(f"chatmessage {message.id} is deleted")
    return message


def _require_editor_in_live_chat(principal: Principal, chat_id: str) -> None:
    """Why an edit's check of the chat failed: deleted (404), or the sender is
    no longer in it (403). A chat written before member items is indexed here
    (and the edit tried again)."""
    chat, member = membership.chat_and_member(principal.customer_id, chat_id, principal.agent_id)
    if chat.deleted:
        raise NotFound(f"chat {chat_id} is deleted: its messages can no longer be edited")
    if member is None and not principal.is_privileged:
        raise Forbidden(f"chatmessage: only participants of chat {chat_id} may edit their messages in it")


def chatmessage_history(principal: Principal, message_id: str, page: paging.PageRequest) -> paging.Page:
    """Earlier versions, newest first, to anyone who may read the message: one Query a page."""
    message = _readable(principal, message_id)
    condition = ChatmessageVersionItem.sk < ChatmessageVersionItem.sort_key(page.token) if page.token else \
        ChatmessageVersionItem.sk.startswith(ChatmessageVersionItem.SORT_PREFIX)
    versions = attempt(lambda: list(ChatmessageVersionItem.query(
        message.pk, condition, scan_index_forward=False, limit=page.size + 1, page_size=page.size + 1,
        consistent_read=True)), f"reading the history of chatmessage {message_id}")
    versions = [v for v in versions if v.sk.startswith(ChatmessageVersionItem.SORT_PREFIX)]
    keys = [version.tm_update for version in versions[:page.size]]
    if len(versions) > page.size:
        return paging.Page(versions[:page.size], keys[-1], keys)
    return paging.Page(versions, "", keys)


# ---- chatroommessages -----------------------------------------------------------------------

def send_chatroommessage(principal: Principal, body: ChatroommessageCreate, key: str | None):
    """The caller sends into a chat through a chatroom; answers with that
    chatroom's copy at once (written with the message, in one transaction)."""
    access.require_agent(principal, "sending a chatroommessage")
    limits.allow_send(principal)  # first: over a limit, nothing is read or written
    room = owned_live_chatroom(principal, body.chatroom_id, "send")
    # its own chatroom: a participant; everyone it mentions must be one too
    membership.require_live(principal.customer_id, room.chat_id, "chat", mentions=body.mentions)
    parent = _parent(principal, room.chat_id, body.parent_id)
    attachment = files.prepare(principal, body.medias, room.chat_id)
    tm = now()
    message = ChatmessageItem.new(principal.customer_id, room.chat_id, caller_source(principal), "normal", body.text,
                                  attachment.stored, tm, origin_chatroom_id=room.id, parent_id=body.parent_id,
                                  mentions=body.mentions, expires_at=_expiry(principal, tm))
    copy = ChatroommessageItem.copy_of(message, room.id, room.owner_id)
    first = _write_send(principal, "chatroommessages", key, body, [message, copy], (message.id, copy.id), parent,
                        attachment)
    if first:
        return get_chatroommessage(principal, first[1])
    metrics.count("MessagesSent")
    return views.chatroommessage(copy, message)


def list_chatroommessages(principal: Principal, chatroom_id: str, page: paging.PageRequest) -> paging.Page:
    """One Query, and one BatchGetItem of the page's chatmessages. Every copy
    names its chatroom's owner, so a page with items answers who may see it;
    only an empty page needs the chatroom read (to tell an unknown or another
    agent's chatroom from an empty one)."""
    result = paging.list_page(ChatroommessageItem.list_key(principal.customer_id, chatroom_id), page)
    if result.items:
        access.require_own(principal, result.items[0].owner_id, f"chatroom {chatroom_id}")
    else:
        room = load(ChatroomItem, principal.customer_id, chatroom_id, "chatroom_id: chatroom")
        access.require_own(principal, room.owner_id, f"chatroom {chatroom_id}")
    result.items = views.chatroommessages(result.items)
    return result


def _own_copy(principal: Principal, copy_id: str) -> ChatroommessageItem:
    copy = load(ChatroommessageItem, principal.customer_id, copy_id, "chatroommessage")
    access.require_own(principal, copy.owner_id, f"chatroommessage {copy_id}")
    return copy


def get_chatroommessage(principal: Principal, copy_id: str):
    return views.chatroommessages([_own_copy(principal, copy_id)])[0]


def delete_chatroommessage(principal: Principal, copy_id: str):
    """Deletes this copy only, and its chatroom's read state follows in the
    same transaction (an unread copy takes its one back; the newest copy
    hands the preview to the one before it)."""
    for _ in range(CHANGE_ATTEMPTS):
        copy = _own_copy(principal, copy_id)
        found = views.fetch({(ChatroomItem.key(copy.customer_id, copy.chatroom_id), "#"),
                             (ChatmessageItem.key(copy.customer_id, copy.messagechat_id), "#")},
                            "reading the copy's chatroom")
        message = found.get(ChatmessageItem.key(copy.customer_id, copy.messagechat_id))
        if copy.deleted:
            return views.chatroommessage(copy, message)
        room = found.get(ChatroomItem.key(copy.customer_id, copy.chatroom_id))
        tm = now()
        write = _copy_deletion(copy, room, message, tm)
        try:
            transact(write, "deleting the chatroommessage")
        except ConditionFailed:
            continue  # the chatroom changed meanwhile: read again
        copy.tm_delete = copy.tm_update = tm
        return views.chatroommessage(copy, message)
    raise Conflict(f"chatroommessage {copy_id} is changing right now; retry")


def _copy_deletion(copy, room: ChatroomItem | None, message: ChatmessageItem, tm: str):
    """The transaction that deletes one copy and moves its chatroom's read state."""
    room_update = None
    check = None
    if room is not None and not room.deleted:
        state = readstate.RoomState.of(room)
        replacement = None
        if state.newest is not None and state.newest.copy_id == copy.id:
            replacement = readstate.newest_other_copy(room, copy.id)
            check = replacement  # the index lags: the copy before must still be live
        room_update = readstate.on_copy_deleted(room, copy, message, state, replacement)

    def write(tx) -> None:
        tx.update(copy, soft_delete_actions(tm), condition=is_live())
        if room_update is not None:
            tx.update(room, room_update[0], condition=room_update[1])
        if check is not None:
            tx.condition_check(ChatroommessageItem, ChatroommessageItem.key(room.customer_id, check.copy_id), "#",
                               condition=is_live())

    return write

"""What a resource shows beyond its own item. A chatroom shows its chat's
type and participants (stored once, in the chat), its read state, and a
preview of its newest copy; a copy shows its chatmessage's text, medias,
reactions and thread (stored once, in the chatmessage, so an edit or a
reaction writes one item whatever the size of the group). A page is joined
with one BatchGetItem per 100 distinct items it needs."""

from types import SimpleNamespace

from chalicelib.schemas.limits import REACTION_OWNERS_SHOWN
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatmessageItem,
    ChatmessageVersionItem,
    ChatroomItem,
    TableItem,
)
from chalicelib.storage.operations import attempt

BATCH_GET_MAX = 100
UNREAD_SHOWN_MAX = 1000  # the contract: exact up to 1,000, then 1,000
PREVIEW_TEXT_MAX = 200


def fetch(keys: set[tuple[str, str]], what: str) -> dict[str, TableItem]:
    """Items by partition key, one BatchGetItem per 100 keys."""
    ordered = sorted(keys)
    found: dict[str, TableItem] = {}
    for start in range(0, len(ordered), BATCH_GET_MAX):
        chunk = ordered[start:start + BATCH_GET_MAX]
        found.update((item.pk, item) for item in attempt(lambda chunk=chunk: list(TableItem.batch_get(chunk)), what))
    return found


# ---- chatmessages -------------------------------------------------------------------

def plain(value) -> dict:
    """A map attribute (or a dict, or nothing) as a plain dict."""
    if value is None:
        return {}
    return value.as_dict() if hasattr(value, "as_dict") else dict(value)


def reaction_summary(reactions) -> tuple[dict, dict]:
    """Counts per emoji and each emoji's newest owners, of whole reactions
    ({emoji, owner_type, owner_id, tm_create}): for messages written before
    the summary was kept (services/reactions.py)."""
    counts: dict[str, int] = {}
    newest: dict[str, list] = {}
    for r in sorted(reactions, key=lambda r: (r["tm_create"], r["owner_id"]), reverse=True):
        counts[r["emoji"]] = counts.get(r["emoji"], 0) + 1
        owners = newest.setdefault(r["emoji"], [])
        if len(owners) < REACTION_OWNERS_SHOWN:
            owners.append({"owner_type": r["owner_type"], "owner_id": r["owner_id"], "tm_create": r["tm_create"]})
    return counts, newest


def metadata_of(message: ChatmessageItem | None) -> dict:
    """VoIPBIN talk's `reactions` list, bounded: each emoji's newest owners
    (oldest first, as ever), and every emoji's count beside it."""
    if message is None:
        return {"reactions": [], "reaction_counts": {}}
    if message.reaction_counts is not None:
        counts, newest = plain(message.reaction_counts), plain(message.reaction_newest)
    else:  # written before the summary: its map as it is
        counts, newest = reaction_summary(plain(message.reactions).values())
    reactions = [{"emoji": emoji, "owner_type": o["owner_type"], "owner_id": o["owner_id"], "tm_create": o["tm_create"]}
                 for emoji, owners in newest.items() for o in owners]
    reactions.sort(key=lambda r: (r["tm_create"], r["owner_id"], r["emoji"]))
    return {"reactions": reactions, "reaction_counts": {emoji: int(n) for emoji, n in counts.items()}}


def chatmessage(message: ChatmessageItem) -> SimpleNamespace:
    return SimpleNamespace(
        **{name: getattr(message, name) for name in (
            "id", "customer_id", "chat_id", "source", "type", "text", "medias", "tm_create", "tm_update", "tm_delete")},
        metadata=metadata_of(message),
        parent_id=message.parent_id or "",
        reply_count=int(message.reply_count or 0),
        mentions=list(message.mentions or []),
    )


def chatmessages(messages: list[ChatmessageItem]) -> list[SimpleNamespace]:
    return [chatmessage(message) for message in messages]


# ---- chatroommessages ----------------------------------------------------------------

def chatroommessage(copy, message: ChatmessageItem | None) -> SimpleNamespace:
    """A copy as its chatroom shows it; `message` is its chatmessage (None
    only if that is gone, which soft deletes never do)."""
    shared = message if message is not None else copy
    return SimpleNamespace(
        id=copy.id, customer_id=copy.customer_id, chatroom_id=copy.chatroom_id, messagechat_id=copy.messagechat_id,
        source=copy.source, type=copy.type, text=shared.text, medias=shared.medias,
        tm_create=copy.tm_create,
        # its own change (a delete) or its chatmessage's (an edit, a reaction), whichever is later
        tm_update=max(copy.tm_update, message.tm_update if message is not None else copy.tm_update),
        tm_delete=copy.tm_delete, owner_type="agent", owner_id=copy.owner_id,
        metadata=metadata_of(message),
        parent_id=(message.parent_id or "") if message is not None else "",
        mentions=list(message.mentions or []) if message is not None else [],
    )


def chatroommessages(copies: list, known: dict[str, ChatmessageItem] | None = None) -> list[SimpleNamespace]:
    """Copies of a page with their chatmessages, and their chatrooms (a page has
    one): one BatchGetItem per 100 distinct items. A copy in a chatroom whose
    owner has left shows its chatmessage as it was then (as_of)."""
    items = dict(known or {})
    wanted = {key for copy in copies for key in (ChatmessageItem.key(copy.customer_id, copy.messagechat_id),
                                                  ChatroomItem.key(copy.customer_id, copy.chatroom_id))}
    items.update(fetch({(key, META) for key in wanted if key not in items}, "reading the copies' chatmessages"))
    shown = []
    for copy in copies:
        message = items.get(ChatmessageItem.key(copy.customer_id, copy.messagechat_id))
        room = items.get(ChatroomItem.key(copy.customer_id, copy.chatroom_id))
        if message is not None and room is not None and room.deleted:
            message = as_of(message, room.tm_delete)
        shown.append(chatroommessage(copy, message))
    return shown


def as_of(message: ChatmessageItem, when: str):
    """The chatmessage as it was at `when`: itself if not edited since, else
    the version of its history then in force (one Query). Its text's own time
    is its last edit's, which a later delete does not move (messages edited
    before tm_edited existed fall back on tm_update)."""
    if (message.tm_edited or message.tm_update) <= when:
        return message
    versions = attempt(lambda: list(ChatmessageVersionItem.query(
        message.pk, ChatmessageVersionItem.sk.between(ChatmessageVersionItem.sort_key(""),
                                                      ChatmessageVersionItem.sort_key(when)),
        scan_index_forward=False, limit=1, page_size=1)), f"reading the history of chatmessage {message.id}")
    if not versions:  # edited, but not yet then: it was as first sent
        return message
    then = ChatmessageItem.from_raw_data(message.serialize())
    then.text, then.medias, then.tm_update = versions[0].text, versions[0].medias, versions[0].tm_update
    return then


# ---- chatrooms --------------------------------------------------------------------------

def read_state(room) -> tuple[int, str, str]:
    """(unread, tm_read, tm_activity), with the contract's starting values for
    chatrooms written before read state existed."""
    return int(room.unread or 0), room.tm_read or room.tm_create, room.tm_activity or room.tm_create


def chatroom(room, chat: ChatItem | None, last: ChatmessageItem | None) -> SimpleNamespace:
    """A chatroom as its owner sees it; one they were removed from shows the
    chat as it was when they left (its participants, its preview then)."""
    unread, tm_read, tm_activity = read_state(room)
    participant_ids, chat_type = (chat.participant_ids, chat.type) if chat else ([], "unknown")
    if room.deleted and getattr(room, "left_participant_ids", None) is not None:
        participant_ids, chat_type = room.left_participant_ids, room.left_type or chat_type
    if room.deleted and last is not None:
        last = as_of(last, room.tm_delete)
    preview = None
    if room.last_copy_id and last is not None:
        preview = {"id": room.last_copy_id, "source": last.source, "type": last.type,
                   "text": last.text[:PREVIEW_TEXT_MAX], "tm_create": last.tm_create}
    return SimpleNamespace(
        id=room.id, customer_id=room.customer_id, type=chat_type, chat_id=room.chat_id,
        owner_id=room.owner_id, participant_ids=participant_ids, name=room.name,
        detail=room.detail, tm_create=room.tm_create, tm_update=room.tm_update, tm_delete=room.tm_delete,
        unread_count=min(unread, UNREAD_SHOWN_MAX), tm_read=tm_read, tm_activity=tm_activity,
        last_chatroommessage=preview,
        mention_count=min(max(int(room.mention_count or 0), 0), UNREAD_SHOWN_MAX),
    )


def chatrooms(rooms: list, known: dict[str, TableItem] | None = None) -> list[SimpleNamespace]:
    """Chatrooms of a page with their chats and newest copies' chatmessages:
    one BatchGetItem per 100 distinct items (a page of 50 chatrooms: one)."""
    items = dict(known or {})
    wanted = set()
    for room in rooms:
        wanted.add((ChatItem.key(room.customer_id, room.chat_id), META))
        if room.last_messagechat_id:
            wanted.add((ChatmessageItem.key(room.customer_id, room.last_messagechat_id), META))
    items.update(fetch({key for key in wanted if key[0] not in items}, "reading the chatrooms' chats"))
    return [chatroom(room, items.get(ChatItem.key(room.customer_id, room.chat_id)),
                     items.get(ChatmessageItem.key(room.customer_id, room.last_messagechat_id))
                     if room.last_messagechat_id else None)
            for room in rooms]

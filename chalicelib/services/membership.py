"""Who is in a chat, answered without reading its participant list.

The list lives once, in the chat item. Beside it, in the chat's partition, a
ChatStatusItem says whether the chat is live and one ChatMemberItem per
participant names their chatroom; all are written in the same transaction as
the list. So a send checks membership and liveness in one BatchGetItem of two
small items, and the fan-out finds every chatroom in one Query, whatever the
size of the group. Chats written before these items existed are indexed on
first use (`ensure_indexed`), or all at once by `python -m devtools.migrate`.
"""

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.services import access
from chalicelib.storage import paging
from chalicelib.storage.models import META, ChatItem, ChatMemberItem, ChatroomItem, ChatStatusItem, TableItem
from chalicelib.storage.operations import ConditionFailed, attempt, load, load_live, update


def index_items(chat: ChatItem, rooms: list[ChatroomItem]) -> list:
    """The status and member items of a chat, to write with it."""
    return [ChatStatusItem.of(chat)] + [ChatMemberItem.of(room, chat) for room in rooms]


def members(customer_id: str, chat_id: str) -> list[ChatMemberItem]:
    """Every participant of an indexed chat, with their chatroom: one Query
    (a page holds some 7,000 members)."""
    return attempt(lambda: list(ChatMemberItem.query(
        ChatItem.key(customer_id, chat_id), ChatMemberItem.sk.startswith(ChatMemberItem.SORT_PREFIX),
        consistent_read=True)), f"reading the members of chat {chat_id}")


def member(customer_id: str, chat_id: str, agent_id: str) -> ChatMemberItem | None:
    try:
        return attempt(lambda: ChatMemberItem.get(ChatItem.key(customer_id, chat_id), ChatMemberItem.sort_key(agent_id),
                                                  consistent_read=True), f"reading a member of chat {chat_id}")
    except DoesNotExist:
        return None


def require_live_member(principal: Principal, chat_id: str, what: str, mentions: list[str] = ()) -> None:
    """Before a send: the chat is live and the caller is in it (admins,
    managers and customer tokens need not be), as is everyone it mentions."""
    require_live(principal.customer_id, chat_id, what, None if principal.is_privileged else principal.agent_id,
                 mentions)


def require_live(customer_id: str, chat_id: str, what: str, member_id: str | None = None,
                 mentions: list[str] = ()) -> None:
    """The chat is live (and `member_id`, if given, is in it, and so is every
    agent `mentions` names, else 400 naming `mentions`): one BatchGetItem of
    two small items (and one per mention, at most 50), whatever the size of the group."""
    pk = ChatItem.key(customer_id, chat_id)
    wanted = ([member_id] if member_id else []) + [agent for agent in mentions if agent != member_id]
    keys = [(pk, ChatStatusItem.SORT_KEY)] + [(pk, ChatMemberItem.sort_key(agent)) for agent in wanted]
    found = attempt(lambda: list(TableItem.batch_get(keys, consistent_read=True)), f"reading chat {chat_id}")
    status = next((item for item in found if isinstance(item, ChatStatusItem)), None)
    if status is None:  # unknown, or written before status items: the chat itself says
        chat = load_live(ChatItem, customer_id, chat_id, what)
        present = set(chat.participant_ids)
    else:
        if status.deleted:
            raise NotFound(f"{what} {chat_id} is deleted")
        present = {item.agent_id for item in found if isinstance(item, ChatMemberItem)}
    if member_id and member_id not in present:
        raise Forbidden(f"only participants of chat {chat_id} may do this")
    strangers = [agent for agent in mentions if agent not in present]
    if strangers:
        raise BadRequest(f"mentions: {', '.join(strangers[:5])} not a participant of chat {chat_id} "
                         f"(mention only participants, at most 50)")


def chat_and_member(customer_id: str, chat_id: str, agent_id: str) -> tuple[ChatItem, ChatMemberItem | None]:
    """The chat (404 if unknown) and one participant's member item, in one BatchGetItem."""
    pk = ChatItem.key(customer_id, chat_id)
    found = attempt(lambda: list(TableItem.batch_get([(pk, META), (pk, ChatMemberItem.sort_key(agent_id))],
                                                     consistent_read=True)), f"reading chat {chat_id}")
    chat = next((item for item in found if isinstance(item, ChatItem)), None)
    if chat is None:
        raise NotFound(f"chat {chat_id} not found")
    if not chat.members_indexed:
        chat = ensure_indexed(chat)
        return chat, member(customer_id, chat_id, agent_id)
    return chat, next((item for item in found if isinstance(item, ChatMemberItem)), None)


def require_member(principal: Principal, chat_id: str, what: str) -> None:
    """Before a read by a plain agent: they are (still) in the chat. One
    GetItem of their member item; the chat is read only when it is missing."""
    if principal.is_privileged or member(principal.customer_id, chat_id, principal.agent_id) is not None:
        return
    access.require_participant(principal, load(ChatItem, principal.customer_id, chat_id, what))


# ---- chats written before member items ---------------------------------------------

def ensure_indexed(chat: ChatItem) -> ChatItem:
    """Write the status and member items of a chat that has none yet (written
    before they existed), then mark it indexed. Idempotent."""
    if chat.members_indexed:
        return chat
    live = {room.owner_id: room for room in attempt(
        lambda: paging.live_related(ChatroomItem.by_chat_key(chat.customer_id, chat.id)), f"reading chat {chat.id}")}
    missing = [p for p in chat.participant_ids if p not in live]
    rooms = list(live.values()) + _newest_rooms(chat, missing)
    items = index_items(chat, rooms)

    def write() -> None:
        with ChatMemberItem.batch_write() as batch:
            for item in items:
                batch.save(item)

    attempt(write, f"indexing the members of chat {chat.id}")
    try:
        return update(ChatItem.keyed(chat.customer_id, chat.id), [ChatItem.members_indexed.set(True)],
                      ChatItem.version == chat.version, f"indexing chat {chat.id}")
    except ConditionFailed:  # its membership changed meanwhile: index it again from the new list
        return ensure_indexed(load(ChatItem, chat.customer_id, chat.id, "chat"))


def _newest_rooms(chat: ChatItem, participants: list[str]) -> list[ChatroomItem]:
    """The newest chatroom of each participant whose chatroom is deleted (by
    its owner): chatroom ids derive from (chat, owner, version at joining)."""
    if not participants:
        return []
    keys = [(ChatroomItem.key(chat.customer_id, ChatroomItem.derived_id(chat.id, p, version)), META)
            for p in participants for version in range(1, chat.version + 1)]
    found = []
    for start in range(0, len(keys), 100):
        found += attempt(lambda start=start: list(ChatroomItem.batch_get(keys[start:start + 100])),
                         f"reading the chatrooms of chat {chat.id}")
    newest: dict[str, ChatroomItem] = {}
    for room in found:
        if room.owner_id not in newest or room.chat_version > newest[room.owner_id].chat_version:
            newest[room.owner_id] = room
    return list(newest.values())

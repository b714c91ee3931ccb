"""Files: attachments uploaded straight to S3 through presigned POSTs, sent in
messages as medias `{type: file, file_id}`, downloaded through presigned GETs.

- `create_file` writes the record (pending) and signs a POST that S3 accepts
  only for the file's key, its declared size and type, for 15 minutes.
- `prepare` (called by sends and edits, before anything is written) checks
  every file a message names: a file of the caller's customer that they may
  read, not deleted; at its first send, its upload is copied to a key of its
  own that downloads use and that its upload form cannot reach (a second POST
  of the form neither replaces nor expires what is downloaded), and one HEAD
  checks the copy has the declared size and type (where the store does not
  enforce POST policies, as moto, this is the check). The `Attachment` it
  returns writes, in the message's own transaction, the file as uploaded and
  the chats it was sent in (in the file's partition): a refused send gives
  no one the file. Then the upload is removed (or, refused, the copy).
- `get_file` answers the record, with a presigned GET once uploaded, to its
  uploader, customer tokens, admins and managers, and agents of a chat it
  was sent in (one Query of those chats, one BatchGetItem of the caller's
  member items in them); to anyone else, 404.
- `delete_file` (its uploader, customer tokens, admins, managers) removes the
  objects and marks the record deleted; messages keep their media.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from chalicelib.auth import Principal
from chalicelib.clock import new_id, now
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError
from chalicelib.storage import objects
from chalicelib.storage.models import META, ChatItem, ChatMemberItem, FileChatItem, FileItem, TableItem
from chalicelib.storage.operations import CONDITION_FAILED, ConditionFailed, attempt, is_live, load, update

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import FileCreate

# An upload must be sent in a message within this time. The bucket's lifecycle
# rule removes pending uploads a day (rounded up to midnight UTC) after their
# upload, and the presigned POST lives 15 minutes: an hour of margin.
ATTACH_WITHIN_SECONDS = 23 * 3600
RECORD_TTL_SECONDS = 25 * 3600  # DynamoDB's TTL then drops a record never sent
BATCH_GET_MAX = 100
log = logging.getLogger(__name__)


def create_file(principal: Principal, body: FileCreate) -> FileItem:
    """Sign the upload first, so a failure leaves nothing behind; then one PutItem."""
    owner_type, owner_id = ("agent", principal.agent_id) if principal.is_agent else ("customer", principal.customer_id)
    created = time.time()
    file = FileItem.new(principal.customer_id, owner_type, owner_id, body.name, body.content_type, body.size, now(),
                        int(created) + RECORD_TTL_SECONDS)
    upload = objects.presigned_post(file.object_key, file.content_type, file.size)
    attempt(file.save, "storing the file")
    file.upload = upload
    return file


def get_file(principal: Principal, file_id: str) -> FileItem:
    file = _readable(principal, file_id)
    if file.status == "uploaded":
        file.download_url = objects.presigned_get(file.download_key, file.name)
    return file


def delete_file(principal: Principal, file_id: str) -> FileItem:
    """Remove the objects first (so a deleted record always means they are
    gone), then mark the record: one DeleteObject (two once sent: the upload
    and its sent copy) and one conditional UpdateItem. Deleting again removes
    any late upload and answers the same."""
    file = _readable(principal, file_id)
    if not principal.is_privileged and not _owned(principal, file):
        raise Forbidden(f"file {file_id} was uploaded by someone else; only its uploader, an admin or a manager "
                        "may delete it")
    objects.remove(file.object_key)
    if file.sent_key:
        objects.remove(file.sent_key)
    if file.deleted:
        return file
    when = now()
    actions = [FileItem.status.set("deleted"), FileItem.tm_delete.set(when), FileItem.tm_update.set(when),
               FileItem.expires_at.remove()]
    try:
        return update(FileItem.keyed(principal.customer_id, file_id), actions, is_live(), "deleting the file")
    except ConditionFailed:  # deleted meanwhile
        return load(FileItem, principal.customer_id, file_id, "file")


class Attachment:
    """What a message's medias do to the files they name: checked (and, at a
    file's first send, its upload copied) before the message is written, then
    recorded in the message's own transaction (`write`), so a refused send
    gives no one a file. `stored`: the medias as stored."""

    def __init__(self, stored: list[dict], chat_id: str, files: list[FileItem] = (), linked: set[str] = frozenset(),
                 sent_keys: dict[str, str] | None = None, field=None):
        self.stored, self.chat_id = stored, chat_id
        self._files, self._linked, self._field = list(files), linked, field
        self._sent_keys = sent_keys or {}  # file id -> the copy this request made of its upload
        self.needed = bool(self._files)  # anything to add to the message's transaction
        self._first = 0  # where its actions start in the transaction
        self._actions: list[FileItem | None] = []  # per action: its file (None: the file's link)

    def write(self, tx) -> None:
        """Add to the message's transaction: each file sent for the first time
        marked uploaded with its copy (on the condition that it is still
        pending and live), each other one checked live, each not yet linked to
        this chat linked."""
        self._first, self._actions = len(tx.kinds), []
        when = now()
        for file in self._files:
            keyed = FileItem.keyed(file.customer_id, file.id)
            if file.id in self._sent_keys:
                tx.update(keyed, actions=[FileItem.status.set("uploaded"),
                                          FileItem.sent_key.set(self._sent_keys[file.id]),
                                          FileItem.tm_update.set(when), FileItem.expires_at.remove()],
                          condition=is_live() & (FileItem.status == "pending"))
            else:
                tx.condition_check(FileItem, keyed.pk, META, condition=is_live())
            self._actions.append(file)
            if file.pk not in self._linked:
                tx.save(FileChatItem.of(file, self.chat_id))
                self._actions.append(None)

    def explain(self, reasons: list) -> None:
        """A refused transaction: raise what a file's refused condition means
        (deleted: 400; sent by another request meanwhile: 409, retry)."""
        mine = reasons[self._first:self._first + len(self._actions)]
        for file, reason in zip(self._actions, mine, strict=False):
            if file is None or reason != CONDITION_FAILED:
                continue
            current = load(FileItem, file.customer_id, file.id, "file")
            if current.deleted:
                raise BadRequest(f"{self._field(file.id)}: file {file.id} is deleted")
            raise Conflict(f"{self._field(file.id)}: file {file.id} was sent by another request at the same "
                           "moment; retry")

    def settle(self, written: bool) -> None:
        """After the transaction: written, the uploads now copied are removed
        (their forms can change nothing that is downloaded); not written, the
        copies this request made are. Best effort either way: a leftover upload
        is tagged pending (the lifecycle rule removes it within a day)."""
        for file in self._files:
            if file.id in self._sent_keys:
                _remove_quietly(file.object_key if written else self._sent_keys[file.id])

    @contextlib.contextmanager
    def writing(self):
        """`with attachment.writing() as done: ...; done()` once the message is written."""
        written = []
        try:
            yield lambda: written.append(True)
        finally:
            self.settle(bool(written))


def prepare(principal: Principal, medias: list, chat_id: str) -> Attachment:
    """The medias of a message to `chat_id`; every file they name checked.
    BadRequest names `medias[i].file_id` and the reason. Sends naming no file
    cost nothing; a file already sent in this chat, one BatchGetItem; a first
    send, a CopyObject and a HeadObject of the copy (what downloads will get)."""
    stored = [media.stored() for media in medias]
    positions: dict[str, int] = {}
    for index, media in enumerate(stored):
        if media.get("type") == "file":
            positions.setdefault(media["file_id"], index)
    if not positions:
        return Attachment(stored, chat_id)
    customer_id = principal.customer_id
    keys = []
    for file_id in positions:
        pk = FileItem.key(customer_id, file_id)
        keys += [(pk, META), (pk, FileChatItem.sort_key(chat_id))]
    found = attempt(lambda: list(TableItem.batch_get(keys, consistent_read=True)), "reading the files")
    files = {item.id: item for item in found if isinstance(item, FileItem)}
    linked = {item.pk for item in found if isinstance(item, FileChatItem)}

    def field(file_id: str) -> str:
        return f"medias[{positions[file_id]}].file_id"

    for file_id in positions:
        file = files.get(file_id)
        if file is None or (file.pk not in linked and not _may_read(principal, file)):
            raise BadRequest(f"{field(file_id)}: no file {file_id} (upload one with POST /v1.0/files)")
        if file.deleted:
            raise BadRequest(f"{field(file_id)}: file {file_id} is deleted")
    sent_keys: dict[str, str] = {}
    try:
        for file in files.values():
            if file.status == "pending":
                sent_keys[file.id] = _copy_upload(file, field(file.id))
    except BaseException:
        for sent_key in sent_keys.values():
            _remove_quietly(sent_key)
        raise
    writes = [file for file in files.values() if file.status == "pending" or file.pk not in linked]
    return Attachment(stored, chat_id, writes, linked, sent_keys, field)


def _copy_upload(file: FileItem, field: str) -> str:
    """The first send of a file: its upload, sent within the time allowed, is
    copied to a key of its own (one CopyObject) that downloads will use, and
    the copy must have the declared size and type (one HeadObject). A wrong
    upload is removed, with its copy. Returns the copy's key."""
    if _expired(file):
        raise BadRequest(f"{field}: file {file.id} was not sent within {ATTACH_WITHIN_SECONDS // 3600} hours of "
                         "its creation and its upload is removed; upload it again as a new file")
    sent_key = objects.object_key(file.customer_id, new_id())
    if not objects.copy_sent(file.object_key, sent_key):
        raise BadRequest(f"{field}: file {file.id} is not uploaded yet: POST it to its upload url first")
    try:
        stored = objects.head(sent_key)
    except ServiceError:
        _remove_quietly(sent_key)
        raise
    if stored is None or stored.size != file.size or stored.content_type.lower() != file.content_type:
        objects.remove(file.object_key)
        objects.remove(sent_key)
        size, content_type = (stored.size, stored.content_type) if stored else (0, "")
        raise BadRequest(f"{field}: the upload of file {file.id} is {size} bytes of "
                         f"{content_type or 'no type'}, not the declared {file.size} bytes of "
                         f"{file.content_type}; it was removed: upload it again while its upload url is valid, "
                         "or create a new file")
    return sent_key


def _remove_quietly(key: str) -> None:
    """Cleaning up after the answer is decided: a failure is logged, never answered."""
    try:
        objects.remove(key)
    except ServiceError as error:
        log.warning("could not remove s3 object %s (%s); the lifecycle rule or a later delete will", key, error)


# ---- who may read a file ---------------------------------------------------------------

def _readable(principal: Principal, file_id: str) -> FileItem:
    """The file, if the caller may read it; else 404, as if it were not there."""
    file = load(FileItem, principal.customer_id, file_id, "file")
    if (file.status == "pending" and _expired(file)) or not _may_read(principal, file):
        raise NotFound(f"file {file_id} not found")
    return file


def _owned(principal: Principal, file: FileItem) -> bool:
    return principal.is_agent and file.owner_type == "agent" and file.owner_id == principal.agent_id


def _may_read(principal: Principal, file: FileItem) -> bool:
    if principal.is_privileged or _owned(principal, file):
        return True
    chats = attempt(lambda: [link.chat_id for link in FileChatItem.query(
        file.pk, FileChatItem.sk.startswith(FileChatItem.SORT_PREFIX), consistent_read=True)],
        f"reading the chats of file {file.id}")
    member = ChatMemberItem.sort_key(principal.agent_id)
    for start in range(0, len(chats), BATCH_GET_MAX):
        keys = [(ChatItem.key(file.customer_id, chat), member) for chat in chats[start:start + BATCH_GET_MAX]]
        if attempt(lambda keys=keys: list(ChatMemberItem.batch_get(keys, consistent_read=True)),
                   f"reading the chats of file {file.id}"):
            return True
    return False


def _expired(file: FileItem) -> bool:
    """A pending file past the time to send it (its upload may be gone): its
    record expires RECORD_TTL_SECONDS after its creation."""
    if file.expires_at is None:
        return False
    created = file.expires_at - RECORD_TTL_SECONDS
    return time.time() > created + ATTACH_WITHIN_SECONDS

"""Files: attachments uploaded straight to S3 through presigned POSTs, sent in
messages as medias `{type: file, file_id}`, downloaded through presigned GETs.

- `create_file` writes the record (pending) and signs a POST that S3 accepts
  only for the file's key, its declared size and type, for 15 minutes.
- `attach` (called by the sends) checks every file a message names: a file of
  the caller's customer that they may read, not deleted; at its first send,
  one HEAD checks the stored object has the declared size and type (where
  the store does not enforce POST policies, as moto, this is the check) and
  marks it uploaded. It records, in the file's partition, the chats the file
  was sent in.
- `get_file` answers the record, with a presigned GET once uploaded, to its
  uploader, customer tokens, admins and managers, and agents of a chat it
  was sent in (one Query of those chats, one BatchGetItem of the caller's
  member items in them); to anyone else, 404.
- `delete_file` (its uploader, customer tokens, admins, managers) removes the
  object and marks the record deleted; messages keep their media.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.storage import objects
from chalicelib.storage.models import META, ChatItem, ChatMemberItem, FileChatItem, FileItem, TableItem
from chalicelib.storage.operations import CONDITION_FAILED, ConditionFailed, attempt, is_live, load, transact, update

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import FileCreate

# An upload must be sent in a message within this time. The bucket's lifecycle
# rule removes pending uploads a day (rounded up to midnight UTC) after their
# upload, and the presigned POST lives 15 minutes: an hour of margin.
ATTACH_WITHIN_SECONDS = 23 * 3600
RECORD_TTL_SECONDS = 25 * 3600  # DynamoDB's TTL then drops a record never sent
BATCH_GET_MAX = 100


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
        file.download_url = objects.presigned_get(file.object_key, file.name)
    return file


def delete_file(principal: Principal, file_id: str) -> FileItem:
    """Remove the object first (so a deleted record always means the object is
    gone), then mark the record: one DeleteObject and one conditional
    UpdateItem. Deleting again removes any late upload and answers the same."""
    file = _readable(principal, file_id)
    if not principal.is_privileged and not _owned(principal, file):
        raise Forbidden(f"file {file_id} was uploaded by someone else; only its uploader, an admin or a manager "
                        "may delete it")
    objects.remove(file.object_key)
    if file.deleted:
        return file
    when = now()
    actions = [FileItem.status.set("deleted"), FileItem.tm_delete.set(when), FileItem.tm_update.set(when),
               FileItem.expires_at.remove()]
    try:
        return update(FileItem.keyed(principal.customer_id, file_id), actions, is_live(), "deleting the file")
    except ConditionFailed:  # deleted meanwhile
        return load(FileItem, principal.customer_id, file_id, "file")


def attach(principal: Principal, medias: list, chat_id: str) -> list[dict]:
    """The medias of a message to `chat_id`, as stored; every file they name
    checked, and recorded as sent in this chat. BadRequest names
    `medias[i].file_id` and the reason. Sends naming no file cost nothing; a
    file already sent in this chat, one BatchGetItem."""
    stored = [media.stored() for media in medias]
    positions: dict[str, int] = {}
    for index, media in enumerate(stored):
        if media.get("type") == "file":
            positions.setdefault(media["file_id"], index)
    if not positions:
        return stored
    customer_id = principal.customer_id
    keys = []
    for file_id in positions:
        pk = FileItem.key(customer_id, file_id)
        keys += [(pk, META), (pk, FileChatItem.sort_key(chat_id))]
    found = attempt(lambda: list(TableItem.batch_get(keys, consistent_read=True)), "reading the files")
    files = {item.id: item for item in found if isinstance(item, FileItem)}
    sent_here = {item.pk for item in found if isinstance(item, FileChatItem)}

    def field(file_id: str) -> str:
        return f"medias[{positions[file_id]}].file_id"

    for file_id in positions:
        file = files.get(file_id)
        if file is None or (file.pk not in sent_here and not _may_read(principal, file)):
            raise BadRequest(f"{field(file_id)}: no file {file_id} (upload one with POST /v1.0/files)")
        if file.deleted:
            raise BadRequest(f"{field(file_id)}: file {file_id} is deleted")
        if file.status == "pending":
            _check_upload(file, field(file_id))
    writes = [file for file in files.values() if file.status == "pending" or file.pk not in sent_here]
    if writes:
        _record(writes, chat_id, sent_here, field)
    return stored


def _check_upload(file: FileItem, field: str) -> None:
    """The first send of a file: its upload is there, within the time allowed,
    with the declared size and type (one HeadObject), then out of the
    lifecycle rule's reach (one PutObjectTagging). A wrong object is removed."""
    if _expired(file):
        raise BadRequest(f"{field}: file {file.id} was not sent within {ATTACH_WITHIN_SECONDS // 3600} hours of "
                         "its creation and its upload is removed; upload it again as a new file")
    stored = objects.head(file.object_key)
    if stored is None:
        raise BadRequest(f"{field}: file {file.id} is not uploaded yet: POST it to its upload url first")
    if stored.size != file.size or stored.content_type.lower() != file.content_type:
        objects.remove(file.object_key)
        raise BadRequest(f"{field}: the upload of file {file.id} is {stored.size} bytes of "
                         f"{stored.content_type or 'no type'}, not the declared {file.size} bytes of "
                         f"{file.content_type}; it was removed: upload it again while its upload url is valid, "
                         "or create a new file")
    if not objects.mark_attached(file.object_key):
        raise BadRequest(f"{field}: file {file.id} is not uploaded yet: POST it to its upload url first")


def _record(files: list[FileItem], chat_id: str, sent_here: set[str], field) -> None:
    """One transaction: each pending file marked uploaded (and its TTL
    removed), each file not yet linked to this chat linked, all on the
    condition that none was deleted meanwhile."""
    when = now()

    def build(tx) -> None:
        for file in files:
            keyed = FileItem.keyed(file.customer_id, file.id)
            if file.status == "pending":
                tx.update(keyed, actions=[FileItem.status.set("uploaded"), FileItem.tm_update.set(when),
                                          FileItem.expires_at.remove()], condition=is_live())
            else:
                tx.condition_check(FileItem, keyed.pk, META, condition=is_live())
            if file.pk not in sent_here:
                tx.save(FileChatItem.of(file, chat_id))

    try:
        transact(build, "recording the files sent")
    except ConditionFailed as failed:
        # The reasons come in the order build() added the actions: a file's, then its link's.
        actions = [item for file in files for item in ([file] if file.pk in sent_here else [file, None])]
        deleted = [file for file, reason in zip(actions, failed.reasons, strict=False)
                   if file is not None and reason == CONDITION_FAILED]
        file = (deleted or files)[0]
        raise BadRequest(f"{field(file.id)}: file {file.id} is deleted") from None


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

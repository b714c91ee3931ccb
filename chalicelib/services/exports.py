"""Exports of a customer's data: `POST /exports`, `GET /exports/{id}`.

The archive is gzipped JSON lines in the files' bucket at
`{customer_id}/{export id}`: a first line `{"type": "export", "data": {...}}`,
then one line per chat, chatroom, chatmessage and file record, each
`{"type": ..., "data": <as GET answers it>}`; a chatmessage's line also
holds its `history` (earlier versions, newest first) and `reactions`.
Expired items are left out; deleted ones are in, as GET shows them.

The job runs in the stream function, not in the API's 29 s: the export item's
own records drive it. Each slice reads the customer's registry (models.registered:
REGISTRY_SHARDS Queries of the relation index, never a Scan) from the cursor
for at most SLICE_ITEMS items, writes its lines as one gzip member, and saves
the cursor, which brings the next slice. gzip members one after another are one
gzip file, so the archive is the parts of one multipart upload; S3 wants every
part but the last at least 5 MiB, and what is short of that waits in a
staging object. Every step is idempotent: a retried slice starts again from
the saved cursor and the bytes staged then (a ranged read), and writes its
part again under the same number.
"""

from __future__ import annotations

import gzip
import json
import logging
from types import SimpleNamespace

from chalicelib.auth import Principal
from chalicelib.auth.principal import PERMISSION_ADMIN
from chalicelib.clock import epoch, expired, new_id, now
from chalicelib.errors import Forbidden
from chalicelib.schemas import render
from chalicelib.services import jobs, views
from chalicelib.storage import objects, paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatmessageVersionItem,
    ChatroomItem,
    ExportItem,
    FileItem,
    ReactionItem,
    TableItem,
    registered,
)
from chalicelib.storage.operations import ConditionFailed, attempt, load, update

log = logging.getLogger(__name__)

SLICE_ITEMS = 2000  # items read per slice: seconds of one stream invocation
FORMAT = 1
EXPORTED = ("chat", "chatroom", "chatmessage", "file")  # the lines' types, as the progress counts them


def _require_exporter(principal: Principal) -> None:
    if principal.is_agent and not principal.permission & PERMISSION_ADMIN:
        raise Forbidden("exports are for customer tokens and admins")


# ---- the routes -------------------------------------------------------------------------------

def start_export(principal: Principal) -> SimpleNamespace:
    """202: the job's record, running. One CreateMultipartUpload, one PutItem
    (its stream record starts the first slice)."""
    _require_exporter(principal)
    tm = now()
    export_id = new_id()
    pk = ExportItem.key(principal.customer_id, export_id)
    job = ExportItem(pk, META, id=export_id, customer_id=principal.customer_id, status="running", tm_create=tm,
                     tm_update=tm, requested_by=principal.caller_id, cursor=paging.REGISTRY_START, counts={}, parts=0,
                     staged=0, size=0, expires_at=epoch(tm) + objects.EXPORT_DAYS * 86400,
                     **registered(principal.customer_id, pk))
    job.upload_id = objects.start_archive(job.archive_key)
    attempt(lambda: job.save(ExportItem.pk.does_not_exist()), "starting the export")
    return shown(job)


def get_export(principal: Principal, export_id: str) -> SimpleNamespace:
    _require_exporter(principal)
    job = load(ExportItem, principal.customer_id, export_id, "export")
    return shown(job, with_url=True)


def shown(job: ExportItem, with_url: bool = False) -> SimpleNamespace:
    counts = {name: int((job.counts.as_dict() if job.counts else {}).get(name, 0)) for name in EXPORTED}
    url = None
    if with_url and job.status == "done":
        url = objects.presigned_get(job.archive_key, f"chat-export-{job.id}.jsonl.gz")
    return SimpleNamespace(id=job.id, customer_id=job.customer_id, status=job.status, progress=counts,
                           size=int(job.size or 0), download_url=url, error=job.error or "",
                           tm_create=job.tm_create, tm_update=job.tm_update, tm_done=job.tm_done or "")


# ---- the job (the stream function) --------------------------------------------------------------

def on_export_changed(old: ExportItem | None, new: ExportItem) -> None:
    """An export's record: a new cursor means the next slice is due."""
    if new.status != "running" or new.cursor is None:
        return
    if old is not None and old.cursor == new.cursor and old.status == new.status:
        return  # a failure counted (services/jobs.py), or another change: no new slice
    jobs.run_slice(new, _same_slice(new), run_slice, f"export {new.id}", "start another export")


class ArchiveFull(Exception):
    """The archive would take more parts than S3 allows in one upload."""


def run_slice(job: ExportItem) -> None:
    try:
        _write_slice(job)
    except objects.ArchiveLost:
        _fail(job, "the archive's upload was lost (aborted, or a local run restarted); start another export")
    except ArchiveFull:
        _fail(job, f"the archive reached S3's {objects.PARTS_MAX:,} parts of one upload at {int(job.size or 0):,} "
                   "bytes; it cannot grow further")


def _fail(job: ExportItem, error: str) -> None:
    log.warning("export %s failed: %s", job.id, error)
    jobs.fail(job, _same_slice(job), error, f"export {job.id}", ExportItem.cursor.remove())


def _next_part(parts: int) -> int:
    if parts >= objects.PARTS_MAX:
        raise ArchiveFull()
    return parts + 1


def _write_slice(job: ExportItem) -> None:
    lines, cursor, counts = _read_slice(job)
    data = objects.read_bytes(job.staging_key, int(job.staged or 0)) + _gzip(lines)
    parts, staged = int(job.parts or 0), len(data)
    done = cursor is None
    if done:
        parts, staged = _finish(job, parts, data), 0
    elif staged >= objects.part_size(parts):
        parts, staged = _next_part(parts), 0
        objects.put_part(job.archive_key, job.upload_id, parts, data)
    else:
        objects.put_bytes(job.staging_key, data)
    size = int(job.size or 0) - int(job.staged or 0) + len(data)
    actions = [ExportItem.parts.set(parts), ExportItem.staged.set(staged), ExportItem.size.set(size),
               ExportItem.counts.set(counts), ExportItem.tm_update.set(now()), *jobs.cleared(ExportItem)]
    if done:
        actions += [ExportItem.status.set("done"), ExportItem.tm_done.set(now()), ExportItem.cursor.remove()]
    else:
        actions.append(ExportItem.cursor.set(cursor))
    try:
        update(ExportItem(job.pk, META), actions, _same_slice(job), f"saving export {job.id}")
    except ConditionFailed:
        log.info("export %s: this slice was saved already", job.id)
        return
    if done and int(job.staged or 0):
        objects.remove(job.staging_key)


def _same_slice(job: ExportItem):
    """The condition of a slice's save: the export is still running, at this slice."""
    return (ExportItem.cursor == job.cursor) & (ExportItem.status == "running")


def _finish(job: ExportItem, parts: int, data: bytes) -> int:
    """The last part and the upload completed; the parts in all. A retry of a
    last slice that completed the archive but could not save so finds the
    upload gone and the archive there: done, not lost."""
    try:
        if data or parts == 0:
            parts = _next_part(parts)
            objects.put_part(job.archive_key, job.upload_id, parts, data)
        objects.finish_archive(job.archive_key, job.upload_id)
    except objects.ArchiveLost:
        if objects.head(job.archive_key) is None:
            raise
    return parts


def _gzip(lines: list[str]) -> bytes:
    return gzip.compress("".join(lines).encode(), mtime=0) if lines else b""


def _read_slice(job: ExportItem) -> tuple[list[str], str | None, dict]:
    """The slice's lines, the cursor after it (None: the registry is done) and the counts so far."""
    counts = {name: int(value) for name, value in (job.counts.as_dict() if job.counts else {}).items()}
    lines = [] if job.cursor != paging.REGISTRY_START else [_line(
        "export", {"id": job.id, "customer_id": job.customer_id, "tm_create": job.tm_create, "format": FORMAT})]
    rooms: list[ChatroomItem] = []  # rendered together at the end of the slice
    live_rooms: set[tuple[str, str]] = set()  # the keys of the live ones, named by their chats' member items
    heads: dict[str, TableItem] = {}  # the chats and chatmessages read: what rendering the chatrooms needs

    def visit(entry) -> int:
        kind = _LINE_TYPES.get(type(entry))
        if kind is None:
            return 0  # not exported: a pair guard, a presence, a connection's audience, ...
        items = attempt(lambda: list(TableItem.query(entry.pk, consistent_read=True)),
                        f"reading {entry.pk} for an export")
        head = next((item for item in items if item.sk == META and type(item) is type(entry)), None)
        if head is None or expired(getattr(head, "expires_at", None)):
            return len(items)
        if isinstance(head, ChatroomItem):
            if head.deleted:  # a live one is registered only by an old version: its chat names it
                rooms.append(head)
            return len(items)
        counts[kind] = counts.get(kind, 0) + 1
        heads[head.pk] = head
        if isinstance(head, ChatmessageItem):
            lines.append(_message_line(head, items))
        elif isinstance(head, FileItem):
            head.download_url = None
            lines.append(_line("file", render.resource(head, "File")))
        elif isinstance(head, ChatItem):
            lines.append(_line("chat", render.resource(head, "Chat")))
            live_rooms.update((ChatroomItem.key(head.customer_id, member.chatroom_id), META) for member in items
                              if isinstance(member, ChatMemberItem))
        return len(items)

    next_cursor = paging.walk_registry(job.customer_id, job.cursor, SLICE_ITEMS, visit)
    found = views.fetch(live_rooms, "reading chatrooms for an export")  # one BatchGetItem per 100
    rooms += [room for room in found.values() if isinstance(room, ChatroomItem) and not room.deleted]
    counts["chatroom"] = counts.get("chatroom", 0) + len(rooms)
    # their chats and previews: read in this slice already, or one BatchGetItem per 100
    lines += [_line("chatroom", render.resource(room, "Chatroom")) for room in views.chatrooms(rooms, heads)]
    return lines, next_cursor, counts


_LINE_TYPES = {ChatItem: "chat", ChatroomItem: "chatroom", ChatmessageItem: "chatmessage", FileItem: "file"}


def _message_line(message: ChatmessageItem, items: list) -> str:
    versions = sorted((item for item in items if isinstance(item, ChatmessageVersionItem)),
                      key=lambda version: version.tm_update, reverse=True)
    reactions = sorted((item for item in items if isinstance(item, ReactionItem)),
                       key=lambda reaction: reaction.gsi1sk or "", reverse=True)
    return _line("chatmessage", render.resource(views.chatmessage(message), "Chatmessage"),
                 history=[render.resource(version, "ChatmessageVersion") for version in versions],
                 reactions=[render.resource(reaction, "Reaction") for reaction in reactions])


def _line(kind: str, data: dict, **more) -> str:
    return json.dumps({"type": kind, "data": data, **more}, ensure_ascii=False, separators=(",", ":")) + "\n"

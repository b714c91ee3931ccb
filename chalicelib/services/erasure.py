"""Erasing a customer's data: `DELETE /customer/data` (with the header
`Confirm-Customer-Id`), its progress at `GET /customer/data`.

The job runs in the stream function in slices, as an export does (its
record's updates bring the next slice):

1. items: walk the customer's registry (models.registered: REGISTRY_SHARDS
   Queries of the relation index, never a Scan) and delete each partition
   whole (one Query, then BatchWriteItems of 25, paced as one partition
   takes them), with a chat's live chatrooms (its member items), a message's
   copies (its copies relation) and an audience's connection routes. A walk
   that deleted anything is followed by another from the start, so what was
   written meanwhile goes too; the walk that finds nothing ends the phase.
2. files: every object under `{customer_id}/` in the files' bucket (uploads,
   sent copies, export archives), a DeleteObjects of up to 1,000 at a time;
   then the stream's kept failed records of the customer's items (few: each
   is read, as its key names only a sequence number).

Every step is idempotent (deleting what is gone is no error), so a retried
or replayed slice does no harm, and a second request while one runs answers
the same job. Keys lead with the customer id, so nothing of another customer
is ever addressed. The erasure's own item stays, as its record.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.services import jobs, views
from chalicelib.storage import failures, objects, paging
from chalicelib.storage.models import (
    META,
    AudienceItem,
    ChatMemberItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    ConnectionRouteItem,
    ErasureItem,
    TableItem,
)
from chalicelib.storage.operations import ONE_PARTITION_ITEMS_PER_SECOND, ConditionFailed, attempt, delete_all, update

log = logging.getLogger(__name__)

CONFIRM_HEADER = "Confirm-Customer-Id"
SLICE_ITEMS = 2000  # items deleted (or partitions read) per slice: seconds of one stream invocation
FILE_BATCHES_PER_SLICE = 5


# ---- the routes -------------------------------------------------------------------------------

def request_erasure(principal: Principal, confirmation: str | None) -> SimpleNamespace:
    """202: the erasure, running (the one already running, if any). One conditional PutItem."""
    if principal.is_agent:
        raise Forbidden("erasing the customer's data needs a customer token")
    if not confirmation:
        raise BadRequest(f"{CONFIRM_HEADER}: required, the id of the customer whose data is erased")
    if confirmation != principal.customer_id:
        raise BadRequest(f"{CONFIRM_HEADER}: {confirmation!r} is not this token's customer id")
    tm = now()
    job = ErasureItem(ErasureItem.key(principal.customer_id), META, customer_id=principal.customer_id,
                      status="running", phase="items", tm_create=tm, tm_update=tm, cursor=paging.REGISTRY_START,
                      walk_deleted=0, items_deleted=0, files_deleted=0, slices=0)
    try:
        attempt(lambda: job.save(ErasureItem.pk.does_not_exist() | ErasureItem.status.is_in("done", "failed")),
                "starting the erasure")
    except ConditionFailed:
        job = _read(principal.customer_id) or job  # running already: that one
    return shown(job)


def get_erasure(principal: Principal) -> SimpleNamespace:
    if principal.is_agent:
        raise Forbidden("the erasure of the customer's data is for customer tokens")
    job = _read(principal.customer_id)
    if job is None:
        raise NotFound(f"no erasure of customer {principal.customer_id}'s data was requested")
    return shown(job)


def _read(customer_id: str) -> ErasureItem | None:
    try:
        return attempt(lambda: ErasureItem.get(ErasureItem.key(customer_id), META, consistent_read=True),
                       "reading the erasure")
    except DoesNotExist:
        return None


def shown(job: ErasureItem) -> SimpleNamespace:
    return SimpleNamespace(customer_id=job.customer_id, status=job.status, phase=job.phase or "",
                           items_deleted=int(job.items_deleted or 0), files_deleted=int(job.files_deleted or 0),
                           error=job.error or "", tm_create=job.tm_create, tm_update=job.tm_update,
                           tm_done=job.tm_done or "")


# ---- what the stream function does ----------------------------------------------------------------

def on_erasure_changed(old: ErasureItem | None, new: ErasureItem) -> None:
    """An erasure's record: a slice saved means the next one is due."""
    if new.status != "running":
        return
    if old is not None and old.status == new.status and old.slices == new.slices:
        return  # each slice's save counts it: an unchanged count is another change
    jobs.run_slice(new, _same_slice(new), _files_slice if new.phase == "files" else _items_slice,
                   f"the erasure of customer {new.customer_id}'s data",
                   "ask for it again (DELETE /customer/data) to run it again")


_running: dict[str, tuple[float, bool]] = {}
RUNNING_CACHE_SECONDS = 10


def in_progress(customer_id: str) -> bool:
    """Whether the customer's data is being erased (one GetItem per customer
    every RUNNING_CACHE_SECONDS): the removals it causes need no cascade."""
    cached = _running.get(customer_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    job = _read(customer_id)
    running = job is not None and job.status == "running"
    _running[customer_id] = (time.monotonic() + RUNNING_CACHE_SECONDS, running)
    return running


def _items_slice(job: ErasureItem) -> None:
    erased: list[int] = []

    def visit(entry) -> int:
        erased.append(erase_partition(entry.gsi2sk))
        return erased[-1]

    next_cursor = paging.walk_registry(job.customer_id, job.cursor, SLICE_ITEMS, visit)
    deleted = sum(erased)
    walk_deleted = int(job.walk_deleted or 0) + deleted
    actions = [ErasureItem.items_deleted.add(deleted)]
    if next_cursor is not None:
        actions += [ErasureItem.cursor.set(next_cursor), ErasureItem.walk_deleted.set(walk_deleted)]
    elif walk_deleted:  # once more from the start: what was written meanwhile
        actions += [ErasureItem.cursor.set(paging.REGISTRY_START), ErasureItem.walk_deleted.set(0)]
    else:
        actions += [ErasureItem.phase.set("files"), ErasureItem.cursor.set(paging.REGISTRY_START)]
    _save(job, actions)


def erase_partition(pk: str) -> int:
    """Delete every item of one partition of the customer, and what hangs
    off it elsewhere (a chat's live chatrooms, a message's copies, an
    audience's connection routes); how many items were deleted."""
    items = attempt(lambda: list(TableItem.query(pk, consistent_read=True)), f"reading {pk} to erase it")
    elsewhere: list[tuple[str, str]] = []
    rooms = {(ChatroomItem.key(item.pk.split("#", 1)[0], item.chatroom_id), META) for item in items
             if isinstance(item, ChatMemberItem)}
    if rooms:  # the live ones (one BatchGetItem per 100): a deleted or left one is registered, erased as such
        elsewhere += [(room.pk, room.sk) for room in views.fetch(rooms, f"reading the chatrooms of {pk}").values()
                      if isinstance(room, ChatroomItem) and not room.deleted]
    for item in items:
        if isinstance(item, ChatmessageItem) and item.sk == META:
            copies = attempt(lambda item=item: paging.related(
                ChatroommessageItem.by_message_key(item.customer_id, item.id)), f"reading the copies of {pk}")
            elsewhere += [(copy.pk, copy.sk) for copy in copies]
        elif isinstance(item, AudienceItem):
            connections = item.connections.as_dict() if item.connections else {}
            elsewhere += [(ConnectionRouteItem.key(connection_id), META) for connection_id in connections]
    own = [(item.pk, item.sk) for item in items]
    # the others each in a partition of its own, then this partition's, paced
    delete_all(elsewhere + own, f"erasing {pk}", paced=(len(elsewhere), ONE_PARTITION_ITEMS_PER_SECOND))
    return len(elsewhere) + len(own)


def _files_slice(job: ErasureItem) -> None:
    removed, left = 0, False
    if objects.configured():
        for _ in range(FILE_BATCHES_PER_SLICE):
            found = objects.remove_some_under(f"{job.customer_id}/")
            removed += found
            left = found == objects.DELETE_MAX
            if not left:
                break
    if objects.configured() and not left:  # the stream's failed records of its items too (make redrive's)
        removed += failures.remove_records_of(job.customer_id)
    actions = [ErasureItem.files_deleted.add(removed)]
    if not left:
        actions += [ErasureItem.status.set("done"), ErasureItem.tm_done.set(now()), ErasureItem.cursor.remove(),
                    ErasureItem.phase.remove()]
    _save(job, actions)


def _save(job: ErasureItem, actions: list) -> None:
    """The slice's progress, on the condition that it is still the slice it ran
    as (a replayed record of an older slice changes nothing)."""
    actions += [ErasureItem.slices.add(1), ErasureItem.tm_update.set(now()), *jobs.cleared(ErasureItem)]
    try:
        update(ErasureItem(job.pk, META), actions, _same_slice(job), "saving the erasure's progress")
    except ConditionFailed:
        log.info("customer %s: this erasure slice was saved already", job.customer_id)


def _same_slice(job: ErasureItem):
    """The condition of a slice's save: the erasure is still running, at this slice."""
    return (ErasureItem.cursor == job.cursor) & (ErasureItem.tm_create == job.tm_create) & \
        (ErasureItem.slices == int(job.slices or 0)) & (ErasureItem.status == "running")

"""Lambda's DynamoDB event source mapping, on a laptop: read the table's
stream, deliver batches to the same handler, and retry what it reports failed,
in several lanes at once (ParallelizationFactor)."""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.streams import ShardReader, lambda_event

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Entry:
    """A record read from a shard and not yet reported done."""

    shard_id: str
    record: dict
    sequence: str
    key: str  # the item's partition key: records of one key are delivered one batch at a time, in order
    done: bool = False


def _partition_key(record: dict) -> str:
    keys = record["dynamodb"].get("Keys") or {}
    value = keys.get("pk") or next(iter(keys.values()), None) or {}
    return repr(sorted(value.items()))


class _Shard:
    def __init__(self, shard_id: str):
        self.shard_id = shard_id
        self.unfinished: deque[_Entry] = deque()  # every record read and not done, in stream order
        self.waiting: list[_Entry] = []  # read, not taken by a lane yet, in stream order
        self.busy: dict[str, int] = {}  # partition key -> records of it a lane holds


class _Lane:
    """Delivers the batches it takes, in order: a batch, and on failure the same
    records again from the earliest failed one, until done or given up."""

    def __init__(self, poller: "StreamPoller", number: int):
        self.poller = poller
        self.number = number
        self.held: list[_Entry] = []  # the batch in hand (taken, not done)
        self.attempts: dict[str, int] = {}

    def step(self) -> bool:
        """One delivery: the batch in hand again, or a new one. False if there
        was nothing to deliver."""
        poller = self.poller
        with poller._changed:
            if not self.held:
                self.held = poller._take(self)
            batch = list(self.held)
        if not batch:
            return False
        records = [entry.record for entry in batch]
        try:
            result = poller.handler(lambda_event(records, poller.stream_arn, poller.region), None) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("stream handler raised; the whole batch is retried")
            failed = {batch[0].sequence}
        first = next((i for i, entry in enumerate(batch) if entry.sequence in failed), None)
        backoff = 0.0
        with poller._changed:
            if first is None:
                finished, self.held = batch, []
            else:
                sequence = batch[first].sequence
                attempts = self.attempts.get(sequence, 0) + 1
                self.attempts[sequence] = attempts
                if attempts >= poller.max_attempts:
                    log.error("giving up on stream record %s after %d attempts", sequence, attempts)
                    self.attempts.pop(sequence, None)
                    finished, self.held = batch[:first + 1], batch[first + 1:]
                else:
                    # Lambda retries from the earliest failed record, later ones included.
                    finished, self.held = batch[:first], batch[first:]
                    backoff = min(0.05 * 2 ** attempts, 2.0)
            poller._finish(finished)
        if backoff:
            poller._stop.wait(backoff)
        return True


class StreamPoller:
    """Delivers each shard's records in batches of up to `batch_size`, in
    `lanes` lanes at once, like Lambda's ParallelizationFactor: a lane takes
    the earliest records not yet taken, skipping those of a partition key
    (the record's `Keys.pk`) another lane holds, so the records of one item
    key are delivered in stream order, one batch at a time, and a slow batch
    (a 1,000-copy fan-out) holds back only the records of its own keys, never
    another chat's. (Lambda hashes keys to its lanes; taking by free lane
    instead means no other key ever waits behind a slow one.)

    When the handler names failed records, the lane delivers its batch again
    from the earliest of them (as Lambda does with partial batch responses),
    after a backoff; a record that keeps failing is given up after
    `max_attempts`, like MaximumRetryAttempts, and logged.

    `on_handled(shard_id, sequence_number)` hears up to which record a shard
    is done with (handled, or given up on): the longest prefix of its records
    that are all done, so records still in a lane, or behind one, are never
    counted. make run's journal keeps it, to deliver what was not done after
    a restart (nothing lost; and since copies are conditional puts, nothing
    doubled).

    `start()` runs a reader and the lanes in threads (make run); tests may
    call `poll_once()` instead, which reads once (a batch for each lane) and
    lets each lane deliver one batch, in turn, in the calling thread."""

    BUSY_SECONDS = 0.005  # the first wait after an empty read

    def __init__(self, reader: ShardReader, handler: Callable[[dict, Any], dict], stream_arn: str, region: str,
                 batch_size: int = 100, idle_seconds: float = 0.05, max_attempts: int = 5,
                 on_handled: Callable[[str, str], None] | None = None, lanes: int = 1,
                 read_ahead: int | None = None, delivers: Callable[[dict], bool] | None = None):
        if lanes < 1:
            raise ValueError("lanes: at least 1")
        self.reader = reader
        self.handler = handler
        self.stream_arn = stream_arn
        self.region = region
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts
        self.on_handled = on_handled
        # Which records the handler gets (Lambda's FilterCriteria): the others are done as soon as read.
        self.delivers = delivers or (lambda record: True)
        # Records read and not done, at most (a backlog stays in the stream, not in memory).
        self.read_ahead = read_ahead or batch_size * lanes * 10
        self.delivered = 0
        self._shards: dict[str, _Shard] = {}
        self._unfinished = 0
        self._next_shard = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._batch_done = threading.Event()  # a lane delivered a batch: its writes may be records to read
        self._lanes = [_Lane(self, number) for number in range(lanes)]
        self._threads = [threading.Thread(target=self._read_loop, name="stream-poller", daemon=True)] + [
            threading.Thread(target=self._lane_loop, args=(lane,), name=f"stream-lane-{lane.number}", daemon=True)
            for lane in self._lanes]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Take no new batch (those in hand are finished)."""
        self._stop.set()
        self._batch_done.set()
        with self._changed:
            self._changed.notify_all()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the batches in hand (waiting at most `timeout` in all);
        False if one is still running (its records, and any not done, are
        delivered again after a restart)."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # ---- the threads (make run) ---------------------------------------------------------

    def _read_loop(self) -> None:
        """Read again at once while records come; after an empty read, wait
        BUSY_SECONDS, doubling each empty read up to `idle_seconds`, or less: a
        batch delivered wakes it (its writes are new records, a fan-out's copies)."""
        busy = min(self.BUSY_SECONDS, self.idle_seconds)
        wait = busy
        while not self._stop.is_set():
            with self._changed:
                if self._unfinished >= self.read_ahead:
                    self._changed.wait(self.idle_seconds)
                    continue
            try:
                read = self._read(self.batch_size)
            except Exception:
                log.exception("stream poll failed; retrying")
                read = 0
            if read:
                wait = busy
                continue
            if self._batch_done.wait(wait):
                self._batch_done.clear()
                wait = busy
            else:
                wait = min(wait * 2, self.idle_seconds)

    def _lane_loop(self, lane: _Lane) -> None:
        while not self._stop.is_set():
            try:
                worked = lane.step()
            except Exception:  # a bug here, not in the handler: keep the lane alive
                log.exception("stream lane %d failed; retrying", lane.number)
                worked = False
                self._stop.wait(self.idle_seconds)
            if not worked:
                with self._changed:
                    if not self._stop.is_set():
                        self._changed.wait(self.idle_seconds)

    # ---- one round in the caller's thread (tests) ------------------------------------

    def poll_once(self) -> bool:
        """Read what is new, then let each lane deliver one batch; True if
        anything was read or delivered."""
        read = self._read(self.batch_size * len(self._lanes))
        delivered = [lane.step() for lane in self._lanes]
        return bool(read) or any(delivered)

    # ---- shared state, under self._changed -----------------------------------------------

    def _read(self, limit: int) -> int:
        found = self.reader.read(limit=limit)
        if not found:
            return 0
        with self._changed:
            dropped: dict[str, _Shard] = {}
            for shard_id, record in found:
                shard = self._shards.get(shard_id)
                if shard is None:
                    shard = self._shards[shard_id] = _Shard(shard_id)
                entry = _Entry(shard_id, record, record["dynamodb"]["SequenceNumber"], _partition_key(record))
                shard.unfinished.append(entry)
                if self.delivers(record):
                    shard.waiting.append(entry)
                else:
                    entry.done = True
                    dropped[shard_id] = shard
            self._unfinished += len(found)
            for shard in dropped.values():
                self._advance(shard)
            self._changed.notify_all()
        return len(found)

    def _take(self, lane: _Lane) -> list[_Entry]:
        """The earliest records of one shard (a batch is one shard's, as
        Lambda's are) whose keys no other lane holds; a key skipped once is
        skipped to the end, so its records stay in order."""
        shards = list(self._shards.values())
        for offset in range(len(shards)):
            shard = shards[(self._next_shard + offset) % len(shards)]
            if not shard.waiting:
                continue
            taken: list[_Entry] = []
            left: list[_Entry] = []
            skipped: set[str] = set()
            for position, entry in enumerate(shard.waiting):
                if len(taken) >= self.batch_size:
                    left += shard.waiting[position:]
                    break
                if entry.key in skipped or entry.key in shard.busy:
                    skipped.add(entry.key)
                    left.append(entry)
                else:
                    taken.append(entry)
            if not taken:
                continue
            for entry in taken:
                shard.busy[entry.key] = shard.busy.get(entry.key, 0) + 1
            shard.waiting = left
            self._next_shard = (self._next_shard + offset + 1) % len(shards)
            return taken
        return []

    def _advance(self, shard: _Shard) -> None:
        """Report the shard's longest prefix of done records (and let it go)."""
        last = None
        while shard.unfinished and shard.unfinished[0].done:
            last = shard.unfinished.popleft()
            self._unfinished -= 1
        if last is not None and self.on_handled is not None:
            self.on_handled(shard.shard_id, last.sequence)

    def _finish(self, entries: list[_Entry]) -> None:
        """These records are done (handled, or given up on): free their keys and
        report each shard's longest done prefix."""
        touched: dict[str, _Shard] = {}
        for entry in entries:
            entry.done = True
            shard = touched[entry.shard_id] = self._shards[entry.shard_id]
            left = shard.busy[entry.key] - 1
            if left:
                shard.busy[entry.key] = left
            else:
                del shard.busy[entry.key]
        self.delivered += len(entries)
        for shard in touched.values():
            self._advance(shard)
        if entries:
            self._changed.notify_all()
            self._batch_done.set()

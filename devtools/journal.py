"""Durability for the embedded DynamoDB: moto keeps the table in memory, this
keeps it on disk, as a journal of the table's own stream.

Every change moto makes to an item also makes a stream record (old and new
image). devtools.moto_patches hands each one to `Journal.record` under the
backend's lock, and at the end of the operation (a put, an update, a delete,
a whole transaction) `Journal.commit` appends its records to `journal.jsonl`
as one line, with one write(2), before moto answers, so before the chat API
answers. The line is then in the kernel: a killed process (SIGKILL, a crash)
loses nothing it confirmed. It is fsynced within a second (CHAT_DATA_FSYNC=
always: before the answer), so a power loss or an OS crash loses at most the
last second; a line torn by one is discarded at the next start.

The stream's consumer (devtools.poller, playing Lambda's event source mapping)
reports how far it has handled the stream (`handled`), and the journal keeps
that as a checkpoint (`stream-checkpoint.json`). At the next start, `load` +
`restore` put the table back as it was (without stream records: nothing is
fanned out again) and then put the records of changes not yet handled back
into the stream, in their order: the fan-out of a message sent just before a
kill still happens, once (copies are conditional puts on derived ids, so a
record handled but not yet checkpointed makes no second copy).

At each start, and when the journal outgrows the snapshot (and 64 MB), the
table is compacted into `snapshot.jsonl` (written aside, fsynced, renamed over
the old one) and the journal starts again.
"""

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = "voipbin-chat-local/1"
COMPACT_BYTES = 64 * 1024 * 1024


class CorruptStore(RuntimeError):
    pass


def _dumps(value: Any) -> str:
    def default(obj):
        if isinstance(obj, bytes):
            return base64.b64encode(obj).decode()
        raise TypeError(f"cannot store {type(obj).__name__}")

    return json.dumps(value, separators=(",", ":"), default=default)


def _key(keys: dict[str, Any]) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


@dataclass
class Loaded:
    """What the data directory holds: every table's items, and the changes
    whose stream records were not handled yet (change number -> entry)."""
    items: dict[str, dict[str, tuple[dict, dict]]] = field(default_factory=dict)
    pending: dict[int, dict] = field(default_factory=dict)
    next_change: int = 1
    checkpoint: int = 0
    torn: int = 0


class Journal:
    def __init__(self, directory: Path, table_name: str, fsync: str = "everysec",
                 compact_bytes: int = COMPACT_BYTES):
        if fsync not in ("always", "everysec"):
            raise ValueError("CHAT_DATA_FSYNC is always or everysec")
        self.directory = directory
        self.table_name = table_name  # the table whose stream is handled (checkpointed)
        self.fsync = fsync
        self.compact_bytes = compact_bytes
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.snapshot_path = directory / "snapshot.jsonl"
        self.journal_path = directory / "journal.jsonl"
        self.checkpoint_path = directory / "stream-checkpoint.json"
        self._fd: int | None = None
        self._closed = False
        self._buffer: list[dict] = []
        self._next = 1
        self._checkpoint = 0
        # Records of the handled table's stream not handled yet, in stream order:
        # moto sequence number -> (change number, entry).
        self._pending: dict[int, tuple[int, dict]] = {}
        self._pending_lock = threading.Lock()
        self._foreign: dict[str, dict[str, tuple[dict, dict]]] = {}  # tables not served this run
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.muted = False  # restoring: moto's stream records are not new changes
        self._size = 0  # of the journal file

    # ---- start: read, restore, compact ----------------------------------------------------

    def load(self) -> Loaded:
        state = Loaded()
        if self.snapshot_path.exists():
            self._read_snapshot(state)
        if self.journal_path.exists():
            self._read_journal(state)
        try:
            checkpoint = json.loads(self.checkpoint_path.read_text())
            state.checkpoint = max(state.checkpoint, int(checkpoint["change"]))
        except FileNotFoundError:
            pass
        except (ValueError, KeyError) as error:
            log.warning("ignoring an unreadable %s (%s): unhandled records are re-delivered",
                        self.checkpoint_path.name, error)
        state.pending = {c: e for c, e in sorted(state.pending.items())
                         if c > state.checkpoint and e["t"] == self.table_name}
        return state

    def _read_snapshot(self, state: Loaded) -> None:
        try:
            self._read_snapshot_lines(state)
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptStore(f"{self.snapshot_path} is unreadable ({error})") from None

    def _read_snapshot_lines(self, state: Loaded) -> None:
        with open(self.snapshot_path, encoding="utf-8") as snapshot:
            header = json.loads(snapshot.readline() or "null")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CorruptStore(f"{self.snapshot_path} is not a snapshot of this tool ({FORMAT})")
            state.next_change, state.checkpoint = header["next_change"], header["checkpoint"]
            count, ended = 0, False
            for line in snapshot:
                entry = json.loads(line)
                if "i" in entry:
                    state.items.setdefault(entry["t"], {})[_key(entry["k"])] = (entry["k"], entry["i"])
                    count += 1
                elif "p" in entry:
                    state.pending[entry["p"]] = entry["e"]
                elif "end" in entry:
                    ended = entry["end"] == count
            if not ended:
                raise CorruptStore(f"{self.snapshot_path} is incomplete")

    def _read_journal(self, state: Loaded) -> None:
        with open(self.journal_path, "rb") as journal:
            lines = journal.read().split(b"\n")
        # The text ends with "\n": the last piece is empty unless a write was torn.
        for number, raw in enumerate(lines):
            if not raw:
                continue
            try:
                line = json.loads(raw)
                first, records = line["c"], line["r"]
            except (ValueError, KeyError, TypeError):
                if number == len(lines) - 1 or all(not rest for rest in lines[number + 1:]):
                    state.torn += 1  # the tail of a write cut short (power loss): never confirmed
                    continue
                raise CorruptStore(f"{self.journal_path} line {number + 1} is unreadable") from None
            for offset, entry in enumerate(records):
                change = first + offset
                if change < state.next_change:
                    continue  # already in the snapshot
                table = state.items.setdefault(entry["t"], {})
                if entry.get("n") is None:
                    table.pop(_key(entry["k"]), None)
                else:
                    table[_key(entry["k"])] = (entry["k"], entry["n"])
                state.pending[change] = entry
                state.next_change = change + 1

    def restore(self, backend, state: Loaded, stream_add) -> tuple[int, int]:
        """Put the items into moto's tables (no stream records), then the records
        not yet handled into the handled table's stream. `stream_add` is moto's
        own StreamShard.add. Returns (items restored, records re-queued)."""
        from moto.dynamodb.models.dynamo_type import DynamoType, Item

        now = time.time()
        restored = 0
        for name, entries in state.items.items():
            table = backend.tables.get(name)
            if table is None:
                log.warning("the data directory holds %d items of table %s, which this run does not serve "
                            "(CHAT_TABLE_NAME): kept, not served", len(entries), name)
                self._foreign[name] = entries
                continue
            ttl = table.ttl.get("AttributeName") if table.ttl.get("TimeToLiveStatus") == "ENABLED" else None
            for _, image in entries.values():
                if ttl and "N" in image.get(ttl, {}) and float(image[ttl]["N"]) < now:
                    continue  # expired: DynamoDB's TTL would have deleted it by now
                self._put_silently(table, image, DynamoType, Item)
                restored += 1

        table = backend.tables.get(self.table_name)
        requeued = 0
        if state.pending and (table is None or table.stream_shard is None):
            log.warning("%d stream records not handled, and table %s has no stream here: dropped",
                        len(state.pending), self.table_name)
        elif state.pending:
            def item(image):
                if image is None:
                    return None
                rk = table.range_key_attr
                return Item(DynamoType(image[table.hash_key_attr]), DynamoType(image[rk]) if rk else None, image)

            self.muted = True
            try:
                for change, entry in state.pending.items():
                    stream_add(table.stream_shard, item(entry.get("o")), item(entry.get("n")))
                    sequence = int(table.stream_shard.items[-1].record["dynamodb"]["SequenceNumber"])
                    self._pending[sequence] = (change, entry)
                    requeued += 1
            finally:
                self.muted = False
        self._next = state.next_change
        self._checkpoint = state.checkpoint
        return restored, requeued

    @staticmethod
    def _put_silently(table, image, dynamo_type, item_cls) -> None:
        hash_value = dynamo_type(image[table.hash_key_attr])
        if table.range_key_attr:
            range_value = dynamo_type(image[table.range_key_attr])
            table.items[hash_value][range_value] = item_cls(hash_value, range_value, image)
        else:
            table.items[hash_value] = item_cls(hash_value, None, image)

    def open(self, backend, lock) -> None:
        """Compact what was loaded, start the journal, and the thread that
        fsyncs it every second and compacts it when it grows."""
        self._backend, self._lock = backend, lock
        self.compact()
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._thread = threading.Thread(target=self._maintain, name="journal", daemon=True)
        self._thread.start()

    # ---- while running: called by devtools.moto_patches under moto's lock -------------------

    def record(self, table_name: str, record: dict, old, new) -> None:
        """One stream record moto just made: buffered until the operation ends."""
        if self.muted:
            return
        data = record["dynamodb"]
        new_image = None if new is None else data.get("NewImage") or new.to_json()["Attributes"]
        old_image = None if old is None else data.get("OldImage") or old.to_json()["Attributes"]
        entry = {"t": table_name, "k": data["Keys"], "n": new_image, "o": old_image}
        change = self._next
        self._next += 1
        self._buffer.append(entry)
        if table_name == self.table_name:
            with self._pending_lock:
                self._pending[int(data["SequenceNumber"])] = (change, entry)

    def mark(self) -> tuple[int, int]:
        """Where the records of the operation under way stand (for discard_since)."""
        return len(self._buffer), self._next

    def discard_since(self, mark: tuple[int, int]) -> None:
        """Take back the records buffered since `mark`: their write was refused
        and undone (devtools.moto_patches), so it never happened."""
        buffered, change = mark
        del self._buffer[buffered:]
        with self._pending_lock:
            for sequence in [s for s, (c, _) in self._pending.items() if c >= change]:
                del self._pending[sequence]
        self._next = change

    def commit(self) -> None:
        """The operation is over: its records, as one line, to the kernel."""
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        if self._closed or self._fd is None:
            raise RuntimeError("the local store is closed (make run is stopping)")
        data = (_dumps({"c": self._next - len(records), "r": records}) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            os.ftruncate(self._fd, self._size)  # no half line for the next start to trip on
            raise
        self._size += len(data)
        if self.fsync == "always":
            os.fsync(self._fd)
        else:
            self._dirty = True

    # ---- called by the stream poller ----------------------------------------------------------

    def handled(self, shard_id: str, sequence_number: str) -> None:
        """Every record of the handled table's stream up to this one is done."""
        upto = int(sequence_number)
        with self._pending_lock:
            last = None
            while self._pending:
                sequence = next(iter(self._pending))
                if sequence > upto:
                    break
                last = self._pending.pop(sequence)[0]
            if last is None or last <= self._checkpoint:
                return
            self._checkpoint = last
            temporary = self.checkpoint_path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"table": self.table_name, "change": last}) + "\n")
            os.replace(temporary, self.checkpoint_path)

    @property
    def unhandled(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    # ---- compaction, fsync, close --------------------------------------------------------------

    def compact(self) -> None:
        """Every item (and the records not yet handled) into a new snapshot;
        the journal starts again. Holds moto's lock: requests wait."""
        with self._lock:
            self._write_snapshot()
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
                os.fsync(self._fd)
                self._size = 0
            elif self.journal_path.exists():
                with open(self.journal_path, "r+b") as journal:
                    journal.truncate(0)
                    os.fsync(journal.fileno())
            self._dirty = False

    def _write_snapshot(self) -> None:
        temporary = self.snapshot_path.with_suffix(".tmp")
        count = 0
        with open(temporary, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(_dumps({"format": FORMAT, "next_change": self._next, "checkpoint": self._checkpoint}) + "\n")
            for table in self._backend.tables.values():
                for item in table.all_items():
                    keys = {table.hash_key_attr: item.hash_key.to_json()}
                    if table.range_key_attr:
                        keys[table.range_key_attr] = item.range_key.to_json()
                    out.write(_dumps({"t": table.name, "k": keys, "i": item.to_json()["Attributes"]}) + "\n")
                    count += 1
            for name, entries in self._foreign.items():
                if name in self._backend.tables:
                    continue
                for keys, image in entries.values():
                    out.write(_dumps({"t": name, "k": keys, "i": image}) + "\n")
                    count += 1
            with self._pending_lock:
                for change, entry in self._pending.values():
                    out.write(_dumps({"p": change, "e": entry}) + "\n")
            out.write(_dumps({"end": count}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.snapshot_path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _maintain(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sync()
                size = self._size
                snapshot = self.snapshot_path.stat().st_size if self.snapshot_path.exists() else 0
                if size > self.compact_bytes and size > snapshot:
                    started = time.monotonic()
                    self.compact()
                    log.info("compacted the local store (%.1f MB journal) in %.2f s",
                             size / 1e6, time.monotonic() - started)
            except Exception:
                log.exception("local store maintenance failed; retrying")

    def sync(self) -> None:
        if self._dirty and self._fd is not None:
            self._dirty = False
            os.fsync(self._fd)

    def close(self) -> None:
        """No more writes (a request still running gets an error, never a
        confirmation of something not kept); what was written is fsynced."""
        self._stop.set()
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

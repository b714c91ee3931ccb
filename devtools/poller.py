"""Lambda's DynamoDB event source mapping, on a laptop: read the table's
stream, deliver batches to the same handler, and retry what it reports failed."""

import logging
import threading
from collections.abc import Callable
from typing import Any

from devtools.streams import ShardReader, lambda_event

log = logging.getLogger(__name__)


class StreamPoller:
    """Delivers each shard's records in order, in batches of up to
    `batch_size`. When the handler names failed records, the shard is read
    again from the earliest of them (as Lambda does with partial batch
    responses); a record that keeps failing is given up after
    `max_attempts`, like MaximumRetryAttempts, and logged.

    `on_handled(shard_id, sequence_number)` hears, after each batch, up to
    which record the shard is done with (handled, or given up on): make run's
    journal keeps it, to deliver what was not done after a restart."""

    def __init__(self, reader: ShardReader, handler: Callable[[dict, Any], dict], stream_arn: str, region: str,
                 batch_size: int = 100, idle_seconds: float = 0.05, max_attempts: int = 5,
                 on_handled: Callable[[str, str], None] | None = None):
        self.reader = reader
        self.handler = handler
        self.stream_arn = stream_arn
        self.region = region
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts
        self.on_handled = on_handled
        self.delivered = 0
        self._attempts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Take no new batch (the one in hand is finished)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the batch in hand (waiting at most `timeout`); False if
        it is still running (its records are delivered again after a restart)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                log.exception("stream poll failed; retrying")
                busy = False
            if not busy:
                self._stop.wait(self.idle_seconds)

    def poll_once(self) -> bool:
        """Deliver what is new; True if anything was."""
        by_shard: dict[str, list[dict]] = {}
        for shard_id, record in self.reader.read(limit=self.batch_size):
            by_shard.setdefault(shard_id, []).append(record)
        for shard_id, records in by_shard.items():
            self._deliver(shard_id, records)
        return bool(by_shard)

    def _deliver(self, shard_id: str, records: list[dict]) -> None:
        try:
            result = self.handler(lambda_event(records, self.stream_arn, self.region), None) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("stream handler raised; the whole batch is retried")
            failed = {records[0]["dynamodb"]["SequenceNumber"]}
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        first_failed = next((s for s in sequence if s in failed), None)
        if first_failed is None:
            self.delivered += len(records)
            self._handled(shard_id, sequence[-1])
            return
        attempts = self._attempts.get(first_failed, 0) + 1
        self._attempts[first_failed] = attempts
        done = sequence.index(first_failed)
        self.delivered += done
        if done:
            self._handled(shard_id, sequence[done - 1])
        if attempts >= self.max_attempts:
            log.error("giving up on stream record %s after %d attempts", first_failed, attempts)
            self._attempts.pop(first_failed, None)
            self.delivered += 1
            self._handled(shard_id, first_failed)
            if done + 1 < len(records):
                self.reader.rewind_to(shard_id, sequence[done + 1])
            return
        # Lambda retries from the earliest failed record, later ones included.
        self.reader.rewind_to(shard_id, first_failed)
        self._stop.wait(min(0.05 * 2 ** attempts, 2.0))

    def _handled(self, shard_id: str, sequence_number: str) -> None:
        if self.on_handled is not None:
            self.on_handled(shard_id, sequence_number)

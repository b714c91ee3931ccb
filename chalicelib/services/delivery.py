"""Delivering chat events: to the websocket connections of the agents they
concern (through API Gateway's management API) and to an EventBridge bus.

Pushes go out concurrently, PUSHES_AT_ONCE at a time over as many kept-alive
connections: one task per websocket connection sends its events in order, so a
message to a 1,000-agent group reaches everyone in well under a second where
one post after another took a minute. Pushes never wait on the bus, and a
refused bus put never loses a push: the record is reported failed and Lambda
handles it again, so a push may come twice (at least once, never lost).

Sizes are AWS's: a push over 128 KiB, or a bus entry over 256 KiB, is sent as
a notice naming the resource (`"truncated": true`) for the client to fetch; a
PutEvents request holds at most 10 entries and 256 KiB."""

import json
import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import config, metrics
from chalicelib.services import connections
from chalicelib.services.events import ChatEvent
from chalicelib.storage.clients import client_config

log = logging.getLogger(__name__)
EVENT_SOURCE = "voipbin.chat"
PUSHES_AT_ONCE = 32  # websocket connections pushed to at once (and the management client's pool)
PUSH_MAX_BYTES = 128 * 1024  # post_to_connection's limit
BUS_ENTRIES_PER_PUT = 10  # PutEvents' limits
BUS_BYTES_PER_PUT = 256 * 1024
BUS_ATTEMPTS = 4  # a refused put is tried again after a jittered wait of up to 0.1 s, 0.2 s, 0.4 s
BUS_BACKOFF_SECONDS = 0.1
# What a notice keeps of a resource too large to send: enough to fetch it.
IDENTIFYING = ("id", "customer_id", "chat_id", "chatroom_id", "messagechat_id", "owner_id", "tm_update")
_sleep = time.sleep


def encode(value) -> bytes:
    """Compact JSON, as UTF-8: non-ASCII text is not inflated to \\u escapes
    (Hangul 3 bytes a character, not 6; an emoji 4, not 12)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def notice(message: dict) -> dict:
    """What is pushed instead of an event too large to push: its type and the keys of its resource."""
    data = message.get("data") or {}
    return {"type": message["type"], "data": {name: data[name] for name in IDENTIFYING if name in data},
            "truncated": True}


def framed(message: dict) -> bytes:
    """The bytes pushed for a message: itself, or its notice if it passes 128 KiB."""
    body = encode(message)
    if len(body) <= PUSH_MAX_BYTES:
        return body
    log.warning("%s of %s is %d bytes, over post_to_connection's %d: pushed as a notice", message.get("type"),
                (message.get("data") or {}).get("id"), len(body), PUSH_MAX_BYTES)
    return encode(notice(message))


class Message(dict):
    """A pushed message, encoded once however many connections it goes to."""

    @cached_property
    def body(self) -> bytes:
        return framed(self)


# ---- clients ----------------------------------------------------------------------------

# boto3's default session is not safe for making clients from several threads
# at once (make run delivers stream batches in several threads).
_making_client = threading.Lock()
_management_clients: dict[tuple[str, str], object] = {}


def _client(service: str, **kwargs):
    import boto3  # here, not at import: boto3 is a third of a cold start, and most requests never push

    with _making_client:
        return boto3.client(service, config=client_config(), **kwargs)  # timeouts, botocore's jittered retries


def _management_client(endpoint: str, region: str):
    """One client per endpoint for the process (made once, whichever thread asks
    first), its connection pool as large as the pushes at once, kept alive."""
    key = (endpoint, region)
    client = _management_clients.get(key)
    if client is None:
        with _making_client:
            client = _management_clients.get(key)
            if client is None:
                import boto3

                client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=region,
                                      config=client_config(max_pool_connections=PUSHES_AT_ONCE))
                _management_clients[key] = client
    return client


def push(endpoint: str, connection_id: str, message: dict) -> bool:
    """post_to_connection (as a notice if over 128 KiB); a connection that is
    gone is forgotten (not one still connecting: connections.HANDSHAKE_SECONDS).
    False if the message was not pushed."""
    client = _management_client(endpoint, config.load().region)
    body = message.body if isinstance(message, Message) else framed(message)
    try:
        client.post_to_connection(ConnectionId=connection_id, Data=body)
        metrics.count("PushesSent")
        return True
    except client.exceptions.GoneException:
        metrics.count("PushesGone")
        connections.forget(connection_id, gone=True)
    except (ClientError, BotoCoreError) as error:  # one bad connection never blocks the others
        metrics.count("PushesFailed")
        log.warning("push to %s failed: %s", connection_id, error)
    return False


_pool: ThreadPoolExecutor | None = None


def _push_pool() -> ThreadPoolExecutor:
    """The process's pushing threads (Lambda keeps them between invocations)."""
    global _pool
    if _pool is None:
        with _making_client:
            if _pool is None:
                _pool = ThreadPoolExecutor(PUSHES_AT_ONCE, thread_name_prefix="push")
    return _pool


def _push_in_order(endpoint: str, connection_id: str, messages: list[Message]) -> None:
    """One connection's events, in order. The first that fails (gone, or refused
    after botocore's retries) ends its turn: a client never gets an event
    without the ones before it."""
    for message in messages:
        if not push(endpoint, connection_id, message):
            return


# ---- the bus ----------------------------------------------------------------------------

def bus_entry(event: ChatEvent, bus: str) -> dict:
    """A PutEvents entry; a detail that would take the entry past 256 KiB is
    replaced by its notice's (logged with the event's resource id)."""
    entry = {"Source": EVENT_SOURCE, "DetailType": event.type, "Detail": encode(event.data).decode(),
             "EventBusName": bus}
    size = entry_size(entry)
    if size > BUS_BYTES_PER_PUT:
        log.error("%s of %s: its bus entry is %d bytes, over PutEvents' %d: put as a notice", event.type,
                  event.data.get("id"), size, BUS_BYTES_PER_PUT)
        entry["Detail"] = encode({**notice(event.message())["data"], "truncated": True}).decode()
    return entry


def entry_size(entry: dict) -> int:
    """AWS's size of a PutEvents entry: Source, DetailType, Detail, Resources (and Time, 14 bytes) in UTF-8."""
    return (len(entry["Source"].encode()) + len(entry["DetailType"].encode()) + len(entry["Detail"].encode())
            + sum(len(resource.encode()) for resource in entry.get("Resources", []))
            + (14 if "Time" in entry else 0))


def bus_requests(entries: list[tuple[str, dict]]) -> list[list[tuple[str, dict]]]:
    """(record id, entry) pairs cut into PutEvents requests of at most 10
    entries and 256 KiB, in order."""
    requests: list[list] = []
    size = 0
    for pair in entries:
        entry_bytes = entry_size(pair[1])
        if not requests or len(requests[-1]) == BUS_ENTRIES_PER_PUT or size + entry_bytes > BUS_BYTES_PER_PUT:
            requests.append([])
            size = 0
        requests[-1].append(pair)
        size += entry_bytes
    return requests


class Delivery:
    """Delivers the events of one batch of stream records: start_pushes(),
    then put_on_bus() while they go out, then wait_for_pushes()."""

    def __init__(self, websocket_endpoint: str | None = None, event_bus: str | None = None,
                 bus_chatroom_events: bool = False):
        self.websocket_endpoint = websocket_endpoint
        self.event_bus = event_bus
        self.bus_chatroom_events = bus_chatroom_events
        self._events = None
        self._pushing: list[Future] = []

    @classmethod
    def from_settings(cls) -> "Delivery":
        settings = config.load()
        return cls(settings.websocket_endpoint, settings.event_bus, settings.bus_chatroom_events)

    @property
    def enabled(self) -> bool:
        return bool(self.websocket_endpoint or self.event_bus)

    # ---- pushes ----

    def start_pushes(self, events: list[ChatEvent]) -> None:
        """Find the connections of every audience of the events (one BatchGetItem
        per 100 audiences), then hand each connection its events, in order, to
        the pushing threads (an admin in the chat listens twice, hears once).
        Returns at once: wait_for_pushes() waits."""
        if not self.websocket_endpoint or not events:
            return
        audiences = {(event.customer_id, audience) for event in events for audience in event.audiences}
        listening = connections.connections_of(audiences)
        queued: dict[str, list[Message]] = {}
        for event in events:
            message = Message(event.message())
            for connection_id in dict.fromkeys(connection_id for audience in event.audiences
                                               for connection_id in listening.get((event.customer_id, audience), [])):
                queued.setdefault(connection_id, []).append(message)
        pool = _push_pool()
        self._pushing += [pool.submit(_push_in_order, self.websocket_endpoint, connection_id, messages)
                          for connection_id, messages in queued.items()]

    def wait_for_pushes(self) -> None:
        pushing, self._pushing = self._pushing, []
        for future in pushing:
            try:
                future.result()
            except Exception:  # a push's own failures are handled in push(); anything else is a bug to see
                log.exception("a connection's pushes failed")

    # ---- the bus ----

    def put_on_bus(self, pending: list[tuple[str, ChatEvent]]) -> list[str]:
        """Put the events the bus takes (chat-level ones; per-chatroom ones too if
        the stage asks) in requests of at most 10 entries and 256 KiB; a refused
        request or entry is tried again after a jittered wait. Returns the ids of
        the records whose entries were still refused."""
        if not self.event_bus:
            return []
        entries = [(record_id, bus_entry(event, self.event_bus)) for record_id, event in pending
                   if event.chat_level or self.bus_chatroom_events]
        failed: list[str] = []
        for request in bus_requests(entries):
            failed += [record_id for record_id, _ in self._put_with_retries(request)]
        return list(dict.fromkeys(failed))

    def _put_with_retries(self, request: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """The entries still refused after BUS_ATTEMPTS tries."""
        if self._events is None:
            self._events = _client("events", region_name=config.load().region)
        left = request
        for attempt in range(BUS_ATTEMPTS):
            if attempt:
                _sleep(random.uniform(0, BUS_BACKOFF_SECONDS * 2 ** (attempt - 1)))
            try:
                result = self._events.put_events(Entries=[entry for _, entry in left])
            except (ClientError, BotoCoreError) as error:
                log.warning("event bus put of %d entries refused (try %d): %s", len(left), attempt + 1, error)
                continue
            metrics.count("BusEntries", len(left) - result.get("FailedEntryCount", 0))
            if not result.get("FailedEntryCount"):
                return []
            answers = result.get("Entries") or [{"ErrorCode": "unknown"}] * len(left)
            left = [pair for pair, answer in zip(left, answers, strict=False) if answer.get("ErrorCode")]
            log.warning("event bus refused %d entries (try %d): %s", len(left), attempt + 1,
                        sorted({answer.get("ErrorCode") for answer in answers if answer.get("ErrorCode")}))
        log.error("event bus: %d entries still refused after %d tries; their records are reported failed",
                  len(left), BUS_ATTEMPTS)
        return left

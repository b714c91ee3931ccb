"""Delivering chat events: to the websocket connections of the agents they
concern (through API Gateway's management API) and to an EventBridge bus."""

import json
import logging
import threading
from functools import lru_cache

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import config, metrics
from chalicelib.services import connections
from chalicelib.services.events import ChatEvent
from chalicelib.storage.clients import client_config

log = logging.getLogger(__name__)
EVENTS_PER_PUT = 10  # EventBridge's PutEvents limit
EVENT_SOURCE = "voipbin.chat"


# boto3's default session is not safe for making clients from several threads
# at once (make run delivers stream batches in several threads).
_making_client = threading.Lock()


def _client(service: str, **kwargs):
    import boto3  # here, not at import: boto3 is a third of a cold start, and most requests never push

    with _making_client:
        return boto3.client(service, config=client_config(), **kwargs)  # timeouts, botocore's jittered retries


@lru_cache(maxsize=8)
def _management_client(endpoint: str, region: str):
    return _client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=region)


def push(endpoint: str, connection_id: str, message: dict) -> bool:
    """post_to_connection; a connection that is gone is forgotten."""
    client = _management_client(endpoint, config.load().region)
    try:
        client.post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())
        metrics.count("PushesSent")
        return True
    except client.exceptions.GoneException:
        metrics.count("PushesGone")
        connections.forget(connection_id)
    except (ClientError, BotoCoreError) as error:  # one bad connection never blocks the others
        metrics.count("PushesFailed")
        log.warning("push to %s failed: %s", connection_id, error)
    return False


class Delivery:
    """Delivers the events of one batch of stream records. Lookups are
    cached for the batch: its records mostly concern the same people."""

    def __init__(self, websocket_endpoint: str | None = None, event_bus: str | None = None):
        self.websocket_endpoint = websocket_endpoint
        self.event_bus = event_bus
        self._events = None

    @classmethod
    def from_settings(cls) -> "Delivery":
        settings = config.load()
        return cls(settings.websocket_endpoint, settings.event_bus)

    @property
    def enabled(self) -> bool:
        return bool(self.websocket_endpoint or self.event_bus)

    def deliver(self, pending: list[tuple[str, ChatEvent]]) -> list[str]:
        """Put (record id, event) pairs on the bus, 10 to a request, then push
        them. Returns the record ids whose events the bus refused (to be
        retried); websocket pushes are best effort."""
        failed: list[str] = []
        delivered = pending
        if self.event_bus:
            delivered = []
            for start in range(0, len(pending), EVENTS_PER_PUT):
                batch = pending[start:start + EVENTS_PER_PUT]
                try:
                    self._put_on_bus([event for _, event in batch])
                    delivered += batch
                except (ClientError, BotoCoreError, RuntimeError) as error:
                    log.error("event bus put failed: %s", error)
                    failed += [record_id for record_id, _ in batch]
        if self.websocket_endpoint and delivered:
            self._push_all([event for _, event in delivered])
        return failed

    def _push_all(self, events: list[ChatEvent]) -> None:
        """Find the connections of every audience of the batch's events (one
        BatchGetItem per 100 audiences), then push each event to each of its
        connections once (an admin in the chat listens twice)."""
        audiences = {(event.customer_id, audience) for event in events for audience in event.audiences}
        listening = connections.connections_of(audiences)
        for event in events:
            sent: set[str] = set()
            for audience in event.audiences:
                for connection_id in listening.get((event.customer_id, audience), []):
                    if connection_id not in sent:
                        sent.add(connection_id)
                        push(self.websocket_endpoint, connection_id, event.message())

    def _put_on_bus(self, events: list[ChatEvent]) -> None:
        if self._events is None:
            self._events = _client("events", region_name=config.load().region)
        entries = [
            {"Source": EVENT_SOURCE, "DetailType": event.type, "Detail": json.dumps(event.data),
             "EventBusName": self.event_bus}
            for event in events
        ]
        result = self._events.put_events(Entries=entries)
        metrics.count("BusEntries", len(entries) - result.get("FailedEntryCount", 0))
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {result['FailedEntryCount']} of {len(entries)} events")

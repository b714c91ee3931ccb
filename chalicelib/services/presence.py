"""Presence: each agent's status (`available|away|busy|offline`), whether
they are online (a live websocket connection), and pushes of changes to the
connections that watch that agent, and only to them.

Everything about one agent lives in one partition, the one of their
AudienceItem (`{customer}#ws#agent#{id}`): `#` their live connections,
`presence` their status, `watcher#<connection>` each connection watching them.
So:
- `GET /presence` of 100 agents is two BatchGetItems of 100 keys (the status
  items, then the connection items: the latter are written by updates that
  carry no `kind`, so they are read as AudienceItems, apart);
- a change reads who watches (one Query of the partition from `presence` on)
  and whether the agent is connected (one BatchGetItem), then pushes to the
  watchers: its cost follows who looks, never the size of the chats the agent
  is in;
- a watch (`{"type": "watch_presence", "agent_ids": [...]}`, up to 100
  agents a frame) writes one small item per watched agent (25 to a
  BatchWriteItem), living as long as the connection (its TTL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

from pynamodb.exceptions import DoesNotExist

from chalicelib import config
from chalicelib.auth import Principal
from chalicelib.clock import is_uuid, now
from chalicelib.errors import BadRequest
from chalicelib.services import access, connections, delivery
from chalicelib.storage.models import (
    META,
    AudienceItem,
    ConnectionRouteItem,
    PresenceItem,
    PresenceWatcherItem,
    TableItem,
    registered,
)
from chalicelib.storage.operations import attempt

AGENTS_MAX = 100  # agents in one GET /presence or one watch_presence frame
# At most this many watchers of one agent are told of a change (one Query
# page): what one change costs is bounded whatever the number of watchers.
WATCHERS_MAX = 500
BATCH_GET_MAX = 100
PUSHES_AT_ONCE = 8
EVENT = "presence_updated"


def partition(customer_id: str, agent_id: str) -> str:
    return AudienceItem.key(customer_id, connections.agent_audience(agent_id))


@dataclass(frozen=True)
class Sender:
    """Who a websocket connection is, from its route item (one GetItem)."""

    customer_id: str
    agent_id: str | None
    name: str
    expires_at: int


def sender_of(connection_id: str) -> Sender | None:
    try:
        route = attempt(lambda: ConnectionRouteItem.get(ConnectionRouteItem.key(connection_id), META,
                                                        consistent_read=True), "reading a connection")
    except DoesNotExist:
        return None
    prefix = connections.agent_audience("")
    agent_id = next((a[len(prefix):] for a in route.audiences if a.startswith(prefix)), None)
    return Sender(route.customer_id, agent_id, route.agent_name or "", int(route.expires_at))


def _shown(agent_id: str, presence: PresenceItem | None, audience: AudienceItem | None) -> SimpleNamespace:
    """What a client sees: never seen is offline, not online."""
    online = bool(audience is not None and audience.live_connections(int(time.time())))
    if presence is None:
        return SimpleNamespace(agent_id=agent_id, status="offline", online=online, tm_update="")
    return SimpleNamespace(agent_id=agent_id, status=presence.status, online=online, tm_update=presence.tm_update)


def _data(shown: SimpleNamespace) -> dict:
    from chalicelib.schemas import render

    return render.resource(shown, "Presence")


# ---- reading ----------------------------------------------------------------------------

def agent_ids_of(raw: list[str], field: str = "agent_id") -> list[str]:
    """The `agent_id` query parameters (or a frame's `agent_ids`): 1..100 UUIDs."""
    if not raw or len(raw) > AGENTS_MAX:
        raise BadRequest(f"{field}: give 1 to {AGENTS_MAX} agent ids, got {len(raw)}")
    for value in raw:
        if not isinstance(value, str) or not is_uuid(value):
            raise BadRequest(f"{field}: must be a UUID, got {str(value)[:64]!r}")
    return [value.lower() for value in raw]


def presences(customer_id: str, agent_ids: list[str]) -> list[SimpleNamespace]:
    """In the order asked: for up to 100 agents, one BatchGetItem of their
    status items and one of their connection items."""
    distinct = list(dict.fromkeys(agent_ids))
    found: dict[tuple[str, str], TableItem] = {}
    for model, sort_key in ((PresenceItem, PresenceItem.SORT_KEY), (AudienceItem, META)):
        keys = [(partition(customer_id, a), sort_key) for a in distinct]
        for start in range(0, len(keys), BATCH_GET_MAX):
            chunk = keys[start:start + BATCH_GET_MAX]
            for item in attempt(lambda chunk=chunk, model=model: list(model.batch_get(chunk)), "reading presence"):
                found[(item.pk, item.sk)] = item
    return [_shown(a, found.get((partition(customer_id, a), PresenceItem.SORT_KEY)),
                   found.get((partition(customer_id, a), META))) for a in agent_ids]


def get_presence(principal: Principal, raw_agent_ids: list[str]) -> SimpleNamespace:
    """Any token of the customer may look (keys lead with its customer id)."""
    return SimpleNamespace(result=[_data(shown) for shown in presences(principal.customer_id,
                                                                      agent_ids_of(raw_agent_ids))])


# ---- changing ---------------------------------------------------------------------------

def set_status(principal: Principal, status: str) -> SimpleNamespace:
    """The caller's status (one UpdateItem), then one Query of their partition
    (online? who watches?) and a push to each watcher."""
    agent_id = access.require_agent(principal, "setting presence")
    pk = partition(principal.customer_id, agent_id)
    presence = PresenceItem(pk, PresenceItem.SORT_KEY, customer_id=principal.customer_id, agent_id=agent_id,
                            status=status, tm_update=now(), **registered(principal.customer_id, pk))
    attempt(presence.save, "setting presence")
    state = _partition_state(principal.customer_id, agent_id, presence)
    push_each(config.load().websocket_endpoint, state.watchers, {"type": EVENT, "data": _data(state.shown)})
    return state.shown


@dataclass(frozen=True)
class _State:
    shown: SimpleNamespace
    live_connections: int
    watchers: list[str]


def _partition_state(customer_id: str, agent_id: str, presence: PresenceItem | None = None,
                     only_if_watched: bool = False) -> _State | None:
    """The agent's status and watchers (one Query of the agent's partition from
    `presence` on: the status, then `watcher#...`), and their live connections
    (one BatchGetItem; skipped when `only_if_watched` and nobody watches)."""
    items = attempt(lambda: list(TableItem.query(
        partition(customer_id, agent_id), TableItem.sk >= PresenceItem.SORT_KEY, consistent_read=True,
        limit=WATCHERS_MAX + 1, page_size=WATCHERS_MAX + 1)), "reading who watches an agent")
    presence = presence or next((item for item in items if isinstance(item, PresenceItem)), None)
    moment = int(time.time())
    watchers = [item.connection_id for item in items
                if isinstance(item, PresenceWatcherItem) and int(item.expires_at) > moment]
    if only_if_watched and not watchers:
        return None
    audience = connections.agent_audience(agent_id)
    live = connections.connections_of([(customer_id, audience)]).get((customer_id, audience), [])
    shown = _shown(agent_id, presence, None)
    shown.online = bool(live)
    return _State(shown, len(live), watchers)


def watchers_before_connect(customer_id: str, agent_id: str) -> _State | None:
    """Before a connect is registered: the agent's presence and watchers if
    this connection will flip them online (someone watches, none is live).
    One Query when nobody watches, then one BatchGetItem. Read before the
    registration, so the connect handler does no more work after it than
    before: a push that reaches a connection still connecting finds it gone."""
    state = _partition_state(customer_id, agent_id, only_if_watched=True)
    return state if state is not None and state.live_connections == 0 else None


def announce_online(state: _State, endpoint: str | None) -> None:
    """After the connect is registered: its watchers learn the agent is online."""
    state.shown.online = True
    push_each(endpoint, state.watchers, {"type": EVENT, "data": _data(state.shown)})


def connection_closed(customer_id: str, agent_id: str, endpoint: str | None) -> None:
    """After a disconnect: when it was the agent's last connection, the
    watchers learn they are offline. One Query when nobody watches; then one
    BatchGetItem and the pushes."""
    state = _partition_state(customer_id, agent_id, only_if_watched=True)
    if state is not None and state.live_connections == 0:
        push_each(endpoint, state.watchers, {"type": EVENT, "data": _data(state.shown)})


# ---- watching ---------------------------------------------------------------------------

def watch(sender: Sender, connection_id: str, raw_agent_ids) -> dict:
    """A watch_presence frame: one watcher item per agent (25 to a
    BatchWriteItem), then the current presence of each as the answer."""
    if not isinstance(raw_agent_ids, list):
        raise BadRequest(f"agent_ids: a list of 1 to {AGENTS_MAX} agent ids")
    agent_ids = agent_ids_of(raw_agent_ids, "agent_ids")
    sort_key = f"{PresenceWatcherItem.SORT_PREFIX}{connection_id}"
    partitions = [partition(sender.customer_id, a) for a in dict.fromkeys(agent_ids)]
    watchers = [PresenceWatcherItem(pk, sort_key, connection_id=connection_id, expires_at=sender.expires_at,
                                    **registered(sender.customer_id, pk)) for pk in partitions]
    from chalicelib.storage.operations import put_all

    put_all(PresenceWatcherItem, watchers, "watching presence")
    return {"type": "presence", "data": {"result": [_data(s) for s in presences(sender.customer_id, agent_ids)]}}


# ---- pushing ----------------------------------------------------------------------------

def push_each(endpoint: str | None, connection_ids: list[str], message: dict) -> None:
    """One message to several connections, a few at once (delivery.push
    forgets the gone ones)."""
    if not endpoint or not connection_ids:
        return
    if len(connection_ids) == 1:
        delivery.push(endpoint, connection_ids[0], message)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(PUSHES_AT_ONCE, len(connection_ids))) as pool:
        list(pool.map(lambda connection_id: delivery.push(endpoint, connection_id, message), connection_ids))

"""Websocket connections, filed by audience: one item per agent (and one per
customer for its feed) maps its live connection ids to their expiry, so the
connections of N recipients come back in one BatchGetItem per 100."""

import time
from collections.abc import Iterable

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.storage.models import META, AudienceItem, ConnectionRouteItem, registering
from chalicelib.storage.operations import CONDITION_FAILED, ConditionFailed, attempt, transact

# API Gateway closes a websocket after 2 hours; the TTL sweeps what a lost
# disconnect event left behind.
CONNECTION_TTL_SECONDS = 2 * 3600
CUSTOMER_AUDIENCE = "customer"
BATCH_GET_MAX = 100
# API Gateway answers a push to a connection whose $connect has not returned
# yet as it answers one to a closed connection (410 Gone). A connection that
# young is kept, not forgotten: it would hear nothing more until it reconnected.
# $connect's integration times out at 29 s.
HANDSHAKE_SECONDS = 30
_clock = time.time


def agent_audience(agent_id: str) -> str:
    return f"agent#{agent_id}"


def audiences_of(principal: Principal) -> list[str]:
    """An agent hears about their own chatrooms; customer tokens, admins and
    managers also hear the customer-wide chat and chatmessage events."""
    audiences = [agent_audience(principal.agent_id)] if principal.is_agent else []
    if principal.is_privileged:
        audiences.append(CUSTOMER_AUDIENCE)
    return audiences


def register(principal: Principal, connection_id: str) -> None:
    """The route item (connection -> audiences) and the connection in each
    audience's map, in one transaction. An audience seen for the first time
    gets its map made (a map's entry can only be set once the map exists).

    The connection lives until its token expires, 2 hours at most: from then
    on pushes find it no more. The audience item itself is swept 2 hours
    after its latest connection, whatever that connection's token says, so a
    short token never takes the item, and its other connections, with it."""
    now = int(_clock())
    sweep = now + CONNECTION_TTL_SECONDS
    expires = min(principal.expires_at or sweep, sweep)
    audiences = audiences_of(principal)
    new_maps: set[str] = set()
    for _ in range(4):
        def write(tx, new_maps=frozenset(new_maps)) -> None:
            tx.save(ConnectionRouteItem(ConnectionRouteItem.key(connection_id), customer_id=principal.customer_id,
                                        audiences=audiences, expires_at=expires, agent_name=principal.name,
                                        connected_at=now))
            for audience in audiences:
                item = AudienceItem(AudienceItem.key(principal.customer_id, audience), META)
                common = [AudienceItem.customer_id.set(principal.customer_id), AudienceItem.expires_at.set(sweep),
                          *registering(AudienceItem, principal.customer_id, item.pk)]
                if audience in new_maps:
                    tx.update(item, [AudienceItem.connections.set({connection_id: expires}), *common],
                              condition=AudienceItem.connections.does_not_exist())
                else:
                    tx.update(item, [AudienceItem.connections[connection_id].set(expires), *common],
                              condition=AudienceItem.connections.exists())

        try:
            transact(write, "registering the connection")
            return
        except ConditionFailed as failed:
            for audience, reason in zip(audiences, failed.reasons[1:], strict=False):
                if reason == CONDITION_FAILED:
                    new_maps ^= {audience}  # made by nobody yet, or by a concurrent connect meanwhile
    raise ConditionFailed()


def forget(connection_id: str, gone: bool = False) -> None:
    """Remove a connection: disconnected, or `gone` when pushed to (then not
    while its $connect may still be under way: HANDSHAKE_SECONDS)."""
    try:
        route = attempt(lambda: ConnectionRouteItem.get(ConnectionRouteItem.key(connection_id), META,
                                                        consistent_read=True), "reading a connection")
    except DoesNotExist:
        return
    if gone and route.connected_at is not None and _clock() - int(route.connected_at) < HANDSHAKE_SECONDS:
        return

    def write(tx) -> None:
        for audience in route.audiences:
            tx.update(AudienceItem(AudienceItem.key(route.customer_id, audience), META),
                      [AudienceItem.connections[connection_id].remove()],
                      condition=AudienceItem.connections.exists())
        tx.delete(route)

    try:
        transact(write, "forgetting the connection")
    except ConditionFailed:  # an audience without a map (expired meanwhile): the route alone goes
        attempt(route.delete, "forgetting the connection")


def connections_of(audiences: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """(customer id, audience) -> its live connection ids: one BatchGetItem per 100 audiences."""
    wanted = sorted(set(audiences))
    now = int(_clock())
    found: dict[tuple[str, str], list[str]] = {}
    by_key = {AudienceItem.key(customer_id, audience): (customer_id, audience) for customer_id, audience in wanted}
    keys = [(key, META) for key in by_key]
    for start in range(0, len(keys), BATCH_GET_MAX):
        items = attempt(lambda start=start: list(AudienceItem.batch_get(keys[start:start + BATCH_GET_MAX])),
                        "reading websocket connections")
        for item in items:
            found[by_key[item.pk]] = item.live_connections(now)
    return found

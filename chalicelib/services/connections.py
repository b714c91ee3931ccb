"""Websocket connections as table items (with a TTL), per customer and agent."""

import time

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.storage.models import META, ConnectionItem, ConnectionRouteItem
from chalicelib.storage.operations import attempt, transact

# API Gateway closes a websocket after 2 hours; the TTL sweeps what a lost
# disconnect event left behind.
CONNECTION_TTL_SECONDS = 2 * 3600
CUSTOMER_AUDIENCE = "customer"


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
    expires = int(time.time()) + CONNECTION_TTL_SECONDS
    audiences = audiences_of(principal)

    def write(tx) -> None:
        tx.save(ConnectionRouteItem(ConnectionRouteItem.key(connection_id), customer_id=principal.customer_id,
                                    audiences=audiences, expires_at=expires))
        for audience in audiences:
            tx.save(ConnectionItem(ConnectionItem.key(principal.customer_id, audience), connection_id,
                                   connection_id=connection_id, customer_id=principal.customer_id,
                                   agent_id=principal.agent_id, expires_at=expires))

    transact(write, "registering the connection")


def forget(connection_id: str) -> None:
    """Remove a connection's items (disconnected, or gone when pushed to)."""
    try:
        route = attempt(lambda: ConnectionRouteItem.get(ConnectionRouteItem.key(connection_id), META,
                                                        consistent_read=True), "reading a connection")
    except DoesNotExist:
        return

    def write(tx) -> None:
        for audience in route.audiences:
            tx.delete(ConnectionItem(ConnectionItem.key(route.customer_id, audience), connection_id))
        tx.delete(route)

    transact(write, "forgetting the connection")


def connections_of(customer_id: str, audience: str) -> list[str]:
    """One Query: the live connections listening to this audience."""
    now = int(time.time())
    return [item.connection_id for item in ConnectionItem.query(ConnectionItem.key(customer_id, audience))
            if item.expires_at > now]

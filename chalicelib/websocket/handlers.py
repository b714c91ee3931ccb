"""The websocket API's handlers: $connect checks the same JWT as the REST API,
read the same way (Chalice has no websocket authorizer), $default answers
the client's frames (ping, typing, watch_presence), $disconnect forgets the
connection. A connect or disconnect that flips an agent's `online` is told
to whoever watches that agent."""

import functools
import json
import logging

from chalice import Response

from chalicelib import auth, config, metrics
from chalicelib.errors import ServiceError, Unauthorized
from chalicelib.services import connections, delivery

log = logging.getLogger(__name__)
PING_HINT = ('send {"type": "ping"}, {"type": "typing", "chat_id": ...} or '
             '{"type": "watch_presence", "agent_ids": [...]}; events arrive on their own')


def _writes_metrics(handler):
    """The invocation's metrics (pushes sent, gone, failed) written once it is
    answered, as the REST API's and the stream's are."""
    @functools.wraps(handler)
    def handle(event):
        try:
            return handler(event)
        finally:
            metrics.flush()

    return handle


def _management_endpoint(event) -> str:
    """Configured (local runs, custom domains) or API Gateway's own."""
    return config.load().websocket_endpoint or f"https://{event.domain_name}/{event.stage}"


def _query_tokens(raw: dict) -> list[str]:
    """Every `token` of the query string (API Gateway fills the multi-value map when a name repeats)."""
    many = (raw.get("multiValueQueryStringParameters") or {}).get("token")
    if many:
        return list(many)
    single = (raw.get("queryStringParameters") or {}).get("token")
    return [single] if single else []


@_writes_metrics
def on_connect(event):
    raw = event.to_dict()
    try:
        principal = auth.authenticate(raw.get("headers") or {}, _query_tokens(raw))
    except Unauthorized as error:
        return Response(body={"Code": error.code, "Message": error.message}, status_code=401)
    flip = _best_effort(lambda p: p.watchers_before_connect(principal.customer_id, principal.agent_id)) \
        if principal.is_agent else None
    connections.register(principal, event.connection_id)
    if flip is not None:
        _best_effort(lambda p: p.announce_online(flip, _management_endpoint(event)))
    return None


@_writes_metrics
def on_message(event):
    endpoint = _management_endpoint(event)
    reply = reply_to(event.body, event.connection_id, endpoint)
    if reply is not None:
        delivery.push(endpoint, event.connection_id, reply)


def reply_to(body: str, connection_id: str, endpoint: str | None = None) -> dict | None:
    """pong to a ping; typing and watch_presence to their services; an error
    frame (never a dropped connection) to anything else or a refused frame."""
    try:
        message = json.loads(body)
    except RecursionError:
        log.warning("websocket frame from %s nested too deeply; answered with an error", connection_id)
        return {"type": "error", "message": f"frame: JSON nested too deeply; {PING_HINT}"}
    except ValueError:
        return {"type": "error", "message": f"frame: not JSON; {PING_HINT}"}
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        return {"type": "pong"}
    if kind in ("typing", "watch_presence"):
        from chalicelib.services import presence, typing_indicator  # only connections that use them

        try:
            sender = presence.sender_of(connection_id)
            if sender is None:
                return {"type": "error", "message": "connection: not registered (reconnect)"}
            if kind == "typing":
                typing_indicator.on_typing(sender, message.get("chat_id"), endpoint)
                return None
            return presence.watch(sender, connection_id, message.get("agent_ids"))
        except ServiceError as error:
            if error.status >= 500:
                log.error("websocket %s frame from %s failed: %s", kind, connection_id, error.message)
            return {"type": "error", "message": f"{kind}: {error.message}"}
    return {"type": "error", "message": PING_HINT}


@_writes_metrics
def on_disconnect(event):
    from chalicelib.services import presence

    sender = presence.sender_of(event.connection_id)
    connections.forget(event.connection_id)
    if sender is not None and sender.agent_id is not None:
        _best_effort(lambda p: p.connection_closed(sender.customer_id, sender.agent_id, _management_endpoint(event)))


def _best_effort(step):
    """A presence step of a connect or disconnect (`step(presence module)`):
    a failure here is logged, and never refuses the connect nor the disconnect."""
    from chalicelib.services import presence

    try:
        return step(presence)
    except Exception:  # noqa: BLE001 (logged; the connection itself is fine)
        log.exception("presence around a connection change")
        return None

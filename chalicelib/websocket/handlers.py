"""The websocket API's handlers: $connect checks the same JWT as the REST API,
read the same way (Chalice has no websocket authorizer), $default answers
pings, $disconnect forgets the connection."""

import json
import logging

from chalice import Response

from chalicelib import auth, config
from chalicelib.errors import Unauthorized
from chalicelib.services import connections, delivery

log = logging.getLogger(__name__)
PING_HINT = 'send {"type": "ping"}; events arrive on their own'


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


def on_connect(event):
    raw = event.to_dict()
    try:
        principal = auth.authenticate(raw.get("headers") or {}, _query_tokens(raw))
    except Unauthorized as error:
        return Response(body={"Code": error.code, "Message": error.message}, status_code=401)
    connections.register(principal, event.connection_id)
    return None


def on_message(event):
    delivery.push(_management_endpoint(event), event.connection_id, reply_to(event.body, event.connection_id))


def reply_to(body: str, connection_id: str) -> dict:
    """pong to a ping; an error frame (never a dropped connection) to anything else."""
    try:
        message = json.loads(body)
    except RecursionError:
        log.warning("websocket frame from %s nested too deeply; answered with an error", connection_id)
        return {"type": "error", "message": f"frame: JSON nested too deeply; {PING_HINT}"}
    except ValueError:
        return {"type": "error", "message": f"frame: not JSON; {PING_HINT}"}
    if isinstance(message, dict) and message.get("type") == "ping":
        return {"type": "pong"}
    return {"type": "error", "message": PING_HINT}


def on_disconnect(event):
    connections.forget(event.connection_id)

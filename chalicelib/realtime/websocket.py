"""The websocket API's handlers: $connect checks the same JWT as the REST API
(Chalice has no websocket authorizer), $default answers pings, $disconnect
forgets the connection."""

import json
import os

from chalice import Response

from chalicelib import auth
from chalicelib.auth.secret import jwt_secret
from chalicelib.errors import Unauthorized
from chalicelib.realtime import connections, delivery


def _management_endpoint(event) -> str:
    """Configured (local runs, custom domains) or API Gateway's own."""
    return os.environ.get("CHAT_WEBSOCKET_ENDPOINT") or f"https://{event.domain_name}/{event.stage}"


def on_connect(event):
    raw = event.to_dict()
    token = (raw.get("queryStringParameters") or {}).get("token")
    if not token:
        headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        bearer = headers.get("authorization", "")
        token = bearer[7:] if bearer.startswith("Bearer ") else None
    try:
        if not token:
            raise Unauthorized("token: missing (give it as ?token=)")
        principal = auth.decode(token, jwt_secret())
    except Unauthorized as error:
        return Response(body={"Code": error.code, "Message": error.message}, status_code=401)
    connections.register(principal, event.connection_id)
    return None


def on_message(event):
    try:
        message = json.loads(event.body)
    except ValueError:
        message = None
    if isinstance(message, dict) and message.get("type") == "ping":
        reply = {"type": "pong"}
    else:
        reply = {"type": "error", "message": 'send {"type": "ping"}; events arrive on their own'}
    delivery.push(_management_endpoint(event), event.connection_id, reply)


def on_disconnect(event):
    connections.forget(event.connection_id)

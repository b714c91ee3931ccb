"""API Gateway's WebSocket API, on a laptop.

A `websockets` server on ws://127.0.0.1:CHAT_WS_PORT turns connects, messages
and disconnects into the events API Gateway sends, and calls the same Chalice
handlers Lambda runs. Beside it, a tiny HTTP server plays API Gateway's
management API (POST/DELETE /@connections/{id}), so the push code that runs
on AWS (boto3 apigatewaymanagementapi.post_to_connection) runs unchanged.
"""

import asyncio
import base64
import json
import logging
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import serve

log = logging.getLogger(__name__)
STAGE = "local"


class _ManagementServer(ThreadingHTTPServer):
    request_queue_size = 1024  # a burst of pushes is never refused (the default is 5)


class LocalWebsocketApi:
    def __init__(self, handlers, host: str = "127.0.0.1", port: int = 8001, management_port: int = 0):
        self.connect_handler, self.message_handler, self.disconnect_handler = handlers
        self.host, self.port, self.management_port = host, port, management_port
        self._connections: dict = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="websocket-server", daemon=True)
        self._management: ThreadingHTTPServer | None = None
        self.error: BaseException | None = None

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._management = _ManagementServer((self.host, self.management_port), self._management_handler())
        self.management_port = self._management.server_address[1]
        threading.Thread(target=self._management.serve_forever, kwargs={"poll_interval": 0.1},
                         name="ws-management", daemon=True).start()
        self._thread.start()
        self._ready.wait(10)
        if self.error:
            self._management.shutdown()
            self._management.server_close()
            raise self.error

    @property
    def management_endpoint(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    def stop(self, timeout: float = 1.0) -> None:
        """Close every connection (each client is sent a close frame) and stop
        listening; a client slow to answer the close is left after `timeout`."""
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        if self._management:
            self._management.shutdown()
            self._management.server_close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start()
            self.error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._session, self.host, self.port, process_request=self._on_handshake) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    # ---- websocket side --------------------------------------------------------------

    def _event(self, route_key: str, connection_id: str, **extra) -> dict:
        return {
            "requestContext": {
                "routeKey": route_key, "eventType": route_key.strip("$").upper() or "MESSAGE",
                "connectionId": connection_id, "domainName": f"{self.host}:{self.port}", "stage": STAGE,
                "apiId": "local",
            },
            "isBase64Encoded": False,
            **extra,
        }

    async def _on_handshake(self, connection, request):
        connection_id = base64.b64encode(os.urandom(12)).decode()
        connection.chat_connection_id = connection_id
        query = dict(parse_qsl(urlsplit(request.path).query))
        event = self._event("$connect", connection_id, queryStringParameters=query or None,
                            headers=dict(request.headers.raw_items()))
        result = await asyncio.to_thread(self.connect_handler, event, None) or {}
        status = result.get("statusCode", 200)
        if status != 200:
            return connection.respond(HTTPStatus(status), result.get("body") or "refused\n")
        self._connections[connection_id] = connection
        return None

    async def _session(self, connection) -> None:
        connection_id = connection.chat_connection_id
        try:
            async for message in connection:
                body = message if isinstance(message, str) else message.decode("utf-8", "replace")
                event = self._event("$default", connection_id, body=body)
                event["requestContext"]["eventType"] = "MESSAGE"
                await asyncio.to_thread(self.message_handler, event, None)
        except Exception:  # a dropped connection ends here too
            pass
        finally:
            self._connections.pop(connection_id, None)
            await asyncio.to_thread(self.disconnect_handler, self._event("$disconnect", connection_id), None)

    def _send(self, connection_id: str, data: bytes) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None or self._loop is None:
            return False
        future = asyncio.run_coroutine_threadsafe(connection.send(data.decode("utf-8")), self._loop)
        try:
            future.result(timeout=5)
            return True
        except Exception:
            return False

    def _close(self, connection_id: str) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None or self._loop is None:
            return False
        asyncio.run_coroutine_threadsafe(connection.close(), self._loop)
        return True

    # ---- management API side ----------------------------------------------------------

    def _management_handler(self):
        api = self

        class ManagementApi(BaseHTTPRequestHandler):
            def _connection_id(self) -> str | None:
                parts = urlsplit(self.path).path.split("/")
                if len(parts) >= 3 and parts[-2] == "@connections":
                    return unquote(parts[-1])
                return None

            def _answer(self, status: int, body: dict | None = None, error_type: str | None = None):
                payload = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):  # noqa: N802 (http.server's naming)
                connection_id = self._connection_id()
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if connection_id and api._send(connection_id, data):
                    self._answer(200)
                else:
                    self._answer(410, {"message": "Gone"}, "GoneException")

            def do_DELETE(self):  # noqa: N802
                connection_id = self._connection_id()
                if connection_id and api._close(connection_id):
                    self._answer(204)
                else:
                    self._answer(410, {"message": "Gone"}, "GoneException")

            def do_GET(self):  # noqa: N802
                connection_id = self._connection_id()
                if connection_id in api._connections:
                    self._answer(200, {"ConnectionId": connection_id})
                else:
                    self._answer(410, {"message": "Gone"}, "GoneException")

            def log_message(self, format, *args):  # noqa: A002
                pass

        return ManagementApi

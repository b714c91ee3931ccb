"""`make run`'s agent console: the static files of console/ on their own
port, so the page is on another origin than the API (as a deployment would
host it) and every call it makes exercises CORS.

It also answers `config.json`: where the API and the websocket are and,
locally only, the demo agents the console's "sign in as" list offers (tokens
minted by make run with the data directory's secret). A deployment serves a
config.json of its own, without `demo` (README, "Agent console"), and its
agents paste their token.
"""

import json
import logging
import threading
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
DEFAULT_PORT = 8002
DEMO_AGENTS = ("alice", "bob", "carol")
DEMO_TOKEN_SECONDS = 24 * 3600
PERMISSION_AGENT = 16

log = logging.getLogger("chat.console")


def demo_agents(secret: str, customer_id: str) -> list[dict]:
    """The demo customer's agents, with tokens: the same ids at every start
    (derived from the customer), so their chats are there again."""
    from chalicelib import auth

    agents = []
    for name in DEMO_AGENTS:
        agent_id = str(uuid.uuid5(uuid.UUID(customer_id), f"demo-agent-{name}"))
        token = auth.mint(secret, customer_id=customer_id, agent_id=agent_id, name=name,
                          permission=PERMISSION_AGENT, ttl_seconds=DEMO_TOKEN_SECONDS)
        agents.append({"id": agent_id, "name": name, "token": token})
    return agents


class ConsoleServer:
    def __init__(self, host: str, port: int, settings: dict):
        body = json.dumps(settings).encode()

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 (no access log: the config holds tokens)
                pass

            def end_headers(self):
                self.send_header("Cache-Control", "no-store")  # a newer make run's files and tokens, always
                super().end_headers()

            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] == "/config.json":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

        Handler.extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}
        self._server = ThreadingHTTPServer((host, port), partial(Handler, directory=str(CONSOLE_DIR)))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="console", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

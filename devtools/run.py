"""`make run`: the whole service on a laptop, no AWS account, no Docker.

An embedded DynamoDB (moto's server on loopback) unless CHAT_DYNAMODB_ENDPOINT
names another, the table created as in production, a stream poller feeding
the same handler Lambda calls, and the HTTP API on 127.0.0.1:CHAT_PORT. The
same moto server holds the files' bucket (unless CHAT_S3_ENDPOINT names
another S3), so the upload and download URLs the API hands out are on
loopback too.

The embedded table is kept in the data directory (.data/, CHAT_DATA_DIR) and
comes back on the next start, stream work not yet done included
(devtools.journal); CHAT_EPHEMERAL=1 (make run-fresh) starts empty and keeps
nothing. The development secret is kept there too, so tokens keep working.
"""

import io
import json
import logging
import os
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
from http import HTTPStatus

import boto3

DEFAULT_PORT = 8000
DEFAULT_WS_PORT = 8001
# Requests the app serves at once (more wait their turn, none is refused); the
# connection pools of the DynamoDB clients are sized for them plus the stream
# poller and the websocket handlers, so no connection is thrown away.
MAX_CONCURRENT_REQUESTS = 64
POOL_CONNECTIONS = MAX_CONCURRENT_REQUESTS + 16
# Connections waiting to be accepted (Python's default is 5: a burst of clients
# got "connection reset by peer"). The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024
POLL_SECONDS = 0.1  # how often the servers' loops look for a stop request
# Batches of the stream delivered at once (Lambda's ParallelizationFactor; the
# deployed mapping's is in infra/build_template.py): records of different items
# go to different lanes, so one large fan-out never holds back another chat.
STREAM_LANES = 4

log = logging.getLogger("chat.local")


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3", "moto", "pynamodb", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class EmbeddedDynamoDB:
    """moto's server on loopback, in a thread of this process (what moto's
    ThreadedMotoServer does, with a long listen queue and a quick stop)."""

    def __init__(self, port: int = 0):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import ThreadedWSGIServer

        class Server(ThreadedWSGIServer):
            request_queue_size = LISTEN_BACKLOG

        class Dispatcher(DomainDispatcherApplication):
            """moto's dispatcher tells a request's backend from its host by
            listing moto's package directory (hundreds of isdir calls) on every
            request: about a quarter of the embedded DynamoDB's time under load. The
            answer for a host never changes while it runs: remember it."""

            def __init__(self, create_app):
                super().__init__(create_app)
                self._backends: dict = {}

            def get_backend_for_host(self, host):
                if host not in self._backends:
                    self._backends[host] = super().get_backend_for_host(host)
                return self._backends[host]

        class Handler(MotoRequestHandler):
            """Keep-alive connections. werkzeug closes every connection (it
            cannot tell where a request's body ends, to find the next request
            line), so each request to the embedded DynamoDB was a new connection
            and a new server thread: about a tenth of its time under a large
            fan-out. The body is read here whole, by its Content-Length (boto3
            always sends one), and the app reads it from memory; a request
            without one is answered and closed as werkzeug does."""

            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are sent apart: no 40 ms delayed-ACK stall

            def run_wsgi(self):
                self._keep_alive = False
                length = self.headers.get("Content-Length", "")
                if "Transfer-Encoding" in self.headers or not length.isdigit():
                    return super().run_wsgi()
                connection_rfile, self.rfile = self.rfile, io.BytesIO(self.rfile.read(int(length)))
                self._keep_alive = not self.close_connection
                try:
                    return super().run_wsgi()
                finally:
                    self.rfile = connection_rfile

            def send_header(self, keyword, value):
                if self._keep_alive and keyword.lower() == "connection" and value.lower() == "close":
                    return
                super().send_header(keyword, value)

        self._server = Server("127.0.0.1", port, Dispatcher(create_backend_app), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                        name="embedded-dynamodb", daemon=True)

    def start(self) -> str:
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(2)


def start_embedded_dynamodb():
    from devtools import moto_patches

    moto_patches.apply()  # DynamoDB's transaction semantics, thread-safe
    moto_patches.write_attribute_values_as_they_are()
    moto_patches.size_items_once()
    moto_patches.cache_condition_expressions()
    moto_patches.client_attribute_values_as_they_are()
    from devtools import aws_limits

    aws_limits.install()  # refuse what AWS refuses, locally too
    server = EmbeddedDynamoDB(int(os.environ.get("CHAT_DYNAMODB_PORT", "0")))
    return server, server.start()


# http.server's own refusals (before a request reaches the app), as the app's errors.
_REFUSALS = {
    400: ("BadRequestError", "The request is not valid HTTP."),
    414: ("URITooLongError", "The URL is longer than the 65,536 bytes this server reads: send tokens "
                             "in the Authorization header and keep query strings short."),
    431: ("RequestHeaderFieldsTooLargeError", "A header line is longer than 65,536 bytes, or there are more "
                                              "than 100 headers."),
    503: ("ServiceUnavailableError", "The server is stopping; send the request again once it is back."),
    505: ("HTTPVersionNotSupportedError", "Only HTTP/1.0 and HTTP/1.1 are served."),
}


class InFlight:
    """Requests being answered, so a stop can let them finish (briefly) while
    refusing new ones."""

    def __init__(self):
        self.stopping = threading.Event()
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self):
        with self._idle:
            self._count += 1

    def __exit__(self, *exc):
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()

    def stop(self, timeout: float) -> bool:
        """Refuse new requests; wait up to `timeout` for those begun. True if none is left."""
        self.stopping.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._count, timeout)


def local_server(app, host: str, port: int, in_flight: InFlight | None = None):
    """Chalice's local server, minus its access log (it would print every
    request's query string, tokens included), with a long listen queue, at
    most MAX_CONCURRENT_REQUESTS requests in the app at once, and JSON errors."""
    from chalice.config import Config
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        LocalChalice,
        LocalDevServer,
        ThreadedHTTPServer,
    )

    from devtools import gateway

    gateway.answer_unknown_routes_as_the_stack_does()  # a 404 of the API's shape, as on AWS
    in_app = threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS)
    in_flight = in_flight or InFlight()

    class Server(ThreadedHTTPServer):
        request_queue_size = LISTEN_BACKLOG
        daemon_threads = True

    class QuietHandler(ChaliceRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
            pass

        def _generic_handle(self) -> None:
            with in_flight:
                if in_flight.stopping.is_set():
                    # On a kept-alive connection after Ctrl-C: not begun, so not done.
                    self.send_error(503)
                    return
                with in_app:
                    super()._generic_handle()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def send_response(self, code, message=None):
            self._header_names = set()
            super().send_response(code, message)

        def send_header(self, keyword, value):
            getattr(self, "_header_names", set()).add(keyword.lower())
            super().send_header(keyword, value)

        def end_headers(self):
            """The answers made before the app (an unknown path, a refused
            request line) carry the CORS headers too, as the app's do."""
            if hasattr(self, "_header_names"):
                from chalicelib.api import cors

                missing: dict = {}
                cors.add_to(missing, getattr(self, "headers", None) or {}, preflight=self.command == "OPTIONS")
                for name, value in missing.items():
                    if name.lower() not in self._header_names:
                        super().send_header(name, value)
            super().end_headers()

        def send_error(self, code, message=None, explain=None):
            """http.server answers a method it has no do_* for (TRACE, PROPFIND...)
            with 501, where API Gateway and Chalice answer 405; and it refuses a
            too long URL or header (414, 431) with an HTML page. Both as the
            API's errors: {"Code": ..., "Message": ...}."""
            if code == 501:
                status, error = 405, ("MethodNotAllowedError", f"Unsupported method: {self.command}")
            else:
                status = code
                error = _REFUSALS.get(code) or (HTTPStatus(code).phrase.replace(" ", "").replace("-", "") + "Error",
                                                message or HTTPStatus(code).phrase)
            body = json.dumps({"Code": error[0], "Message": error[1]}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()
                if code in (414, 431):
                    self._discard_the_rest()
            except OSError:
                pass  # the client is gone

        def _discard_the_rest(self) -> None:
            """The client is still sending the request refused: read it to the end
            (or for a second) before closing, or the close resets the connection
            and the client may never read the answer."""
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            deadline, budget = time.monotonic() + 1.0, 16 * 1024 * 1024
            while time.monotonic() < deadline and budget > 0:
                chunk = self.rfile.read1(65536)
                if not chunk:
                    break
                budget -= len(chunk)

    # What chalice.local.create_local_server does, with our handler and server.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, Config.create(chalice_stage="local"), host, port, handler_cls=QuietHandler,
                          server_cls=Server)


def _size_pools() -> None:
    """PynamoDB's connections (one per model) keep POOL_CONNECTIONS sockets each."""
    import pynamodb.settings

    if not hasattr(pynamodb.settings.override_settings, "max_pool_connections"):
        pynamodb.settings.default_settings_dict["max_pool_connections"] = POOL_CONNECTIONS


def _open_journal(directory, table_name: str, stream_arn: str, region: str):
    """Load the kept table into moto, queue the stream records not yet handled,
    and journal every change from now on (devtools.journal)."""
    from moto.dynamodb.models import dynamodb_backends

    from devtools import moto_patches
    from devtools.journal import Journal

    journal = Journal(directory / "dynamodb", table_name, fsync=os.environ.get("CHAT_DATA_FSYNC", "everysec"))
    started = time.monotonic()
    state = journal.load()
    backend = dynamodb_backends[stream_arn.split(":")[4]][region]
    with moto_patches.lock():
        restored, requeued = journal.restore(backend, state, moto_patches.stream_add())
        journal.open(backend, moto_patches.lock())
        moto_patches.attach_journal(journal)
    if state.torn:
        log.warning("discarded the torn end of the journal (a write cut short by a power loss)")
    log.info("local store %s: %d items restored, %d stream records to deliver (%.2f s)",
             directory, restored, requeued, time.monotonic() - started)
    return journal


def main() -> int:
    _quiet_logs()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("CHAT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["CHAT_REGION"])
    _size_pools()

    from devtools import datadir, filestore

    directory = datadir.path()
    embedded = not os.environ.get("CHAT_DYNAMODB_ENDPOINT")
    durable = embedded and not datadir.ephemeral()
    if durable:
        try:
            lock = datadir.lock(directory)  # noqa: F841 (held until the process ends)
        except datadir.DataDirInUse as error:
            log.error("%s", error)
            return 1
    if os.environ.get("CHAT_JWT_SECRET"):
        secret_from = "CHAT_JWT_SECRET (from the environment)"
    else:
        os.environ["CHAT_JWT_SECRET"] = datadir.secret(directory)
        secret_from = f"the secret in {directory / datadir.SECRET_FILE}"

    moto_server = None
    embedded_s3 = not os.environ.get("CHAT_S3_ENDPOINT")
    if embedded or embedded_s3:
        moto_server, endpoint = start_embedded_dynamodb()  # moto's server: DynamoDB and S3
        if embedded:
            os.environ["CHAT_DYNAMODB_ENDPOINT"] = endpoint
            log.info("embedded DynamoDB (moto) on %s", endpoint)
        if embedded_s3:
            os.environ["CHAT_S3_ENDPOINT"] = endpoint
    os.environ.setdefault("CHAT_FILES_BUCKET", filestore.DEFAULT_BUCKET)

    # Configuration is complete: only now import what reads it.
    from chalicelib import auth, config
    from chalicelib.storage.table import create_table
    from devtools.console_server import DEFAULT_PORT as CONSOLE_PORT
    from devtools.console_server import ConsoleServer, demo_agents
    from devtools.poller import StreamPoller
    from devtools.streams import ShardReader, lambda_filter, streams_client
    from devtools.websocket_server import LocalWebsocketApi

    settings = config.load()
    dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint)
    stream_arn = create_table(dynamodb, settings.table_name)
    log.info("table %s ready, stream %s", settings.table_name, stream_arn)
    journal = None
    if durable:
        from devtools.journal import CorruptStore

        try:
            journal = _open_journal(directory, settings.table_name, stream_arn, settings.region)
        except CorruptStore as error:
            log.error("%s: move %s aside (or start with CHAT_EPHEMERAL=1 / another CHAT_DATA_DIR)",
                      error, directory / "dynamodb")
            moto_server.stop()
            return 1

    files_kept = durable and embedded_s3
    restored = filestore.prepare(settings.s3_endpoint, settings.region, settings.files_bucket,
                                 directory / "files" if files_kept else None)
    log.info("files: bucket %s on %s%s", settings.files_bucket, settings.s3_endpoint,
             f", {restored} kept objects restored" if files_kept else "")

    import app as chat_app
    from chalicelib.stream.handler import stream_filters

    # The embedded stream holds only what this process wrote, and the records
    # re-queued from the journal: all of it is to handle. Another endpoint's
    # stream may be long; start where it is now, as a new event source mapping.
    reader = ShardReader(streams_client(settings.region, settings.dynamodb_endpoint), stream_arn,
                         start="TRIM_HORIZON" if embedded else "LATEST")
    poller = StreamPoller(reader, chat_app.on_table_change, stream_arn, settings.region,
                          on_handled=journal.handled if journal else None,
                          lanes=int(os.environ.get("CHAT_STREAM_LANES", STREAM_LANES)),
                          delivers=lambda_filter(stream_filters()))  # as the stage's mapping filters them
    if not embedded:
        reader.read(limit=1)  # fix the LATEST position before the first request can write
    poller.start()

    host = os.environ.get("CHAT_HOST", "127.0.0.1")
    port = int(os.environ.get("CHAT_PORT", DEFAULT_PORT))
    ws_port = int(os.environ.get("CHAT_WS_PORT", DEFAULT_WS_PORT))
    websockets_api = LocalWebsocketApi((chat_app.ws_connect, chat_app.ws_message, chat_app.ws_disconnect), host,
                                       ws_port, int(os.environ.get("CHAT_WS_MANAGEMENT_PORT", "0")))

    def close_the_rest():
        poller.stop(timeout=0.3)  # a batch in hand is delivered again after a restart
        if journal is not None:
            journal.close()
        if moto_server is not None:
            moto_server.stop()

    customer_id = (os.environ.get("CHAT_DEMO_CUSTOMER_ID")
                   or (datadir.demo_customer(directory) if durable else str(uuid.uuid4())))
    in_flight = InFlight()
    server = None
    try:
        websockets_api.start()
        server = local_server(chat_app.app, host, port, in_flight)
        bound_port = server.server.server_address[1]
        console = ConsoleServer(host, int(os.environ.get("CHAT_CONSOLE_PORT", CONSOLE_PORT)), {
            "api": f"http://{host}:{bound_port}/v1.0", "websocket": f"ws://{host}:{websockets_api.port}/",
            "demo": {"customer_id": customer_id, "agents": demo_agents(settings.jwt_secret, customer_id)}})
        console.start()
    except OSError as error:
        log.error("cannot listen on %s (%s); set CHAT_PORT / CHAT_WS_PORT / CHAT_CONSOLE_PORT to free ports",
                  host, error.strerror)
        if server is not None:
            server.server.server_close()
        websockets_api.stop()
        close_the_rest()
        return 1
    # The stream handler pushes through this, as it would through API Gateway.
    os.environ["CHAT_WEBSOCKET_ENDPOINT"] = websockets_api.management_endpoint
    token = auth.mint(settings.jwt_secret, customer_id=customer_id, ttl_seconds=24 * 3600)
    token_tool = ".venv/bin/python -m devtools.token"
    if os.environ.get("CHAT_DATA_DIR") and secret_from.startswith("the secret"):
        token_tool = f"CHAT_DATA_DIR={shlex.quote(str(directory))} {token_tool}"
    kept = (f"Data: kept in {directory} (make run-fresh or CHAT_EPHEMERAL=1 starts empty)" if durable else
            "Data: not kept (ephemeral run)" if embedded else f"Data: in {settings.dynamodb_endpoint}")
    kept += (f"\nFiles: bucket {settings.files_bucket} on {settings.s3_endpoint}"
             + (f", kept in {directory / 'files'}" if files_kept else ", not kept" if embedded_s3 else ""))
    print(f"Chat API on http://{host}:{bound_port}/v1.0  (customer {customer_id})\n"
          f"Websocket events on ws://{host}:{websockets_api.port}/?token=<token>\n"
          f"Agent console on http://{host}:{console.port}/  (sign in as a demo agent: local only)\n"
          f"{kept}\n"
          f"Tokens are signed with {secret_from}.\n"
          f"Try it:\n  curl 'http://{host}:{bound_port}/v1.0/chats?token={token}'\n"
          f"More tokens, from another terminal in this directory (README, Tokens):\n"
          f"  {token_tool} --customer-id {customer_id}\n", flush=True)

    stopped = threading.Event()

    def stop(signum, _frame):
        if stopped.is_set():
            os._exit(128 + signum)  # a second Ctrl-C: now (what was confirmed is on disk already)
        stopped.set()
        log.info("stopping (signal %s)", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.server.serve_forever(poll_interval=POLL_SECONDS)
    finally:
        # Under 2 seconds in all: no new connection, no new request; those begun
        # get up to 0.8 s to finish; what the journal holds is fsynced.
        started = time.monotonic()
        server.server.server_close()
        console.stop()
        closing = threading.Thread(target=websockets_api.stop, kwargs={"timeout": 0.5}, daemon=True)
        closing.start()
        poller.request_stop()
        if not in_flight.stop(timeout=0.8):
            log.warning("stopping with requests still running: they are not answered")
        closing.join(0.5)
        close_the_rest()
        log.info("stopped in %.2f s; %d stream records delivered", time.monotonic() - started, poller.delivered)
    return 0


def _exit(code: int) -> None:
    """Everything kept is on disk and the sockets are closed; tearing down the
    interpreter's modules (moto's are many) would add about a second to Ctrl-C."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())

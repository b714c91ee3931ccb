"""`make run`: the whole service on a laptop, no AWS account, no Docker.

An embedded DynamoDB (moto's server on loopback) unless CHAT_DYNAMODB_ENDPOINT
names another, the table created as in production, a stream poller feeding
the same handler Lambda calls, and the HTTP API on 127.0.0.1:CHAT_PORT.
"""

import json
import logging
import os
import secrets
import signal
import sys
import threading
import uuid

import boto3

DEFAULT_PORT = 8000
DEFAULT_WS_PORT = 8001


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3", "moto", "pynamodb", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def start_embedded_dynamodb():
    from moto.server import ThreadedMotoServer

    from devtools import moto_patches

    moto_patches.apply()  # DynamoDB's transaction semantics, thread-safe

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(os.environ.get("CHAT_DYNAMODB_PORT", "0")),
                                verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def local_server(app, host: str, port: int):
    """Chalice's local server, minus its access log: it would print every
    request's query string, tokens included."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer

    class QuietHandler(ChaliceRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
            pass

        def send_error(self, code, message=None, explain=None):
            """http.server answers a method it has no do_* for (TRACE, PROPFIND...)
            with 501; API Gateway and Chalice answer such a request with 405."""
            if code != 501:
                return super().send_error(code, message, explain)
            body = json.dumps({"Code": "MethodNotAllowedError",
                               "Message": f"Unsupported method: {self.command}"}).encode()
            self.send_response(405)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    # What chalice.local.create_local_server does, with our handler.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, Config.create(chalice_stage="local"), host, port, handler_cls=QuietHandler)


def main() -> int:
    _quiet_logs()
    log = logging.getLogger("chat.local")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("CHAT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["CHAT_REGION"])
    if not os.environ.get("CHAT_JWT_SECRET"):
        os.environ["CHAT_JWT_SECRET"] = secrets.token_urlsafe(32)
        print(f"CHAT_JWT_SECRET was not set; this run's development secret:\n"
              f"  export CHAT_JWT_SECRET={os.environ['CHAT_JWT_SECRET']}\n")

    moto_server = None
    if not os.environ.get("CHAT_DYNAMODB_ENDPOINT"):
        moto_server, endpoint = start_embedded_dynamodb()
        os.environ["CHAT_DYNAMODB_ENDPOINT"] = endpoint
        log.info("embedded DynamoDB (moto) on %s", endpoint)

    # Configuration is complete: only now import what reads it.
    from chalicelib import auth, config
    from chalicelib.storage.table import create_table
    from devtools.poller import StreamPoller
    from devtools.streams import ShardReader, streams_client
    from devtools.websocket_server import LocalWebsocketApi

    settings = config.load()
    dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint)
    stream_arn = create_table(dynamodb, settings.table_name)
    log.info("table %s ready, stream %s", settings.table_name, stream_arn)

    import app as chat_app

    reader = ShardReader(streams_client(settings.region, settings.dynamodb_endpoint), stream_arn, start="LATEST")
    poller = StreamPoller(reader, chat_app.on_table_change, stream_arn, settings.region)
    reader.read(limit=1)  # fix the LATEST position before the first request can write
    poller.start()

    host = os.environ.get("CHAT_HOST", "127.0.0.1")
    port = int(os.environ.get("CHAT_PORT", DEFAULT_PORT))
    ws_port = int(os.environ.get("CHAT_WS_PORT", DEFAULT_WS_PORT))
    websockets_api = LocalWebsocketApi((chat_app.ws_connect, chat_app.ws_message, chat_app.ws_disconnect), host,
                                       ws_port, int(os.environ.get("CHAT_WS_MANAGEMENT_PORT", "0")))
    try:
        websockets_api.start()
        server = local_server(chat_app.app, host, port)
    except OSError as error:
        log.error("cannot listen on %s (%s); set CHAT_PORT / CHAT_WS_PORT to free ports", host, error.strerror)
        websockets_api.stop()
        poller.stop()
        if moto_server is not None:
            moto_server.stop()
        return 1
    # The stream handler pushes through this, as it would through API Gateway.
    os.environ["CHAT_WEBSOCKET_ENDPOINT"] = websockets_api.management_endpoint
    bound_port = server.server.server_address[1]

    customer_id = os.environ.get("CHAT_DEMO_CUSTOMER_ID") or str(uuid.uuid4())
    token = auth.mint(settings.jwt_secret, customer_id=customer_id, ttl_seconds=24 * 3600)
    print(f"Chat API on http://{host}:{bound_port}/v1.0  (customer {customer_id})\n"
          f"Websocket events on ws://{host}:{websockets_api.port}/?token=<token>\n"
          f"Try it:\n  curl 'http://{host}:{bound_port}/v1.0/chats?token={token}'\n"
          f"Mint more tokens: .venv/bin/python -m devtools.token --help\n", flush=True)

    stopped = threading.Event()

    def stop(signum, _frame):
        if not stopped.is_set():
            stopped.set()
            log.info("stopping (signal %s)", signum)
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.server.serve_forever(poll_interval=0.2)
    finally:
        server.server.server_close()
        websockets_api.stop()
        poller.stop()
        if moto_server is not None:
            moto_server.stop()
        log.info("stopped; %d stream records delivered", poller.delivered)
    return 0


if __name__ == "__main__":
    sys.exit(main())

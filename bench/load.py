"""The local server under load: `python -m devtools.run` (what
`make run` starts: its own moto server, the stream poller, Chalice's local
server) as a subprocess on a free port, 8 concurrent clients for 30 s mixing
sends and lists over loopback HTTP. Requests per second, p50/p99 latency,
errors (must be 0), and at the end every message's copies present in every
chatroom of its chat (polled, with a deadline, in the server's own DynamoDB:
its embedded moto server, on a port the bench gives it).

Each client is one agent with keep-alive connection; the agents share one
group chat of 8 and are paired in 4 normal chats. A client sends into (50%)
or lists the newest page of (50%) one of its two chatrooms, at random.
"""

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from bench import common

CLIENTS = 8
TABLE = "chat"
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "30"))
CONVERGE_DEADLINE = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """One keep-alive connection, JSON in and out."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.connection = None

    def call(self, method: str, path: str, body=None):
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                data = json.dumps(body).encode() if body is not None else None
                headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
                self.connection.request(method, f"/v1.0{path}", body=data, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, body=None):
        status, answer = self.call(method, path, body)
        if status != 200:
            raise AssertionError(f"{method} {path} -> {status} {answer}")
        return answer


def server_peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start_server(port: int, dynamodb_port: int, log):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "AWS_"))}
    # Free ports for everything it listens on (the websocket API too, where it has one).
    env.update(CHAT_PORT=str(port), CHAT_WS_PORT=str(free_port()), CHAT_DYNAMODB_PORT=str(dynamodb_port),
               CHAT_TABLE_NAME=TABLE, CHAT_JWT_SECRET=common.SECRET, PYTHONUNBUFFERED="1",
               CHAT_EPHEMERAL="1", **common.UNLIMITED_SENDS)  # a throwaway table: never the repository's .data/
    process = subprocess.Popen([sys.executable, "-m", "devtools.run"], cwd=common.ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the local server exited at start:\n{log.read()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/v1.0/chats")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the local server did not start within 60 s")


@contextlib.contextmanager
def running_server():
    """`make run`'s server on free ports for the `with` block: yields
    (process, port, its DynamoDB endpoint, the ERROR lines it logged, filled
    in once it has stopped)."""
    port, dynamodb_port = free_port(), free_port()
    errors: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as log:
        process = start_server(port, dynamodb_port, log)
        try:
            yield process, port, f"http://127.0.0.1:{dynamodb_port}", errors
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            errors += [line for line in log.read().splitlines() if " ERROR " in line or "Traceback" in line]


def main() -> None:
    common.environment()
    started = time.perf_counter()
    with running_server() as (process, port, dynamodb_endpoint, errors_logged):
        startup_seconds = time.perf_counter() - started
        result = run_load(port, dynamodb_endpoint)
        result["server_peak_rss_mb"] = server_peak_rss_mb(process.pid)
    result.update(startup_seconds=startup_seconds, server_errors_logged=len(errors_logged),
                  server_error_lines=errors_logged[:10])
    common.write_result(result)


def run_load(port: int, dynamodb_endpoint: str) -> dict:
    customer_id = common.new_id()
    agents = [common.new_id() for _ in range(CLIENTS)]
    admin = Http(port, common.token(customer_id))
    group = admin.ok("POST", "/chats", {"type": "group", "owner_id": agents[0], "participant_ids": agents,
                                        "name": "load"})
    pairs = [admin.ok("POST", "/chats", {"type": "normal", "owner_id": agents[i], "participant_ids": agents[i:i + 2]})
             for i in range(0, CLIENTS, 2)]
    clients = [Http(port, common.token(customer_id, agent, f"agent {i}", 16)) for i, agent in enumerate(agents)]
    rooms: dict[str, list[dict]] = {}  # agent -> their chatrooms
    for agent, client in zip(agents, clients, strict=True):
        rooms[agent] = client.ok("GET", "/chatrooms")["result"]
        assert len(rooms[agent]) == 2, rooms[agent]
    assert {room["chat_id"] for agent_rooms in rooms.values() for room in agent_rooms} == {
        group["id"], *(p["id"] for p in pairs)}

    latencies: list[list[float]] = [[] for _ in agents]
    kinds: list[list[str]] = [[] for _ in agents]
    errors: list[str] = []
    sent: list[tuple[str, str]] = []  # (chat id, chatmessage id)
    stop_at = time.perf_counter() + SECONDS
    lock = threading.Lock()

    def work(index: int) -> None:
        agent, client, rng = agents[index], clients[index], random.Random(index)
        count = 0
        while time.perf_counter() < stop_at:
            room = rng.choice(rooms[agent])
            sending = rng.random() < 0.5
            started = time.perf_counter()
            try:
                if sending:
                    status, body = client.call("POST", "/chatroommessages",
                                               {"chatroom_id": room["id"], "text": f"load {index}-{count}"})
                else:
                    status, body = client.call("GET", f"/chatroommessages?chatroom_id={room['id']}&page_size=20")
            except Exception as error:  # counted, never raised: the figure is the error count
                status, body = -1, repr(error)
            latencies[index].append(time.perf_counter() - started)
            kinds[index].append("send" if sending else "list")
            count += 1
            if status != 200:
                with lock:
                    errors.append(f"{status} {str(body)[:200]}")
            elif sending:
                with lock:
                    sent.append((room["chat_id"], body["messagechat_id"]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    # Every message's copy in every chatroom of its chat, polled until the
    # stream poller has caught up (or the deadline). Read from the server's
    # own DynamoDB (its embedded moto, on the port given to it): one Query of
    # the relation index per message, for the chatrooms its copies are in.
    import boto3

    from chalicelib.storage.models import ChatroommessageItem
    from chalicelib.storage.table import RELATION_INDEX

    dynamodb = boto3.client("dynamodb", region_name=common.REGION, endpoint_url=dynamodb_endpoint)
    rooms_of_chat: dict[str, set[str]] = {}
    for agent_rooms in rooms.values():
        for room in agent_rooms:
            rooms_of_chat.setdefault(room["chat_id"], set()).add(room["id"])
    pending = {message_id: rooms_of_chat[chat_id] for chat_id, message_id in sent}

    def copies_in(message_id: str) -> set[str]:
        found, start = set(), None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            page = dynamodb.query(
                TableName=TABLE, IndexName=RELATION_INDEX, KeyConditionExpression="gsi2pk = :p",
                ExpressionAttributeValues={":p": {"S": ChatroommessageItem.by_message_key(customer_id, message_id)}},
                ProjectionExpression="gsi2sk", **kwargs)
            found |= {item["gsi2sk"]["S"] for item in page["Items"]}
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    copies_expected = sum(len(wanted) for wanted in pending.values())
    converge_started = time.perf_counter()
    while True:
        pending = {m: wanted for m, wanted in pending.items() if not wanted <= copies_in(m)}
        if not pending or time.perf_counter() - converge_started > CONVERGE_DEADLINE:
            break
        time.sleep(0.5)
    converge_seconds = time.perf_counter() - converge_started
    left = sum(len(wanted - copies_in(m)) for m, wanted in pending.items())

    all_latencies = [x for per in latencies for x in per]
    by_kind: dict[str, list[float]] = {"send": [], "list": []}
    for per_lat, per_kind in zip(latencies, kinds, strict=True):
        for latency, kind in zip(per_lat, per_kind, strict=True):
            by_kind[kind].append(latency)
    return {
        "clients": CLIENTS, "seconds": elapsed, "requests": len(all_latencies),
        "requests_per_second": len(all_latencies) / elapsed,
        "p50_ms": common.percentile(all_latencies, 50) * 1000, "p99_ms": common.percentile(all_latencies, 99) * 1000,
        "by_kind": {kind: {"requests": len(v), "p50_ms": common.percentile(v, 50) * 1000,
                           "p99_ms": common.percentile(v, 99) * 1000} for kind, v in by_kind.items()},
        "errors": len(errors), "error_samples": errors[:5],
        "messages_sent": len(sent), "copies_expected": copies_expected, "copies_missing": left,
        "converge_seconds": converge_seconds,
    }


if __name__ == "__main__":
    sys.exit(main())

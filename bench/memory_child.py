"""One process of measurement 7 (see bench/memory.py).

    python -m bench.memory_child service OUT.json ITEMS.jsonl REQUESTS
    python -m bench.memory_child remote OUT.json - REQUESTS ENDPOINT
    python -m bench.memory_child baseline OUT.json ITEMS.jsonl TABLE_DEFINITION.json STREAM_RECORDS
"""

import json
import random
import sys
import time

from bench import common


def vm(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dynamodb_clients() -> int | None:
    """How many botocore DynamoDB clients (each with its own botocore
    session) the service holds: PynamoDB makes one per model class used."""
    try:
        from chalicelib import storage
        from chalicelib.storage.models import MODELS

        clients = {id(m._connection.connection._client) for m in MODELS
                   if m._connection is not None and m._connection.connection._client is not None}
        shared = getattr(storage, "_connection", None)
        if shared is not None and getattr(shared, "_client", None) is not None:
            clients.add(id(shared._client))
        return len(clients)
    except Exception:  # private attributes: a PynamoDB or storage change makes this unknown, not wrong
        return None


def one_more_client() -> dict:
    """What one more botocore session + DynamoDB client costs, here and now."""
    import botocore.session

    rss, started = vm("VmRSS"), time.perf_counter()
    botocore.session.get_session().create_client("dynamodb", region_name=common.REGION,
                                                 aws_access_key_id="x", aws_secret_access_key="x")
    return {"ms": (time.perf_counter() - started) * 1000, "mb": vm("VmRSS") - rss}


class Remote:
    """DynamoDB in another process (a moto server): nothing of moto here."""

    table = common.TABLE

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def service(out: str, items_path: str, requests: int, endpoint: str | None = None) -> None:
    common.environment(endpoint=endpoint)
    import app as chat_app

    rss_imported = vm("VmRSS")
    with (Remote() if endpoint else common.InProcessMoto()) as moto:
        rss_ready = vm("VmRSS")
        rng = random.Random(7)
        customer_id = common.new_id()
        customer = common.LambdaCaller(chat_app.app, customer_id)
        agents = [common.new_id() for _ in range(12)]
        callers = {a: common.LambdaCaller(chat_app.app, customer_id, a, f"agent {i}", 16) for i, a in enumerate(agents)}
        for i in range(4):
            members = agents[i * 3:i * 3 + 4] if i < 3 else agents[9:12] + agents[:1]
            customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": members[0], "participant_ids": members})
        rooms = {a: callers[a].ok("GET", "/v1.0/chatrooms")["result"] for a in agents}
        copies: dict[str, list[str]] = {a: [] for a in agents}

        def list_rooms(a):
            callers[a].ok("GET", f"/v1.0/chatroommessages?chatroom_id={rng.choice(rooms[a])['id']}&page_size=20")

        def send(a):
            room = rng.choice(rooms[a])
            copy = callers[a].ok("POST", "/v1.0/chatroommessages", {"chatroom_id": room["id"],
                                                                    "text": f"message {rng.random()}"})
            copies[a].append(copy["id"])

        def get_copy(a):
            if copies[a]:
                callers[a].ok("GET", f"/v1.0/chatroommessages/{rng.choice(copies[a])}")

        def own_rooms(a):
            callers[a].ok("GET", "/v1.0/chatrooms?page_size=20")

        def get_chat(a):
            callers[a].ok("GET", f"/v1.0/chats/{rng.choice(rooms[a])['chat_id']}")

        def send_chat(a):
            callers[a].ok("POST", "/v1.0/chatmessages", {"chat_id": rng.choice(rooms[a])["chat_id"], "text": "hi"})

        def list_chats(a):
            customer.ok("GET", "/v1.0/chats?page_size=20")

        def get_room(a):
            callers[a].ok("GET", f"/v1.0/chatrooms/{rng.choice(rooms[a])['id']}")

        def rename_room(a):
            callers[a].ok("PUT", f"/v1.0/chatrooms/{rng.choice(rooms[a])['id']}", {"name": f"room {rng.random()}"})

        def create_chat(a):
            members = rng.sample(agents, 3)
            customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": members[0], "participant_ids": members})

        mix = [(list_rooms, 30), (send, 25), (get_copy, 10), (own_rooms, 10), (get_chat, 8), (send_chat, 5),
               (list_chats, 5), (get_room, 4), (rename_room, 2), (create_chat, 1)]
        actions = [action for action, weight in mix for _ in range(weight)]
        started = time.perf_counter()
        done = 0
        checkpoints = {}  # requests done -> RSS, to see where it levels off
        for _ in range(requests):
            rng.choice(actions)(rng.choice(agents))
            done += 1
            if done in (10, 100) or done % max(1, requests // 10) == 0:
                checkpoints[done] = vm("VmRSS")
        seconds = time.perf_counter() - started
        result = {"requests": done, "seconds": seconds, "rss_imported_mb": rss_imported, "rss_ready_mb": rss_ready,
                  "rss_end_mb": vm("VmRSS"), "peak_rss_mb": vm("VmHWM"), "checkpoints": checkpoints}
        result["dynamodb_clients"] = dynamodb_clients()
        if endpoint:
            result["one_more_client"] = one_more_client()
        if not endpoint:
            table = common.moto_backend().get_table(moto.table)
            with open(items_path, "w") as f:
                for item in table.all_items():
                    f.write(json.dumps(item.to_json()["Attributes"]) + "\n")
            result.update(items=len(table), stream_records=common.stream_record_count())
    with open(out, "w") as f:
        json.dump(result, f)


def baseline(out: str, items_path: str, definition_path: str, stream_records: int) -> None:
    """moto holding the same data, filled through its request path, and no service."""
    common.environment()
    import boto3
    from moto import mock_aws

    from devtools import moto_patches

    moto_patches.apply()
    common.tune_moto()
    with mock_aws():
        rss_ready = vm("VmRSS")
        client = boto3.client("dynamodb", region_name=common.REGION)
        with open(definition_path) as f:
            client.create_table(**json.load(f))
        with open(items_path) as f:
            items = [json.loads(line) for line in f]
        written = 0
        while written < stream_records:  # every write leaves a stream record, as the service's did
            for start in range(0, len(items), 25):
                batch = items[start:start + 25][: stream_records - written]
                if not batch:
                    break
                client.batch_write_item(RequestItems={common.TABLE: [{"PutRequest": {"Item": i}} for i in batch]})
                written += len(batch)
        for item in items[:200]:  # and some reads through the response path
            client.get_item(TableName=common.TABLE, Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=True)
        result = {"rss_ready_mb": rss_ready, "rss_end_mb": vm("VmRSS"), "peak_rss_mb": vm("VmHWM"),
                  "items": len(common.moto_backend().get_table(common.TABLE)),
                  "stream_records": common.stream_record_count()}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "service":
        service(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "remote":
        service(sys.argv[2], sys.argv[3], int(sys.argv[4]), endpoint=sys.argv[5])
    else:
        baseline(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))

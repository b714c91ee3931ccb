"""One message to a group of 2, 10, 100 and 1,000 agents, everyone connected,
pushes on and a bus configured: what it costs and how fast it reaches them.

In process against moto: the send through Chalice's test client, then the
records moto's stream produced handed to app.on_table_change in Lambda's
batches, the message's INSERT alone first (as Lambda, polling four times a
second, would hand it), then everything its handling wrote, until the stream
is quiet. API Gateway's management API is a stand-in whose post_to_connection
waits 20 ms, EventBridge one that accepts (bench.common.Meter): whatever
delivery.py does, it is counted here, not assumed.

Per size: the send's and the stream's DynamoDB requests and units, Lambda
invocations and durations, pushes (by type, bytes per participant, 32 KB
units), bus entries (64 KB units), each member's `messagechat_created` time
after the handler got the record and that batch's time, and the bill
(bench/prices.py).
"""

import os
import time
from collections import Counter, defaultdict

from bench import common, prices

SIZES = [int(s) for s in os.environ.get("BENCH_GROUP_SIZES", "2,10,100,1000").split(",")]
TEXT = "x" * 100  # a 100-character message (issue 23)


def measure(n: int) -> dict:
    from tests.helpers import insert_of

    with common.InProcessMoto() as moto, common.test_client() as client, common.Meter() as meter:
        tap = common.StreamTap(moto.stream_arn)
        customer_id = common.new_id()
        ids = [common.new_id() for _ in range(n)]
        admin = common.Caller(client, customer_id)
        sender = common.Caller(client, customer_id, ids[-1], permission=16)
        connected = common.connect_all(customer_id, ids)
        tap.drain()

        meter.reset()
        started = time.perf_counter()
        chat = admin.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": ids[0], "participant_ids": ids})
        create_seconds = time.perf_counter() - started
        create = meter.reset()
        tap.drain()

        meter.reset()
        tap.durations.clear()
        tap.failed = 0
        started = time.perf_counter()
        message = sender.ok("POST", "/v1.0/chatmessages", {"chat_id": chat["id"], "text": TEXT})
        send_seconds = time.perf_counter() - started
        send = meter.reset()
        records = tap.read()
        insert = insert_of({"Records": records}, message)
        got_record = tap.invoke([insert])
        first_batch_seconds = tap.durations[-1]
        stream_first = meter.reset()
        tap.drain([r for r in records if r is not insert])
        stream_rest = meter.reset()

    pushes = stream_first["pushes"] + stream_rest["pushes"]
    bus = stream_first["bus_entries"] + stream_rest["bus_entries"]
    to_member = [p["at"] - got_record for p in stream_first["pushes"]
                 if p["type"] == "messagechat_created" and connected[p["connection"]] != "customer"]
    bytes_of = defaultdict(int)
    for push in pushes:
        bytes_of[connected[push["connection"]]] += push["bytes"]
    member_bytes = [bytes_of[agent_id] for agent_id in ids]
    stream = [stream_first, stream_rest]
    counts = {
        "rest_requests": 1,
        "lambda_seconds": {"api_handler": [send_seconds], "on_table_change": list(tap.durations)},
        "write_units": send["write_units"] + sum(s["write_units"] for s in stream),
        "read_units": send["read_units"] + sum(s["read_units"] for s in stream),
        "websocket_units": sum(-(-p["bytes"] // prices.WEBSOCKET_UNIT) for p in pushes),
        "bus_units": sum(-(-e["bytes"] // prices.BUS_UNIT) for e in bus),
        "bytes_pushed": sum(p["bytes"] for p in pushes),
    }
    bill = prices.bill(counts)
    return {
        "participants": n,
        "create": {"requests": len(create["dynamodb"]), "write_units": create["write_units"],
                   "seconds": create_seconds},
        "send": {"requests": dict(Counter(send["dynamodb"])), "write_units": send["write_units"],
                 "read_units": send["read_units"], "seconds": send_seconds},
        "write_units_by": dict(send["write_units_by"] + stream_first["write_units_by"] + stream_rest["write_units_by"]),
        "stream": {"requests": dict(Counter(stream_first["dynamodb"] + stream_rest["dynamodb"])),
                   "invocations": len(tap.durations), "seconds": sum(tap.durations),
                   "write_units": counts["write_units"] - send["write_units"],
                   "read_units": counts["read_units"] - send["read_units"]},
        "pushes": {"count": len(pushes), "by_type": dict(Counter(p["type"] for p in pushes)),
                   "largest_bytes": max((p["bytes"] for p in pushes), default=0),
                   "bytes_per_participant_mean": sum(member_bytes) / n,
                   "bytes_per_participant_max": max(member_bytes),
                   "websocket_units": counts["websocket_units"]},
        "records_failed": tap.failed,
        "bus": {"entries": len(bus), "refused": stream_first["bus_refused"] + stream_rest["bus_refused"],
                "by_type": dict(Counter(e["type"] for e in bus)),
                "requests": stream_first["bus_requests"] + stream_rest["bus_requests"],
                "units": counts["bus_units"]},
        "latency": {"members_pushed": len(to_member), "first_s": min(to_member, default=float("nan")),
                    "median_s": common.median(to_member),
                    "p99_s": common.percentile(to_member, 99), "last_s": max(to_member, default=float("nan")),
                    "batch_s": first_batch_seconds},
        "counts": counts,
        "bill": bill,
        "per_participant": bill["total"] / n,
    }


def main() -> None:
    common.environment(CHAT_WEBSOCKET_ENDPOINT=common.WEBSOCKET_ENDPOINT, CHAT_EVENT_BUS=common.EVENT_BUS)
    common.write_result({"sizes": [measure(n) for n in SIZES], "push_seconds": common.PUSH_SECONDS,
                         "prices": prices.PRICES, "prices_date": prices.PRICES_DATE,
                         "memory_mb": {f: prices.lambda_memory_mb(f) for f in ("api_handler", "on_table_change")}})


if __name__ == "__main__":
    main()

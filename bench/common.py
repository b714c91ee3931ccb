"""What the sections share: the environment, moto in process, one meter on
botocore (DynamoDB capacity as on-demand bills it, and stand-ins for API
Gateway's management API and EventBridge), callers and the stream tap.

Each section runs in its own process (`python -m bench.<name> OUT.json`), so
each starts from a clean moto.
"""

import json
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools import aws_limits  # noqa: E402 - the one measure of sizes and quotas

REGION = "us-east-1"
TABLE = "chat-bench"
SECRET = "bench-secret-bench-secret-bench-secret-0123456789"
WEBSOCKET_ENDPOINT = "https://bench.execute-api.us-east-1.amazonaws.com/api"  # never called: see Meter
EVENT_BUS = "chat-bench"
PUSH_SECONDS = 0.020  # what one post_to_connection takes on AWS, give or take (issue 23)


# The bench measures the service, not its send limits (services/limits.py): set far above what it sends.
UNLIMITED_SENDS = {"CHAT_AGENT_SENDS_PER_WINDOW": "1000000", "CHAT_CUSTOMER_SENDS_PER_WINDOW": "1000000"}


def environment(**extra: str) -> None:
    """The settings app.py reads (as tests/conftest.py sets them), before it is imported."""
    os.environ.update(CHAT_JWT_SECRET=SECRET, CHAT_TABLE_NAME=TABLE, CHAT_REGION=REGION,
                      AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
                      **UNLIMITED_SENDS, **extra)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def write_result(data: dict) -> None:
    Path(sys.argv[1]).write_text(json.dumps(data, indent=1, default=str))


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))] if ordered else math.nan


def new_id() -> str:
    return str(uuid.uuid4())


def median(values) -> float:
    return statistics.median(values) if values else math.nan


# ---- DynamoDB item sizes, as DynamoDB counts them ----------------------------------------------

def item_size(item: dict | None) -> int:
    return aws_limits.item_size(item or {})


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


class Meter:
    """Every botocore call of the process, by patching BaseClient._make_api_call
    (as tests/test_request_budget.py counts requests):

    - DynamoDB: the request goes to moto; its read and write units are computed
      with DynamoDB's on-demand rules from the item images (moto's
      ReturnConsumedCapacity is a fixed number): reads in 4 KB units, halved
      when eventually consistent, doubled in a transaction; writes in 1 KB
      units of the larger image, doubled in a transaction, plus each global
      index's own write of the projected item.
    - API Gateway's management API (post_to_connection): a stand-in that waits
      PUSH_SECONDS, as on AWS, and notes when, to whom, what and how big.
    - EventBridge PutEvents: a stand-in that notes each entry's billed size
      (Source + DetailType + Detail + Resources + Time) and accepts it, or
      refuses the whole request beyond 10 entries or 256 KiB, as AWS does.
    """

    def __init__(self, push_seconds: float = PUSH_SECONDS):
        from chalicelib.storage.table import table_definition

        definition = table_definition("x")
        self.keys = [k["AttributeName"] for k in definition["KeySchema"]]
        self.indexes = []  # (its key attributes, what it projects or None for all)
        for gsi in definition.get("GlobalSecondaryIndexes", []):
            index_keys = [k["AttributeName"] for k in gsi["KeySchema"]]
            projection = gsi["Projection"]
            projected = None if projection["ProjectionType"] == "ALL" else {
                *self.keys, *index_keys, *projection.get("NonKeyAttributes", [])}
            self.indexes.append((index_keys, projected))
        self.push_seconds = push_seconds
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> dict:
        """What was counted since the last reset, and start again."""
        counted = getattr(self, "counted", None)
        self.counted = {"dynamodb": [], "read_units": 0.0, "write_units": 0.0, "pushes": [], "bus_entries": [],
                        "bus_requests": 0, "bus_refused": 0, "write_units_by": Counter()}
        return counted

    def __enter__(self):
        import botocore.client

        self._original = original = botocore.client.BaseClient._make_api_call
        meter = self

        def metered(client, operation, params):
            service = client.meta.service_model.service_name
            if service == "apigatewaymanagementapi" and operation == "PostToConnection":
                return meter._push(params)
            if service == "events" and operation == "PutEvents":
                return meter._put_events(params)
            if service != "dynamodb":
                return original(client, operation, params)
            return meter._dynamodb(original, client, operation, params)

        botocore.client.BaseClient._make_api_call = metered
        return self

    def __exit__(self, *exc):
        import botocore.client

        botocore.client.BaseClient._make_api_call = self._original

    # -- the stand-ins ------------------------------------------------------------------------
    def _push(self, params: dict) -> dict:
        time.sleep(self.push_seconds)
        data = params["Data"]
        with self.lock:
            self.counted["pushes"].append({"at": time.perf_counter(), "connection": params["ConnectionId"],
                                           "bytes": len(data), "type": json.loads(data).get("type")})
        return {}

    def _put_events(self, params: dict) -> dict:
        entries = params["Entries"]
        sizes = [aws_limits.put_events_entry_size(e) for e in entries]
        if len(entries) > aws_limits.PUT_EVENTS_ENTRIES_MAX or sum(sizes) > aws_limits.PUT_EVENTS_BYTES_MAX:
            with self.lock:  # refused whole, as AWS refuses it (devtools/aws_limits.py)
                self.counted["bus_refused"] += len(entries)
            raise aws_limits.refuse("PutEvents", "ValidationException",
                                    f"{len(entries)} entries of {sum(sizes)} bytes: over 10 entries or 256 KiB")
        with self.lock:
            self.counted["bus_requests"] += 1
            self.counted["bus_entries"] += [{"type": e["DetailType"], "bytes": size}
                                            for e, size in zip(entries, sizes, strict=True)]
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())} for _ in entries]}

    # -- DynamoDB ------------------------------------------------------------------------------
    def _current(self, table: str, key: dict) -> dict | None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        item = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_item(table, key)
        return item.to_json()["Attributes"] if item is not None else None

    def _written(self, operation: str, params: dict) -> list[tuple[str, dict, bool]]:
        """(table, key, in a transaction) of each item a write names."""
        def key(item):
            return {name: item[name] for name in self.keys}

        if operation == "PutItem":
            return [(params["TableName"], key(params["Item"]), False)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], False)]
        if operation == "BatchWriteItem":
            return [(table, key(r["PutRequest"]["Item"]) if "PutRequest" in r else r["DeleteRequest"]["Key"], False)
                    for table, requests in params["RequestItems"].items() for r in requests]
        if operation == "TransactWriteItems":  # a ConditionCheck is billed as a transactional write
            return [(action["TableName"], key(action["Item"]) if kind == "Put" else action["Key"], True)
                    for entry in params["TransactItems"] for kind, action in entry.items()]
        return []

    def _write_units(self, old: dict | None, new: dict | None, transactional: bool) -> tuple[int, int]:
        """(the table's units, the indexes' units) of changing an item from old to new."""
        table_units = write_units(max(item_size(old), item_size(new))) * (2 if transactional else 1)
        units = 0
        for index_keys, projected in self.indexes:  # each index the item is in writes its entry
            def entry(item, projected=projected):
                return item if projected is None else {k: v for k, v in item.items() if k in projected}

            was = bool(old) and all(k in old for k in index_keys)
            is_ = bool(new) and all(k in new for k in index_keys)
            if was and is_ and any(old[k] != new[k] for k in index_keys):  # moved: a delete and a put
                units += write_units(item_size(entry(old))) + write_units(item_size(entry(new)))
            elif (was and is_ and entry(old) != entry(new)) or (is_ and not was):
                units += write_units(item_size(entry(new)))
            elif was and not is_:
                units += write_units(item_size(entry(old)))
        return table_units, units

    def _read_units(self, operation: str, params: dict, response: dict) -> float:
        """A read of the table is billed on whole items, whatever a ProjectionExpression
        returns; one of an index on the entries as the index projects them."""
        def billed(item):
            if "ProjectionExpression" in params and "IndexName" not in params and all(k in item for k in self.keys):
                return self._current(params["TableName"], {k: item[k] for k in self.keys}) or item
            return item

        if operation == "GetItem":
            item = response.get("Item")
            if item and "ProjectionExpression" in params:
                item = self._current(params["TableName"], params["Key"]) or item
            return read_units(item_size(item), bool(params.get("ConsistentRead")))
        if operation == "Query":
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            return read_units(sum(item_size(billed(i)) for i in response.get("Items", [])), consistent)
        if operation == "BatchGetItem":  # each key is its own read; one not found costs the least read
            units = 0.0
            for table, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                found = response.get("Responses", {}).get(table, [])
                unprocessed = len(response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
                units += sum(read_units(item_size(i), consistent) for i in found)
                units += max(0, len(request["Keys"]) - len(found) - unprocessed) * read_units(0, consistent)
            return units
        if operation == "TransactGetItems":
            return sum(2 * read_units(item_size(r.get("Item")), True) for r in response.get("Responses", []))
        return 0.0

    def _dynamodb(self, original, client, operation, params):
        written = self._written(operation, params)
        before = [self._current(table, key) for table, key, _ in written]
        response = None
        try:
            response = original(client, operation, params)
            return response
        finally:
            with self.lock:
                for (table, key, transactional), old in zip(written, before, strict=True):
                    new = self._current(table, key)
                    table_units, index_units = self._write_units(old, new, transactional)
                    kind = (new or old or {}).get("kind", {}).get("S", "?")
                    by = self.counted["write_units_by"]
                    by[f"{kind}{' (transaction)' if transactional else ''}"] += table_units
                    by["index entries"] += index_units
                    self.counted["write_units"] += table_units + index_units
                self.counted["dynamodb"].append(operation)
                if response is not None and not written:
                    self.counted["read_units"] += self._read_units(operation, params, response)


# ---- moto, callers and the stream --------------------------------------------------------------

class InProcessMoto:
    """mock_aws with the table built as production builds it, moto patched as
    `make run` patches it (devtools.moto_patches: DynamoDB's transaction
    semantics, and the speed-ups that keep moto's answers as they are)."""

    def __enter__(self):
        import boto3
        from moto import mock_aws

        from chalicelib import storage
        from chalicelib.storage.table import create_table
        from devtools import moto_patches

        moto_patches.apply()
        moto_patches.write_attribute_values_as_they_are()
        moto_patches.size_items_once()
        moto_patches.cache_condition_expressions()
        moto_patches.client_attribute_values_as_they_are()
        aws_limits.install()  # what AWS refuses, refused here too
        self.mock = mock_aws()
        self.mock.start()
        self.stream_arn = create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        storage.configure()
        return self

    def __exit__(self, *exc):
        self.mock.stop()


def test_client():
    """Chalice's test client, without its copy of os.environ on every request (as tests/conftest.py)."""
    import contextlib

    import chalice.test

    import app as chat_app

    chalice.test.BaseClient._patched_env_vars = lambda self, env: contextlib.nullcontext()
    return chalice.test.Client(chat_app.app)


class Caller:
    """Someone with a token, speaking to the API through Chalice's test client."""

    def __init__(self, client, customer_id: str, agent_id: str | None = None, permission: int = 0):
        from chalicelib import auth

        self.client, self.customer_id, self.id = client, customer_id, agent_id
        self.token = auth.mint(SECRET, customer_id=customer_id, agent_id=agent_id,
                               name=f"agent-{agent_id[:4]}" if agent_id else "", permission=permission)

    def ok(self, method: str, path: str, body=None):
        response = getattr(self.client.http, method.lower())(
            path, headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None)
        if response.status_code != 200:
            raise AssertionError(f"{method} {path} -> {response.status_code} {response.json_body}")
        return response.json_body


class StreamTap:
    """The records moto's stream really produced, handed to the handler Lambda
    calls (app.on_table_change) as tests/conftest.py does; each invocation timed."""

    BATCH = 100  # the stream function's batch size (app.py)

    def __init__(self, stream_arn: str):
        from devtools.streams import ShardReader, streams_client

        self.stream_arn = stream_arn
        self.reader = ShardReader(streams_client(REGION, None), stream_arn)
        self.durations: list[float] = []
        self.failed = 0  # records the handler reported failed (Lambda would hand them again; not done here)

    def read(self) -> list[dict]:
        """What the stream holds that the stage's mapping lets through to the function."""
        from chalicelib.stream.handler import stream_filters
        from devtools.streams import lambda_event, lambda_filter

        delivered = lambda_filter(stream_filters())
        records = []
        while batch := [record for _, record in self.reader.read(limit=1000)]:
            records += [record for record in batch if delivered(record)]
        return lambda_event(records, self.stream_arn, REGION)["Records"]

    def invoke(self, records: list[dict]) -> float:
        """Hand one batch to the handler; the time it started."""
        import app as chat_app

        started = time.perf_counter()
        result = chat_app.on_table_change({"Records": records}, None)
        self.durations.append(time.perf_counter() - started)
        self.failed += len(result["batchItemFailures"])
        return started

    def drain(self, records: list[dict] = ()) -> None:
        """These records and what the stream holds, in Lambda's batches, then what
        their handling wrote, until the stream is quiet."""
        records = [*records, *self.read()]
        for _ in range(20):
            if not records:
                return
            for start in range(0, len(records), self.BATCH):
                self.invoke(records[start:start + self.BATCH])
            records = self.read()
        raise AssertionError("the stream never went quiet")


def connect_all(customer_id: str, agent_ids) -> dict[str, str]:
    """One websocket connection per agent and one on the customer's feed, registered
    as $connect registers them; {connection id: agent id, or "customer"}."""
    from chalicelib.auth import Principal
    from chalicelib.services import connections

    connected = {}
    for agent_id in [*agent_ids, None]:
        connection_id = uuid.uuid4().hex
        connections.register(Principal(customer_id, agent_id, permission=16 if agent_id else 0), connection_id)
        connected[connection_id] = agent_id or "customer"
    return connected

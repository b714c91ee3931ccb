"""What the measurements share: the environment, the DynamoDB request and
capacity meter, callers of the API (Chalice's test client or the Lambda entry
point), the moto backend, and the stream tap that feeds the fan-out.

Every measurement runs as its own process (`python -m bench.<name> OUT.json`),
so each starts from a clean moto and its memory figures are its own.
"""

import copy
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TABLE = "chat-bench"
SECRET = "bench-secret-bench-secret-bench-secret-0123456789"
KB = 1024
RCU_BYTES = 4 * KB
# The bench measures the service, not its send limits (services/limits.py): set far above what it sends.
UNLIMITED_SENDS = {"CHAT_AGENT_SENDS_PER_WINDOW": "1000000", "CHAT_CUSTOMER_SENDS_PER_WINDOW": "1000000"}


def environment(table: str = TABLE, endpoint: str | None = None) -> None:
    """The settings the service reads when app.py is imported (as tests/conftest.py sets them)."""
    for name in ("CHAT_WEBSOCKET_ENDPOINT", "CHAT_EVENT_BUS", "CHAT_STREAM_ARN", "CHAT_JWT_SECRET_PARAMETER",
                 "CHAT_JWT_SECRET_ID"):
        os.environ.pop(name, None)
    os.environ.update(
        CHAT_JWT_SECRET=SECRET,
        CHAT_TABLE_NAME=table,
        CHAT_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        **UNLIMITED_SENDS,
    )
    if endpoint:
        os.environ["CHAT_DYNAMODB_ENDPOINT"] = endpoint
    else:
        os.environ.pop("CHAT_DYNAMODB_ENDPOINT", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def write_result(data: dict) -> None:
    """A measurement's figures, as JSON, to the path run_all.py gave it."""
    Path(sys.argv[1]).write_text(json.dumps(data, indent=1, default=str))


def maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def quiet_logs() -> None:
    import logging

    for noisy in ("werkzeug", "botocore", "urllib3", "moto", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def median(values) -> float:
    return statistics.median(values)


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


# ---- machine ------------------------------------------------------------------

def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    from importlib.metadata import version

    packages = {name: version(name) for name in ("chalice", "boto3", "botocore", "pynamodb", "pydantic", "PyJWT",
                                                 "moto")}
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(ram_gb, 1),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}", "packages": packages,
    }


# ---- DynamoDB item sizes and capacity (DynamoDB's published rules) ---------------

def _number_size(text: str) -> int:
    """Numbers: about 1 byte per 2 significant digits, plus 1 (plus 1 if negative)."""
    digits = re.sub(r"[^0-9]", "", text.split("e")[0].split("E")[0]).strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1 + (1 if text.startswith("-") else 0)


def value_size(value: dict[str, Any]) -> int:
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(data) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """Bytes of an item as DynamoDB counts them: attribute names plus values."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def read_units(total_bytes: int, consistent: bool) -> float:
    return max(1, math.ceil(total_bytes / RCU_BYTES)) * (1.0 if consistent else 0.5)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _table_schema():
    """(the table's key attributes, {index: (its key attributes, the attributes
    it projects, or None for ALL)}), from the definition the service deploys."""
    from chalicelib.storage.table import table_definition

    definition = table_definition("x")
    keys = [k["AttributeName"] for k in definition["KeySchema"]]
    indexes = {}
    for gsi in definition.get("GlobalSecondaryIndexes", []):
        index_keys = [k["AttributeName"] for k in gsi["KeySchema"]]
        projection = gsi.get("Projection", {"ProjectionType": "ALL"})
        if projection.get("ProjectionType", "ALL") == "ALL":
            projected = None
        else:
            projected = set(keys) | set(index_keys) | set(projection.get("NonKeyAttributes", []))
        indexes[gsi["IndexName"]] = (index_keys, projected)
    return keys, indexes


def write_cost(old: dict | None, new: dict | None, transactional: bool, indexes: dict) -> tuple:
    """(table WCU, index WCU, index bytes written) of changing one item from
    `old` to `new`.

    Table: 1 WCU per KB of the larger of the two images, doubled in a
    transaction. Each global index the item is in (before or after) costs its
    own write, 1 per KB of the index entry (the item as the index projects
    it): a put into the index, a delete from it, two when its key changes,
    one when a projected attribute changes, none otherwise. Index propagation
    is not transactional, so it is not doubled. Index bytes: the entries put
    (a delete from an index writes no entry).
    """
    table = write_units(max(item_size(old), item_size(new))) * (2 if transactional else 1)
    index = index_bytes = 0
    for key_attributes, projected in indexes.values():
        def project(item, projected=projected):
            return item if projected is None else {k: v for k, v in item.items() if k in projected}

        in_old = bool(old) and all(k in old for k in key_attributes)
        in_new = bool(new) and all(k in new for k in key_attributes)
        if in_old and in_new:
            before, after = project(old), project(new)
            if any(old[k] != new[k] for k in key_attributes):
                index += write_units(item_size(before)) + write_units(item_size(after))
                index_bytes += item_size(after)
            elif before != after:
                index += write_units(item_size(after))
                index_bytes += item_size(after)
        elif in_old:
            index += write_units(item_size(project(old)))
        elif in_new:
            index += write_units(item_size(project(new)))
            index_bytes += item_size(project(new))
    return table, index, index_bytes


@dataclass
class Call:
    operation: str
    rcu: float = 0.0
    wcu_table: float = 0.0
    wcu_index: float = 0.0
    items_read: int = 0
    items_written: int = 0
    failed: bool = False
    wcu_table_plain: float = 0.0  # the table's WCU were the write not transactional
    read_sizes: list[int] = field(default_factory=list)  # bytes of each item read
    bytes_written: int = 0  # the items as written (their new images), table only
    index_bytes_written: int = 0  # the index entries written
    kinds_written: Counter = field(default_factory=Counter)  # items changed, by their `kind`
    actions: int = 0  # items a batch or transaction names (ConditionChecks included)
    phase: str | None = None  # in the stream handler: "work" (fan-out, cascades) or "events"
    consistent: bool = False  # a read: strongly consistent

    @property
    def wcu(self) -> float:
        return self.wcu_table + self.wcu_index


@dataclass
class Cost:
    calls: list[Call] = field(default_factory=list)

    @property
    def operations(self) -> Counter:
        return Counter(call.operation for call in self.calls)

    @property
    def requests(self) -> int:
        return len(self.calls)

    @property
    def rcu(self) -> float:
        return sum(c.rcu for c in self.calls)

    @property
    def wcu(self) -> float:
        return sum(c.wcu for c in self.calls)

    @property
    def wcu_index(self) -> float:
        return sum(c.wcu_index for c in self.calls)

    @property
    def items_read(self) -> int:
        return sum(c.items_read for c in self.calls)

    @property
    def items_written(self) -> int:
        return sum(c.items_written for c in self.calls)

    @property
    def bytes_written(self) -> int:
        return sum(c.bytes_written for c in self.calls)

    @property
    def index_bytes_written(self) -> int:
        return sum(c.index_bytes_written for c in self.calls)

    @property
    def kinds_written(self) -> Counter:
        total: Counter = Counter()
        for call in self.calls:
            total.update(call.kinds_written)
        return total

    def only(self, phase: str | None) -> "Cost":
        """The calls made in one phase of the stream handler."""
        return Cost([c for c in self.calls if c.phase == phase])

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.calls + other.calls)

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "operations": dict(sorted(self.operations.items())),
            "rcu": round(self.rcu, 2),
            "wcu": round(self.wcu, 2),
            "wcu_index": round(self.wcu_index, 2),
            "items_read": self.items_read,
            "items_written": self.items_written,
            "bytes_written": self.bytes_written,
            "index_bytes_written": self.index_bytes_written,
            "kinds_written": dict(sorted(self.kinds_written.items())),
            "largest_transaction": max((c.actions for c in self.calls if c.operation == "TransactWriteItems"),
                                       default=0),
            "failed": sum(c.failed for c in self.calls),
        }


class Meter:
    """Counts every DynamoDB request the process makes (by patching
    botocore's BaseClient._make_api_call, as tests/test_request_budget.py
    does) and computes its consumed capacity from the item images, read from
    moto's backend before and after each write.

    moto answers ReturnConsumedCapacity with a fixed number per operation
    (0.5 or 1, whatever the item size), so the capacity here is computed with
    DynamoDB's published rules instead: reads 4 KB units (of the items as
    the response holds them, i.e. as an index projects them), halved when
    eventually consistent (every index query is); writes 1 KB units of the
    larger image, doubled in transactions; plus each global index's own
    writes of the projected item. Only works with moto in this process
    (mock_aws).
    """

    def __init__(self):
        self.cost = Cost()
        self.key_attributes, self.indexes = _table_schema()
        self._original = None
        self._backend = None
        self.phase: str | None = None  # set by stream_phases() while the handler runs

    # -- install ------------------------------------------------------------
    def __enter__(self):
        import botocore.client

        self._original = original = botocore.client.BaseClient._make_api_call
        meter = self

        def metered(client, operation_name, api_params):
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, api_params)
            return meter._measure(original, client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = metered
        return self

    def __exit__(self, *exc):
        import botocore.client

        botocore.client.BaseClient._make_api_call = self._original

    def reset(self) -> Cost:
        """The cost since the last reset, and start again."""
        cost, self.cost = self.cost, Cost()
        return cost

    # -- moto ----------------------------------------------------------------
    def _current(self, table_name: str, key: dict) -> dict | None:
        if self._backend is None:
            self._backend = moto_backend()
        item = self._backend.get_item(table_name, key)
        return item.to_json()["Attributes"] if item is not None else None

    def _key(self, item: dict) -> dict:
        return {name: item[name] for name in self.key_attributes}

    def _writes(self, operation: str, params: dict) -> list[tuple[str, dict, bool]]:
        """(table, key, transactional) of every item this write touches."""
        if operation == "PutItem":
            return [(params["TableName"], self._key(params["Item"]), False)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], False)]
        if operation == "BatchWriteItem":
            found = []
            for table_name, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        found.append((table_name, self._key(request["PutRequest"]["Item"]), False))
                    else:
                        found.append((table_name, request["DeleteRequest"]["Key"], False))
            return found
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                (kind, action), = entry.items()
                key = self._key(action["Item"]) if kind == "Put" else action["Key"]
                # a ConditionCheck is billed as a transactional write of its item (2 WCU per KB)
                found.append((action["TableName"], key, True))
            return found
        return []

    # -- the metered call -------------------------------------------------------
    def _measure(self, original, client, operation, params):
        writes = self._writes(operation, params)
        before = [self._current(t, k) for t, k, _ in writes]
        failed = False
        try:
            response = original(client, operation, params)
        except Exception:
            failed = True
            response = None
            raise
        finally:
            call = Call(operation, failed=failed, phase=self.phase, actions=len(writes))
            if writes:
                for (table_name, key, transactional), old in zip(writes, before, strict=True):
                    new = self._current(table_name, key)
                    table_units, index_units, index_bytes = write_cost(old, new, transactional, self.indexes)
                    call.wcu_table += table_units
                    call.wcu_table_plain += table_units / 2 if transactional else table_units
                    call.wcu_index += index_units
                    if old != new:
                        call.items_written += 1
                        call.bytes_written += item_size(new)
                        call.index_bytes_written += index_bytes
                        call.kinds_written[((new or old).get("kind") or {}).get("S", "?")] += 1
            elif response is not None:
                self._read_cost(call, operation, params, response)
            self.cost.calls.append(call)
        return response

    def _read_cost(self, call: Call, operation: str, params: dict, response: dict) -> None:
        if operation == "GetItem":
            item = response.get("Item")
            call.items_read = 1 if item else 0
            call.read_sizes = [item_size(item)] if item else []
            call.rcu = read_units(item_size(item), bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            items = response.get("Items", [])
            call.items_read = response.get("ScannedCount", len(items))
            call.read_sizes = [item_size(i) for i in items]
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            call.consistent = consistent
            call.rcu = read_units(sum(item_size(i) for i in items), consistent)
        elif operation == "BatchGetItem":
            call.actions = sum(len(r.get("Keys", [])) for r in params["RequestItems"].values())
            for table_name, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                items = response.get("Responses", {}).get(table_name, [])
                for item in items:
                    call.items_read += 1
                    call.read_sizes.append(item_size(item))
                    call.rcu += read_units(item_size(item), consistent)
                # a key not found still costs the least read (as a GetItem of it would)
                unprocessed = len(response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", []))
                call.rcu += max(0, len(request.get("Keys", [])) - len(items) - unprocessed) * read_units(0, consistent)
        elif operation == "TransactGetItems":
            for entry in response.get("Responses", []):
                item = entry.get("Item")
                call.items_read += 1 if item else 0
                call.rcu += 2 * read_units(item_size(item), True)


def moto_backend():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


def stream_record_count(table_name: str = TABLE) -> int:
    table = moto_backend().get_table(table_name)
    return len(table.stream_shard.items) if table.stream_shard else 0


# ---- moto in this process --------------------------------------------------------

_moto_tuned = False


def tune_moto() -> None:
    """moto 5.2 as the bench's processes use it. Some of its costs grow with
    the square of an item's size, and this service's chatrooms hold their
    chat's participant ids (1,000 UUIDs in the largest chats): one page of
    such chatrooms took minutes. None of these changes what moto answers for
    the types this service stores (S, N, L, M):

    - responses are written by walking botocore's shapes, and every
      AttributeValue is a structure of ten members (about 6 ms per item of 20
      attributes). moto's items are already in wire form (Item.to_json), so
      they are passed through as they are, as moto does for document shapes;
    - the 400 KB item-size guard re-measures every attribute of the item on
      each attribute set; it keeps a running size per attribute instead
      (the same limit);
    - every Query starts from all of the table's items, sorted by key (with
      moto's slow typed comparisons) before it filters one partition and
      sorts that again by the index's keys: the first sort is skipped, as no
      query result depends on it (only Scan's order would, and nothing here
      scans);
    - projecting an item onto an index's attributes (INCLUDE, KEYS_ONLY)
      turns the whole item into plain JSON and back: top-level attributes
      are picked from the item instead;
    - comparing and hashing two strings (every key, for every item a Query
      looks at) goes through the typed-value conversion of any type: strings
      are compared as the strings they are (the same result).

    All five make moto's share of every timing smaller, so the ratios against
    plain boto3 on the same moto are stricter, not looser. And one for memory:

    - moto keeps every Item it ever makes in a class-level list (for its
      dashboard), including the copies each Query and transaction makes, so a
      process grows with every request: Items are no longer kept there.

    Applied in the bench's own processes only; `make run`'s server (measurements
    6 and 8) applies the first one itself
    (devtools.moto_patches.write_attribute_values_as_they_are).
    """
    global _moto_tuned
    if _moto_tuned:
        return
    _moto_tuned = True
    from moto.core import serialize
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.table import Table

    original = serialize.BaseJSONSerializer._serialize_type_structure

    def structure(self, serialized, value, shape, key):
        if shape.name == "AttributeValue" and isinstance(value, dict):
            serialized[key] = value
            return
        original(self, serialized, value, shape, key)

    serialize.BaseJSONSerializer._serialize_type_structure = structure

    def size_of(key, value):
        size = value.size() if type(value) is dynamo_type.DynamoType else dynamo_type.bytesize(str(value))
        return dynamo_type.bytesize(key) + size

    def setitem(self, key, value):
        sizes = self.__dict__.setdefault("_sizes", {})
        new_size = size_of(key, value)
        if sum(sizes.values()) + new_size > 405000:  # moto's limit, as in LimitedSizeDict
            raise ItemSizeTooLarge
        sizes[key] = new_size
        dict.__setitem__(self, key, value)

    dynamo_type.LimitedSizeDict.__setitem__ = setitem

    def all_items(self):
        if not self.range_key_attr:
            return list(self.items.values())
        return [item for items in self.items.values() for item in items.values()]

    Table.all_items = all_items

    original_project = dynamo_type.Item.project

    def project(self, projection_expressions):
        if any(len(path) != 1 for path in projection_expressions):
            return original_project(self, projection_expressions)
        names = {path[0] for path in projection_expressions}
        attrs = {name: copy.deepcopy(value) for name, value in self.attrs.items() if name in names}
        return dynamo_type.Item(hash_key=self.hash_key, range_key=self.range_key, attrs=attrs)

    dynamo_type.Item.project = project

    value_type = dynamo_type.DynamoType

    def string_comparison(typed, plain):
        def compare(self, other):
            if type(other) is value_type and self.type == "S" and other.type == "S":
                return plain(self.value, other.value)
            return typed(self, other)

        return compare

    for name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
        setattr(value_type, name, string_comparison(getattr(value_type, name), getattr(str, name)))
    typed_hash = value_type.__hash__

    def hash_value(self):
        return hash(("S", self.value)) if self.type == "S" else typed_hash(self)

    value_type.__hash__ = hash_value

    def untracked(cls, *args, **kwargs):
        return object.__new__(cls)

    dynamo_type.Item.__new__ = untracked


class InProcessMoto:
    """mock_aws with the table built as production builds it, and moto
    patched as every process using moto must be (moto_patches.apply())."""

    def __init__(self, table: str = TABLE):
        self.table = table
        self.mock = None
        self.stream_arn = None

    def __enter__(self):
        import boto3
        from moto import mock_aws

        from chalicelib import storage
        from chalicelib.storage.table import create_table
        from devtools import moto_patches

        moto_patches.apply()
        tune_moto()
        self.mock = mock_aws()
        self.mock.start()
        self.client = boto3.client("dynamodb", region_name=REGION)
        self.stream_arn = create_table(self.client, self.table)
        storage.configure()
        return self

    def __exit__(self, *exc):
        self.mock.stop()


def quiet_chalice_test_client() -> None:
    """Chalice's test client swaps os.environ for a copy on every request (the
    tests turn that off too: tests/conftest.py); the environment is set here."""
    import contextlib

    import chalice.test

    @contextlib.contextmanager
    def as_is(self, environment_variables):
        yield

    chalice.test.BaseClient._patched_env_vars = as_is


# ---- callers -----------------------------------------------------------------------

def token(customer_id: str, agent_id: str | None = None, name: str = "", permission: int = 0) -> str:
    from chalicelib import auth

    return auth.mint(SECRET, customer_id=customer_id, agent_id=agent_id, name=name, permission=permission)


class Response(SimpleNamespace):
    pass


class Caller:
    """Someone with a token, speaking to the API through Chalice's test client."""

    def __init__(self, client, customer_id: str, agent_id: str | None = None, name: str = "", permission: int = 0):
        self.client = client
        self.customer_id = customer_id
        self.id = agent_id
        self.token = token(customer_id, agent_id, name or (f"agent-{agent_id[:4]}" if agent_id else ""), permission)

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        response = getattr(self.client.http, method.lower())(path, **kwargs)
        return Response(status=response.status_code, body=response.json_body)

    def ok(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        response = self.call(method, path, body, headers)
        if response.status != 200:
            raise AssertionError(f"{method} {path} -> {response.status} {response.body}")
        return response.body


def route_of(app, path: str) -> str:
    """The route template (as app.routes names it) a concrete path matches."""
    path = path.partition("?")[0]
    for _, regex, pattern in _route_patterns(app):
        if regex.match(path):
            return pattern
    raise ValueError(f"no route for {path}")


def _route_patterns(app):
    patterns = []
    for resource_path in app.routes:
        names = re.findall(r"{(\w+)}", resource_path)
        regex = re.escape(resource_path)
        for name in names:
            regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
        patterns.append((len(names), re.compile(f"^{regex}$"), resource_path))
    return sorted(patterns, key=lambda p: p[0])


def proxy_event(method: str, resource_path: str, path: str, path_parameters: dict | None, query: dict | None,
                headers: dict, body: str | None) -> dict:
    """An API Gateway (REST, proxy integration) event, as Lambda receives it."""
    return {
        "resource": resource_path, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters or None, "stageVariables": None,
        "requestContext": {
            "resourcePath": resource_path, "httpMethod": method, "path": f"/api{path}", "stage": "api",
            "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body, "isBase64Encoded": False,
    }


LAMBDA_CONTEXT = SimpleNamespace(function_name="voipbin-chat-bench", memory_limit_in_mb=128,
                                 aws_request_id="bench", invoked_function_arn="arn:aws:lambda:::function:bench")


class LambdaCaller(Caller):
    """The same, but calling the Lambda entry point app.app(event, context)
    with an API Gateway proxy event: no test client in between."""

    def __init__(self, app, customer_id: str, agent_id: str | None = None, name: str = "", permission: int = 0):
        super().__init__(None, customer_id, agent_id, name, permission)
        self.app = app
        self._patterns = _route_patterns(app)

    def event(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> dict:
        path, _, query_string = path.partition("?")
        query = dict(part.split("=", 1) for part in query_string.split("&") if part) if query_string else None
        for _, regex, pattern in self._patterns:
            match = regex.match(path)
            if match:
                resource_path = pattern
                break
        else:
            raise ValueError(f"no route for {path}")
        headers = {"authorization": f"Bearer {self.token}", **(headers or {})}
        if body is not None:
            headers.setdefault("content-type", "application/json")
        return proxy_event(method, resource_path, path, match.groupdict(), query, headers,
                           json.dumps(body) if body is not None else None)

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        response = self.app(self.event(method, path, body, headers), LAMBDA_CONTEXT)
        return Response(status=response["statusCode"], body=json.loads(response["body"]) if response["body"] else None)


# ---- the stream, into the fan-out handler ---------------------------------------------

class StreamTap:
    """Reads the records moto's stream really produced and hands them to the
    handler Lambda calls (app.on_table_change), as tests/conftest.py does."""

    def __init__(self, stream_arn: str, start: str = "TRIM_HORIZON"):
        from devtools.streams import ShardReader, streams_client

        self.stream_arn = stream_arn
        self.reader = ShardReader(streams_client(REGION, None), stream_arn, start=start)
        if start == "LATEST":
            self.reader.read(limit=1)  # fix the position now, as `make run` does

    def read(self, limit: int = 1000) -> list[dict]:
        from devtools.streams import lambda_event

        records = []
        while True:
            batch = [record for _, record in self.reader.read(limit=limit)]
            records += batch
            if len(batch) < limit:
                break
        return lambda_event(records, self.stream_arn, REGION)["Records"]

    def invoke(self, records: list[dict]) -> dict:
        import app as chat_app

        return chat_app.on_table_change({"Records": records}, None)

    def drain(self, rounds: int = 20) -> int:
        handled = 0
        for _ in range(rounds):
            records = self.read()
            if not records:
                return handled
            for start in range(0, len(records), 100):  # Lambda's batch size for this function
                result = self.invoke(records[start:start + 100])
                if result != {"batchItemFailures": []}:
                    raise AssertionError(f"fan-out failed: {result}")
            handled += len(records)
        raise AssertionError("the stream never went quiet")


# ---- the stream handler's phases, and its pushes ------------------------------------------

class stream_phases:  # noqa: N801 (a context manager used like a function)
    """While the stream handler runs, tag each metered request as "work"
    (inside services.fanout.follow: the fan-out and the cascades) or "events"
    (deriving events and finding their connections), so the two are reported
    apart. Wraps the module attribute the handler calls; changes nothing else."""

    def __init__(self, meter: "Meter"):
        self.meter = meter

    def __enter__(self):
        from chalicelib.services import fanout

        self._module, self._original = fanout, fanout.follow
        meter, original = self.meter, self._original

        def follow(*args, **kwargs):
            meter.phase = "work"
            try:
                return original(*args, **kwargs)
            finally:
                meter.phase = "events"

        fanout.follow = follow
        meter.phase = "events"
        return self

    def __exit__(self, *exc):
        self._module.follow = self._original
        self.meter.phase = None


class Pushes:
    """Websocket delivery switched on, with API Gateway's management API
    replaced by a list: the stream handler derives its events, finds the
    connections of their audiences in DynamoDB (metered) and "pushes" here.
    No request leaves the process (the endpoint is never called)."""

    ENDPOINT = "http://127.0.0.1:9/unused"

    def __init__(self):
        self.sent: list[tuple[str, str]] = []  # (connection id, event type)

    def __enter__(self):
        from chalicelib.services import delivery

        self._module, self._original = delivery, delivery.push
        self._previous = os.environ.get("CHAT_WEBSOCKET_ENDPOINT")
        os.environ["CHAT_WEBSOCKET_ENDPOINT"] = self.ENDPOINT

        def push(endpoint, connection_id, message):
            self.sent.append((connection_id, message["type"]))
            return True

        delivery.push = push
        return self

    def __exit__(self, *exc):
        self._module.push = self._original
        if self._previous is None:
            os.environ.pop("CHAT_WEBSOCKET_ENDPOINT", None)
        else:
            os.environ["CHAT_WEBSOCKET_ENDPOINT"] = self._previous

    def take(self) -> list[tuple[str, str]]:
        sent, self.sent = self.sent, []
        return sent


def connect_all(customer_id: str, agent_ids, customer_feed: bool = True) -> None:
    """One websocket connection per agent (and one on the customer's feed),
    registered as $connect registers them (services.connections.register)."""
    from chalicelib.auth import Principal
    from chalicelib.services import connections

    principals = [Principal(customer_id, agent_id, permission=16) for agent_id in agent_ids]
    if customer_feed:
        principals.append(Principal(customer_id))
    for principal in principals:
        connections.register(principal, uuid.uuid4().hex)


def new_id() -> str:
    return str(uuid.uuid4())


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start

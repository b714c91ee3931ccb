"""AWS's documented quotas, enforced where moto enforces none of them.

Installed by the test suite for every test (tests/conftest.py) and by `make
run` (devtools/run.py), so code that AWS would refuse fails here first, with
the error AWS gives:

- every botocore call (boto3's clients and PynamoDB's alike pass through
  `BaseClient._make_api_call`) is checked before it is sent: EventBridge
  PutEvents (10 entries, 256 KiB by AWS's entry-size rule), API Gateway
  post_to_connection (128 KiB), DynamoDB PutItem (400 KB item),
  BatchWriteItem (25 puts, 400 KB items), BatchGetItem (100 keys),
  TransactWriteItems (100 actions, 4 MB), SQS messages (256 KiB), S3
  DeleteObjects (1,000 keys), UploadPart (part numbers 1 to 10,000, 5 GiB
  a part), PutObject (5 GiB), a Lambda event source mapping's FilterCriteria
  (5 filters, 4,096 characters a pattern);
- DynamoDB's write rate of one partition: about 1,000 write units a second
  (counted per partition key over the last second), else it throttles;
- an UpdateItem, alone or in a transaction, that leaves an item over 400 KB
  is undone and refused, in moto's backend (devtools.moto_patches);
- `lambda_answer_size` measures an answer as API Gateway's proxy integration
  receives it (the body JSON-encoded once more), for the 6 MB check of the
  test client and the local server's answers.

Never imported on Lambda.
"""

import json
import threading
import time
from collections import deque
from typing import Any

from botocore.exceptions import ClientError

KIB = 1024
ITEM_MAX = 400 * KIB                 # DynamoDB item, attribute names included
TRANSACTION_ACTIONS_MAX = 100
TRANSACTION_BYTES_MAX = 4 * KIB * KIB
BATCH_WRITE_MAX = 25
BATCH_GET_KEYS_MAX = 100
PUT_EVENTS_ENTRIES_MAX = 10
PUT_EVENTS_BYTES_MAX = 256 * KIB
POST_TO_CONNECTION_MAX = 128 * KIB
PARTITION_WRITE_UNITS_PER_SECOND = 1000
SQS_MESSAGE_MAX = 256 * KIB
SQS_BATCH_MAX = 10
LAMBDA_ANSWER_MAX = 6 * KIB * KIB    # synchronous invocation's response payload
S3_DELETE_OBJECTS_MAX = 1000
S3_PART_NUMBER_MAX = 10_000
S3_PUT_MAX = 5 * KIB ** 3            # a PutObject, and one part of a multipart upload
LAMBDA_FILTERS_MAX = 5               # filters of one event source mapping (the default quota)
LAMBDA_FILTER_PATTERN_MAX = 4096     # characters of one filter's pattern

_installed = False
_tally_lock = threading.Lock()
_tally = {"checked": 0, "refused": 0}


# ---- sizes, as AWS computes them -----------------------------------------------------------

def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _number_size(text: str) -> int:
    """DynamoDB: about one byte per two significant digits, plus one."""
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    """The size of one AttributeValue (wire form), by DynamoDB's rules."""
    (kind, inner), = value.items()
    if kind == "S":
        return _utf8(inner)
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(v) for v in inner)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + _utf8(k) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown AttributeValue type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """An item's size: its attribute names and values."""
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """AWS's rule for a PutEvents entry (EventBridge user guide, "Calculating
    PutEvents event entry size")."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += _utf8(entry[name])
    return size + sum(_utf8(resource) for resource in entry.get("Resources") or [])


def lambda_answer_size(status: int, headers: dict[str, str], body: bytes | str) -> int:
    """The bytes Lambda returns to API Gateway's proxy integration for an
    answer: the body as a JSON string inside the proxy's JSON document."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    document = {"statusCode": status, "headers": dict(headers), "body": text, "isBase64Encoded": False}
    return len(json.dumps(document).encode())


# ---- the checks ----------------------------------------------------------------------------

def refuse(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    with _tally_lock:
        _tally["refused"] += 1
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class PartitionWrites:
    """Write units per partition over the last second, as DynamoDB meters
    them (1 KB a unit, twice in a transaction): a partition serves about
    1,000 a second; past that it throttles."""

    LIMIT = PARTITION_WRITE_UNITS_PER_SECOND

    def __init__(self):
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str], deque] = {}

    def take(self, operation: str, units: dict[tuple[str, str], int], now: float) -> None:
        with self._lock:
            for partition, wanted in units.items():
                recent = self._recent.setdefault(partition, deque())
                while recent and recent[0][0] <= now - 1.0:
                    recent.popleft()
                used = sum(count for _, count in recent)
                if used + wanted > self.LIMIT:
                    raise refuse(operation, "ProvisionedThroughputExceededException",
                                 f"partition {partition[1]!r} of table {partition[0]}: {used + wanted} write units "
                                 f"in a second, over the {self.LIMIT} one partition serves")
            for partition, wanted in units.items():
                self._recent[partition].append((now, wanted))


def _write_units(item_or_key: dict[str, Any], transactional: bool, sized: bool) -> int:
    units = max(1, -(-item_size(item_or_key) // KIB)) if sized else 1
    return units * (2 if transactional else 1)


def _partition_writes(operation: str, params: dict[str, Any], hash_key) -> dict[tuple[str, str], int]:
    """(table, partition key) -> the write units this request asks of it (an
    update's item is taken as one unit: its size is not known before)."""
    units: dict[tuple[str, str], int] = {}

    def add(table: str, item_or_key: dict[str, Any], transactional: bool, sized: bool) -> None:
        name = hash_key(table)
        if name in item_or_key:
            partition = (table, json.dumps(item_or_key[name], sort_keys=True))
            units[partition] = units.get(partition, 0) + _write_units(item_or_key, transactional, sized)

    if operation == "PutItem":
        add(params["TableName"], params["Item"], False, True)
    elif operation in ("UpdateItem", "DeleteItem"):
        add(params["TableName"], params["Key"], False, False)
    elif operation == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    add(table, request["PutRequest"]["Item"], False, True)
                else:
                    add(table, request["DeleteRequest"]["Key"], False, False)
    elif operation == "TransactWriteItems":
        for action in params.get("TransactItems", []):
            (_, body), = action.items()
            add(body["TableName"], body.get("Item") or body["Key"], True, "Item" in body)
    return units


def _dynamodb(operation: str, params: dict[str, Any]) -> None:
    if operation == "PutItem":
        _item_within(operation, params["Item"])
    elif operation == "BatchWriteItem":
        requests = [r for table in params.get("RequestItems", {}).values() for r in table]
        if len(requests) > BATCH_WRITE_MAX:
            raise refuse(operation, "ValidationException",
                         f"Too many items requested for the BatchWriteItem call ({len(requests)} > 25)")
        for request in requests:
            if "PutRequest" in request:
                _item_within(operation, request["PutRequest"]["Item"])
    elif operation == "BatchGetItem":
        keys = sum(len(table.get("Keys", [])) for table in params.get("RequestItems", {}).values())
        if keys > BATCH_GET_KEYS_MAX:
            raise refuse(operation, "ValidationException",
                         f"Too many items requested for the BatchGetItem call ({keys} > 100)")
    elif operation == "TransactWriteItems":
        actions = params.get("TransactItems", [])
        if len(actions) > TRANSACTION_ACTIONS_MAX:
            raise refuse(operation, "ValidationException",
                         f"1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                         f"Member must have length less than or equal to 100 (got {len(actions)})")
        total = 0
        for action in actions:
            (_, body), = action.items()
            total += _action_size(body)
            if "Item" in body:
                _item_within(operation, body["Item"])
        if total > TRANSACTION_BYTES_MAX:
            raise refuse(operation, "ValidationException",
                         f"Transaction request cannot be larger than 4 MB (this one: {total} bytes)")


def _action_size(body: dict[str, Any]) -> int:
    """What a transaction action carries: its item or key, and its values."""
    size = item_size(body.get("Item") or body.get("Key") or {})
    return size + sum(value_size(v) for v in (body.get("ExpressionAttributeValues") or {}).values())


def _item_within(operation: str, item: dict[str, Any]) -> None:
    size = item_size(item)
    if size > ITEM_MAX:
        raise refuse(operation, "ValidationException",
                     f"Item size has exceeded the maximum allowed size ({size} > {ITEM_MAX} bytes)")


def _events(operation: str, params: dict[str, Any]) -> None:
    if operation != "PutEvents":
        return
    entries = params.get("Entries", [])
    if len(entries) > PUT_EVENTS_ENTRIES_MAX:
        raise refuse(operation, "ValidationException",
                     "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                     f"Member must have length less than or equal to 10 (got {len(entries)})")
    total = sum(put_events_entry_size(entry) for entry in entries)
    if total > PUT_EVENTS_BYTES_MAX:
        raise refuse(operation, "ValidationException",
                     f"Total size of the entries in the request is over the limit ({total} > {PUT_EVENTS_BYTES_MAX})")


def _websocket(operation: str, params: dict[str, Any]) -> None:
    if operation == "PostToConnection":
        data = params.get("Data", b"")
        size = len(data.encode() if isinstance(data, str) else data)
        if size > POST_TO_CONNECTION_MAX:
            raise refuse(operation, "PayloadTooLargeException",
                         f"Message too long ({size} > {POST_TO_CONNECTION_MAX} bytes)", 413)


def _sqs(operation: str, params: dict[str, Any]) -> None:
    if operation == "SendMessage":
        bodies = [params]
    elif operation == "SendMessageBatch":
        bodies = params.get("Entries", [])
        if len(bodies) > SQS_BATCH_MAX:
            raise refuse(operation, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                         f"Maximum number of entries per request are 10 (got {len(bodies)})")
    else:
        return
    total = sum(_utf8(body.get("MessageBody", "")) for body in bodies)
    if total > SQS_MESSAGE_MAX:
        raise refuse(operation, "InvalidParameterValue", "One or more parameters are invalid. "
                     f"Reason: Message must be shorter than {SQS_MESSAGE_MAX} bytes")


def _s3(operation: str, params: dict[str, Any]) -> None:
    if operation == "DeleteObjects":
        keys = len(params.get("Delete", {}).get("Objects", []))
        if keys > S3_DELETE_OBJECTS_MAX:  # S3 answers MalformedXML for more than 1,000 keys
            raise refuse(operation, "MalformedXML", "The XML you provided was not well-formed or did not validate "
                         f"against our published schema ({keys} keys, at most {S3_DELETE_OBJECTS_MAX})")
    elif operation == "UploadPart" and not 1 <= int(params.get("PartNumber", 0)) <= S3_PART_NUMBER_MAX:
        raise refuse(operation, "InvalidArgument", f"Part number must be an integer between 1 and "
                     f"{S3_PART_NUMBER_MAX}, inclusive (got {params.get('PartNumber')})")
    elif operation in ("PutObject", "UploadPart"):
        body = params.get("Body", b"")
        size = len(body) if isinstance(body, bytes | str) else 0
        if size > S3_PUT_MAX:
            raise refuse(operation, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")


def _lambda(operation: str, params: dict[str, Any]) -> None:
    if operation not in ("CreateEventSourceMapping", "UpdateEventSourceMapping"):
        return
    filters = (params.get("FilterCriteria") or {}).get("Filters", [])
    if len(filters) > LAMBDA_FILTERS_MAX:
        raise refuse(operation, "InvalidParameterValueException",
                     f"Filters: {len(filters)}, over the quota of {LAMBDA_FILTERS_MAX} an event source mapping")
    for each in filters:
        if len(each.get("Pattern", "")) > LAMBDA_FILTER_PATTERN_MAX:
            raise refuse(operation, "ValidationException", "1 validation error detected: Value at "
                         f"'filterCriteria.filters.member.pattern' failed to satisfy constraint: Member must have "
                         f"length less than or equal to {LAMBDA_FILTER_PATTERN_MAX}")


_CHECKS = {"dynamodb": _dynamodb, "events": _events, "apigatewaymanagementapi": _websocket, "sqs": _sqs,
           "s3": _s3, "lambda": _lambda}


_partitions = PartitionWrites()
clock = time.monotonic  # the partition window's clock: a test of paced writes on a fake clock sets it too


def check_request(service: str, operation: str, params: dict[str, Any], hash_key=None) -> None:
    """Raise the ClientError AWS would answer if this request breaks a quota
    (`hash_key(table)`: the table's partition key attribute, for its write rate)."""
    with _tally_lock:
        _tally["checked"] += 1
    check = _CHECKS.get(service)
    if check is not None:
        check(operation, params)
    if service == "dynamodb" and hash_key is not None:
        units = _partition_writes(operation, params, hash_key)
        if units:
            _partitions.take(operation, units, clock())


# ---- installing it -------------------------------------------------------------------------

def _hash_key(describe, table: str, cache: dict) -> str:
    """The table's partition key attribute (`describe(table)`: a DescribeTable
    that nobody counts as the code's own)."""
    if table not in cache:
        [cache[table]] = [key["AttributeName"] for key in describe(table)["Table"]["KeySchema"]
                          if key["KeyType"] == "HASH"]
    return cache[table]


def install() -> None:
    """Check every botocore call of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    from botocore.client import BaseClient

    from devtools import moto_patches

    moto_patches.refuse_items_over(ITEM_MAX, item_size)
    original = BaseClient._make_api_call
    key_cache: dict = {}

    def make_api_call(self, operation_name, api_params):
        service = self.meta.service_model.service_name

        def describe(table):  # not through the wrappers: nobody counts it as the code's request
            return original(self, "DescribeTable", {"TableName": table})

        def hash_key(table):
            return _hash_key(describe, table, key_cache)

        check_request(service, operation_name, api_params, hash_key)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = make_api_call


def installed() -> bool:
    return _installed


def tally() -> dict[str, int]:
    with _tally_lock:
        return dict(_tally)


"""Make moto's DynamoDB (and S3, in one place) behave like AWS where our code depends on it.

moto 5.2's TransactWriteItems deep-copies every table it touches, applies the
items one by one (each leaving a stream record), and on a cancelled
transaction puts the copies back. Three things go wrong for us: a cancelled
transaction leaves stream records of writes that never happened, open shard
iterators keep reading the discarded copy's stream and never see later
writes, and the copy costs time in proportion to the table's size. Its
backend is also not safe for concurrent requests (the local server and the
race tests make them).

This replaces the transaction with DynamoDB's semantics (check every
condition first, then apply, or write nothing) and serialises the backend's
operations with one lock, as each DynamoDB item operation is atomic. Used by
the tests and by `make run`; never imported on Lambda.

`make run` also attaches a journal (devtools.journal): every stream record an
operation makes is handed to it, and when the operation (a whole transaction,
say) is over, still under the lock, the journal writes them to disk, before
moto answers. Stream reads take the lock too, so the stream's consumer never
sees a record that is not yet on disk.
"""

import contextlib
import copy
import functools
import re
import threading
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    ItemSizeToUpdateTooLarge,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()
_applied = False
_journal = None  # devtools.journal.Journal, when make run keeps its data
_depth = 0  # nesting of locked operations; the outermost one commits the journal
_SERIALISED = (
    "put_item", "update_item", "delete_item", "get_item", "query", "scan",
    "batch_write_item", "batch_get_item", "transact_get_items",
)


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _operation():
        seen, errors, ops = set(), [], []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            key = _key_of(self, op_type, op)
            identity = (op["TableName"], str(sorted(key.items())))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            ops.append((op_type, op, key))
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                    continue
            errors.append((None, None, None))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        # Every condition holds: apply them all, as one (or, if one leaves an
        # item over DynamoDB's size limit, none: see refuse_items_over).
        with _all_or_nothing(self, [(op["TableName"], key) for _, op, key in ops]) as refused:
            for index, (op_type, op, key) in enumerate(ops):
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                try:
                    if op_type == "Put":
                        self.put_item(op["TableName"], op["Item"])
                    elif op_type == "Delete":
                        self.delete_item(op["TableName"], key)
                    elif op_type == "Update":
                        self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                         expression_attribute_names=names or {},
                                         expression_attribute_values=values or {})
                except (ItemSizeTooLarge, ItemSizeToUpdateTooLarge) as error:
                    refused.append((index, error))
                    break
        if refused:
            index, error = refused[0]
            raise TransactionCanceledException([("ValidationError", error.message, None) if i == index
                                                else (None, None, None) for i in range(len(ops))])


@contextlib.contextmanager
def _operation():
    """One backend operation, atomic. Its stream records reach the journal's
    file when the outermost operation ends (a transaction's puts are one)."""
    global _depth
    with _lock:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _journal is not None:
                _journal.commit()


def _serialised(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _operation():
            return method(*args, **kwargs)

    return locked


# Reads whose items moto answers with its own live objects, turned into JSON
# after the lock is released: a concurrent update of a nested map would change
# them meanwhile ("dictionary changed size during iteration"). They answer a
# copy taken under the lock, as DynamoDB answers a snapshot.
_SNAPSHOT_READS = ("get_item", "batch_get_item", "query", "scan")


def _snapshot(method):
    @functools.wraps(method)
    def read(*args, **kwargs):
        with _operation():
            return copy.deepcopy(method(*args, **kwargs))

    return read


@contextlib.contextmanager
def _all_or_nothing(backend: DynamoDBBackend, keys: list[tuple[str, dict[str, Any]]]):
    """Yields a list; if the block puts an error in it, every item named is put
    back as it was and the stream records (and journal lines) the block made
    are taken back, so a refused write leaves no trace."""
    saved, marks = [], {}
    for table_name, key in keys:
        table = backend.get_table(table_name)
        hash_value, range_value = backend.get_keys_value(table, key)
        saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        if table.stream_shard is not None:
            marks.setdefault(id(table.stream_shard), (table.stream_shard, len(table.stream_shard.items)))
    journal_mark = _journal.mark() if _journal is not None else None
    refused: list = []
    yield refused
    if not refused:
        return
    for table, hash_value, range_value, item in reversed(saved):
        if item is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item
    for shard, length in marks.values():
        del shard.items[length:]
    if journal_mark is not None:
        _journal.discard_since(journal_mark)


_size_refused = False


def refuse_items_over(limit: int, size) -> None:
    """From now on an UpdateItem (alone or in a transaction) that leaves an
    item over `limit` bytes (by `size` of its wire form) is undone and refused
    with DynamoDB's error; moto checks only attributes set at the top level.
    A PutItem's item is checked before it is sent (devtools.aws_limits)."""
    global _size_refused
    if _size_refused:
        return
    _size_refused = True
    apply()
    update_item = DynamoDBBackend.update_item

    @functools.wraps(update_item)
    def checked(self, table_name, key, *args, **kwargs):
        with _operation(), _all_or_nothing(self, [(table_name, key)]) as refused:
            item = update_item(self, table_name, key, *args, **kwargs)
            measured = size(item.to_json()["Attributes"])
            if measured > limit:
                refused.append(ItemSizeTooLarge())
        if refused:
            raise ItemSizeToUpdateTooLarge()
        return item

    DynamoDBBackend.update_item = checked


def lock() -> threading.RLock:
    return _lock


def attach_journal(journal) -> None:
    """From now on every stream record goes to `journal` (see the module's doc)."""
    global _journal
    apply()
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if not getattr(StreamShard.add, "_journaled", False):
        stream_add = StreamShard.add

        def add(self, old, new):
            stream_add(self, old, new)
            if _journal is not None:
                _journal.record(self.table.name, self.items[-1].record, old, new)
                if _depth == 0:  # a write outside the backend's operations (PartiQL)
                    _journal.commit()

        add._journaled = True
        add.original = stream_add
        StreamShard.add = add
        DynamoDBStreamsBackend.get_records = _serialised(DynamoDBStreamsBackend.get_records)
    _journal = journal


def stream_add():
    """moto's own StreamShard.add (a stream record without journaling it)."""
    from moto.dynamodb.models.table import StreamShard

    return getattr(StreamShard.add, "original", StreamShard.add)


def apply() -> None:
    """Patch moto once per process."""
    global _applied
    if _applied:
        return
    _applied = True
    DynamoDBBackend.transact_write_items = transact_write_items
    _s3_answers_no_such_upload()
    for name in _SERIALISED:
        wrap = _snapshot if name in _SNAPSHOT_READS else _serialised
        setattr(DynamoDBBackend, name, wrap(getattr(DynamoDBBackend, name)))


def _s3_answers_no_such_upload() -> None:
    """S3 answers an UploadPart or a CompleteMultipartUpload of an upload that
    is gone (aborted) NoSuchUpload; moto 5 fails with a KeyError (a 500)."""
    from moto.s3.exceptions import NoSuchUpload
    from moto.s3.models import S3Backend

    def checked(method):
        @functools.wraps(method)
        def call(self, bucket_name, multipart_id, *args, **kwargs):
            if multipart_id not in self.get_bucket(bucket_name).multiparts:
                raise NoSuchUpload(upload_id=multipart_id)
            return method(self, bucket_name, multipart_id, *args, **kwargs)
        return call

    S3Backend.upload_part = checked(S3Backend.upload_part)
    S3Backend.complete_multipart_upload = checked(S3Backend.complete_multipart_upload)


_responses_fast = False


def _plain_value(value: Any) -> bool:
    """An AttributeValue in moto's wire form with no binary anywhere in it."""
    stack = [value]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict) or len(current) != 1:
            return False
        (kind, inner), = current.items()
        if kind in ("S", "N", "BOOL", "NULL", "SS", "NS"):
            continue
        if kind == "L" and isinstance(inner, list):
            stack.extend(inner)
        elif kind == "M" and isinstance(inner, dict):
            stack.extend(inner.values())
        else:
            return False  # B, BS (encoded on the way out), or a shape this does not know
    return True


def write_attribute_values_as_they_are() -> None:
    """`make run` only (the tests keep moto as it is). moto writes every
    response by walking botocore's shapes, and each AttributeValue is a
    structure of ten members: reading a chat of 1,000 participant ids, or a
    page of 100 stream records, took 100 to 200 ms of the embedded DynamoDB's
    time, the larger part of a large fan-out's cost locally. moto's items
    are already in wire form (Item.to_json): a value without binary in it is
    written as it is, which is what the walk produces for it. Requests are
    parsed the same way: a value without binary in it is taken as sent."""
    global _responses_fast
    if _responses_fast:
        return
    _responses_fast = True
    from moto.core import serialize

    serialize.BaseJSONSerializer._serialize_type_structure = _writing_plain_values_as_they_are(
        serialize.BaseJSONSerializer._serialize_type_structure)
    # The same on the way in: moto's request parser walks the same shapes.
    from moto.core import parse

    parse.BaseJSONParser._parse_structure = _reading_plain_values_as_they_are(parse.BaseJSONParser._parse_structure)


_items_sized_once = False


def size_items_once() -> None:
    """`make run` only. moto checks an item's 400 KB limit as it builds it, one
    attribute at a time, summing the sizes of every attribute set so far each
    time: a fifth of the embedded DynamoDB's time while a 1,000-agent group is
    created. Built here in one pass, then checked once: the same limit and
    the same error (sizes only add up, so the total is the largest sum)."""
    global _items_sized_once
    if _items_sized_once:
        return
    _items_sized_once = True
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict, bytesize

    def build(self, hash_key, range_key, attrs):
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # past LimitedSizeDict.__setitem__'s check, made above

    Item.__init__ = build


ITEM_SIZE_LIMIT = 405000  # moto's own (LimitedSizeDict): between DynamoDB's measured 409 and 410 KB


_conditions_cached = False


def cache_condition_expressions() -> None:
    """`make run` only. moto parses a condition expression anew each time it
    validates a request and each time it checks an item, and an update
    expression twice; a fan-out sends the same few expressions, with the same
    values (the message's time), for each of 1,000 chatrooms and copies: a
    third of the embedded DynamoDB's time. A parsed condition depends only
    on the expression and the names and values it uses, and neither checking
    an item against it nor reading it changes it: parsed once here, for each
    distinct three. An update expression is cached where moto only reads it
    (a request's validation), never where it is applied (moto rewrites it)."""
    global _conditions_cached, get_filter_expression
    if _conditions_cached:
        return
    _conditions_cached = True
    import json

    import moto.dynamodb.models as models
    import moto.dynamodb.models.table as table
    import moto.dynamodb.responses as responses
    from moto.dynamodb import comparisons
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    @functools.lru_cache(maxsize=4096)
    def parsed(expr, names, values):
        parser = comparisons.create_condition_expression_parser(expr, json.loads(names), json.loads(values))
        return parser.parse(), tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class Parser:
        """moto's ConditionExpressionParser, as its callers use it."""

        def __init__(self, expr, names, values):
            self._arguments = expr, names, values
            self._found = ((), ())

        def parse(self):
            expr, names, values = self._arguments
            # Only the names and values the expression uses: a request's others
            # (its update's, which differ from item to item) do not change it.
            used = set(_PLACEHOLDER.findall(expr or ""))
            try:
                key = (json.dumps({k: v for k, v in (names or {}).items() if k in used}, sort_keys=True),
                       json.dumps({k: v for k, v in (values or {}).items() if k in used}, sort_keys=True))
            except (TypeError, ValueError):  # not plain JSON: parsed as moto does
                parser = comparisons.create_condition_expression_parser(expr, names, values)
                op = parser.parse()
                self._found = tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)
                return op
            op, *self._found = parsed(expr, *key)
            return op

        @property
        def expr_attr_names_found(self) -> list:
            return list(self._found[0])  # a new list: callers add to it

        @property
        def expr_attr_values_found(self) -> list:
            return list(self._found[1])

    def cached(expr, names, values):
        return Parser(expr, names, values).parse()

    class ReadOnlyUpdateExpressions:
        make = staticmethod(functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make))

    models.create_condition_expression_parser = Parser
    models.get_filter_expression = cached
    table.get_filter_expression = cached
    responses.create_condition_expression_parser = Parser
    responses.UpdateExpressionParser = ReadOnlyUpdateExpressions
    get_filter_expression = cached  # this module's transactions


_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


_client_fast = False


def client_attribute_values_as_they_are() -> None:
    """`make run` only: the same as write_attribute_values_as_they_are, on the
    client's side of the same wire. botocore walks its shapes for every
    AttributeValue it sends or reads; in `make run`'s one process that is the
    stream reader's largest cost (a page of 100 records with their images)
    and a good part of a large create's. A value without binary in it is what
    the walk produces for it: sent and read as it is (after botocore has
    validated the request, which this leaves alone)."""
    global _client_fast
    if _client_fast:
        return
    _client_fast = True
    from botocore import parsers, serialize

    parsers.BaseJSONParser._handle_structure = _reading_plain_values_as_they_are(
        parsers.BaseJSONParser._handle_structure)
    serialize.JSONSerializer._serialize_type_structure = _writing_plain_values_as_they_are(
        serialize.JSONSerializer._serialize_type_structure)


def _reading_plain_values_as_they_are(walk):
    """A parser's structure walk (moto's or botocore's: the same signature) that
    gives back an AttributeValue without binary in it as it came."""

    def structure(self, shape, value):
        if shape.name == "AttributeValue" and _plain_value(value):
            return value
        return walk(self, shape, value)

    return structure


def _writing_plain_values_as_they_are(walk):
    """A serializer's structure walk (moto's or botocore's) that writes an
    AttributeValue without binary in it as it is."""

    def structure(self, serialized, value, shape, key):
        if shape.name == "AttributeValue" and key is not None and _plain_value(value):
            serialized[key] = value
            return
        walk(self, serialized, value, shape, key)

    return structure

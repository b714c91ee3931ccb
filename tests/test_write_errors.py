"""One policy for every write (storage/operations.py), checked on every write
path of the API: a transient error (throttling, a transaction conflict) is
retried and the request succeeds; one that outlasts the retries is a 503; any
other error is a logged 500. Never a 200 that changed nothing, never a 404 or
409 made up from a failure, and nothing half written."""

import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from chalicelib.storage import operations
from tests.conftest import REGION, TABLE
from tests.helpers import create_chat

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def table_items():
    """Every item but the send limits' counters: those count attempts (a send that
    then fails counted against its caller's limit, as a refused one does not)."""
    client = boto3.client("dynamodb", region_name=REGION)
    items = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        items += [item for item in page["Items"] if item.get("kind") != {"S": "send-window"}]
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def throttled(operation):
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                       operation)


def conflict(operation):
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                        "CancellationReasons": [{"Code": "TransactionConflict", "Message": "conflict"}]}, operation)


def broken(operation):
    return ClientError({"Error": {"Code": "ValidationException", "Message": "item too large"}}, operation)


class Injector:
    """Fails the next `times` DynamoDB requests of the given operations with `error(operation)`."""

    def __init__(self):
        self.times, self.operations, self.error, self.injected = 0, set(), None, 0

    def arm(self, error, operations, times):
        self.error, self.operations, self.times, self.injected = error, set(operations), times, 0


@pytest.fixture
def inject(monkeypatch):
    injector = Injector()
    original = BaseClient._make_api_call

    def make_api_call(client, operation_name, api_params):
        if (client.meta.service_model.service_name == "dynamodb" and operation_name in injector.operations
                and injector.injected < injector.times):
            injector.injected += 1
            raise injector.error(operation_name)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    sleeps = []
    monkeypatch.setattr(operations, "time", SimpleNamespace(sleep=sleeps.append))
    injector.sleeps = sleeps
    return injector


@pytest.fixture
def world(customer, make_agent, fanout):
    owner, other, third = make_agent(), make_agent(), make_agent()
    group = create_chat(customer, owner, other, third)
    room = next(r for r in owner.get("/v1.0/chatrooms").json_body["result"] if r["chat_id"] == group["id"])
    copy = owner.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"}).json_body
    fanout.drain()
    return SimpleNamespace(customer=customer, owner=owner, other=other, third=third, group=group, room=room,
                           copy=copy, make_agent=make_agent)


# (name, the write request, what it writes with)
WRITE_PATHS = [
    ("create chat", lambda w: w.customer.post("/v1.0/chats", {
        "type": "normal", "owner_id": w.owner.id, "participant_ids": [w.owner.id, w.make_agent().id]}),
     {"TransactWriteItems"}),
    ("create chatroom", lambda w: w.owner.post("/v1.0/chatrooms", {"participant_ids": [w.make_agent().id]}),
     {"TransactWriteItems"}),
    ("rename chat", lambda w: w.owner.put(f"/v1.0/chats/{w.group['id']}", {"name": "renamed"}), {"UpdateItem"}),
    ("change owner", lambda w: w.owner.put(f"/v1.0/chats/{w.group['id']}/owner_id", {"owner_id": w.other.id}),
     {"UpdateItem"}),
    ("add participant", lambda w: w.owner.post(f"/v1.0/chats/{w.group['id']}/participant_ids",
                                               {"participant_id": w.make_agent().id}), {"TransactWriteItems"}),
    ("remove participant", lambda w: w.owner.delete(f"/v1.0/chats/{w.group['id']}/participant_ids/{w.third.id}"),
     {"TransactWriteItems"}),
    ("delete chat", lambda w: w.owner.delete(f"/v1.0/chats/{w.group['id']}"), {"TransactWriteItems"}),
    ("rename chatroom", lambda w: w.owner.put(f"/v1.0/chatrooms/{w.room['id']}", {"name": "mine"}), {"UpdateItem"}),
    ("delete chatroom", lambda w: w.owner.delete(f"/v1.0/chatrooms/{w.room['id']}"), {"UpdateItem"}),
    ("send chatmessage", lambda w: w.owner.post("/v1.0/chatmessages", {"chat_id": w.group["id"], "text": "x"}),
     {"PutItem"}),
    ("send chatmessage with a key", lambda w: w.owner.post(
        "/v1.0/chatmessages", {"chat_id": w.group["id"], "text": "x"}, headers={"Idempotency-Key": "k-1"}),
     {"TransactWriteItems"}),
    ("send chatroommessage", lambda w: w.owner.post("/v1.0/chatroommessages",
                                                    {"chatroom_id": w.room["id"], "text": "x"}),
     {"TransactWriteItems"}),
    ("delete chatmessage", lambda w: w.owner.delete(f"/v1.0/chatmessages/{w.copy['messagechat_id']}"),
     {"UpdateItem"}),
    ("delete chatroommessage", lambda w: w.owner.delete(f"/v1.0/chatroommessages/{w.copy['id']}"),
     {"TransactWriteItems"}),
]
IDS = [name for name, _, _ in WRITE_PATHS]


@pytest.mark.parametrize(("name", "request_of", "writes_with"), WRITE_PATHS, ids=IDS)
def test_a_passing_throttle_is_retried_and_the_write_lands(world, inject, name, request_of, writes_with):
    before = table_items()
    inject.arm(throttled, writes_with, times=2)
    response = request_of(world)
    assert response.status_code == 200, (name, response.body)
    assert inject.injected == 2 and len(inject.sleeps) == 2, "retried after a backoff"
    assert table_items() != before, "the write landed"


@pytest.mark.parametrize(("name", "request_of", "writes_with"), WRITE_PATHS, ids=IDS)
def test_throttling_that_outlasts_the_retries_is_a_503_and_changes_nothing(world, inject, name, request_of,
                                                                          writes_with):
    before = table_items()
    inject.arm(throttled, writes_with, times=1000)
    response = request_of(world)
    assert response.status_code == 503, (name, response.status_code, response.body)
    assert set(response.json_body) == {"Code", "Message"} and "retry" in response.json_body["Message"]
    assert inject.injected == operations.ATTEMPTS
    assert table_items() == before


TRANSACTION_PATHS = [path for path in WRITE_PATHS if path[2] == {"TransactWriteItems"}]


@pytest.mark.parametrize(("name", "request_of", "writes_with"), TRANSACTION_PATHS,
                         ids=[name for name, _, _ in TRANSACTION_PATHS])
def test_transaction_conflicts_are_retried_never_read_as_a_business_answer(world, inject, name, request_of,
                                                                           writes_with):
    before = table_items()
    inject.arm(conflict, writes_with, times=1000)
    response = request_of(world)
    assert response.status_code == 503, (name, response.status_code, response.body)
    assert table_items() == before
    inject.arm(conflict, writes_with, times=1)
    assert request_of(world).status_code == 200


@pytest.mark.parametrize(("name", "request_of", "writes_with"), WRITE_PATHS, ids=IDS)
def test_any_other_error_is_a_logged_500_and_changes_nothing(world, inject, caplog, name, request_of, writes_with):
    before = table_items()
    inject.arm(broken, writes_with, times=1000)
    response = request_of(world)
    assert response.status_code == 500, (name, response.status_code, response.body)
    assert set(response.json_body) == {"Code", "Message"}
    assert inject.injected == 1, "not retried"
    assert table_items() == before
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_a_read_that_stays_throttled_is_a_503(world, inject):
    inject.arm(throttled, {"GetItem"}, times=1000)
    response = world.owner.get(f"/v1.0/chats/{world.group['id']}")
    assert response.status_code == 503, response.body

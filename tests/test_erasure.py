"""Erasing a customer's data (README.md, "Data lifecycle"): DELETE
/customer/data with Confirm-Customer-Id starts a job the stream function runs
in slices; GET /customer/data shows how far it is. Tried next to a second
customer whose items and files must stay byte for byte as they were."""

import json
import uuid

import pytest

from chalicelib.services import erasure
from chalicelib.storage import failures
from tests.conftest import BUCKET, DYNAMODB, TABLE, Caller
from tests.helpers import accepted, assert_error, create_chat, ok, send_chatmessage
from tests.test_files import file_media, uploaded_file
from tests.test_realtime import connect

DATA = "/v1.0/customer/data"


def confirmed(caller) -> dict:
    return {"Confirm-Customer-Id": caller.customer_id}


def whole_table() -> dict[tuple[str, str], dict]:
    """Every item of the table (a Scan: the test's view, never the service's)."""
    items, start = {}, {}
    while True:
        page = DYNAMODB.scan(TableName=TABLE, ConsistentRead=True, **start)
        items.update({(item["pk"]["S"], item["sk"]["S"]): item for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def whole_bucket(s3) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {found["Key"]: s3.get_object(Bucket=BUCKET, Key=found["Key"])["Body"].read() for found in listed}


def of_customer(key: tuple[str, str], item: dict, customer_id: str) -> bool:
    return key[0].startswith(customer_id) or item.get("customer_id", {}).get("S") == customer_id


def busy_customer(customer, make_agent, fanout) -> None:
    """Everything a customer can own: chats 1:1 and group (one deleted), messages edited, reacted to,
    deleted, replied to, sent with a file; presence, a live connection, settings, an export, an
    idempotent send, a typing throttle's partition."""
    alice, bob, carol = (make_agent(name=name) for name in ("alice", "bob", "carol"))
    chat = create_chat(customer, alice, bob)
    group = create_chat(customer, alice, bob, carol, chat_type="group", name="team")
    file = uploaded_file(alice)
    first = send_chatmessage(alice, chat, "hello", medias=[file_media(file)])
    ok(alice.put(f"/v1.0/chatmessages/{first['id']}", {"text": "hello bob"}))
    ok(bob.post(f"/v1.0/chatmessages/{first['id']}/reactions", {"emoji": "👍"}))
    send_chatmessage(bob, chat, "a reply", parent_id=first["id"])
    gone = send_chatmessage(carol, group, "oops")
    ok(carol.delete(f"/v1.0/chatmessages/{gone['id']}"))
    ok(alice.post("/v1.0/chatmessages", {"chat_id": group["id"], "type": "normal", "text": "once"},
                  headers={"Idempotency-Key": str(uuid.uuid4())}))
    ok(customer.delete(f"/v1.0/chats/{group['id']}"))
    ok(carol.put("/v1.0/presence", {"status": "busy"}))
    connect(bob)
    ok(customer.put("/v1.0/customer/settings", {"retention_days": 400}))
    assert customer.post("/v1.0/exports").status_code == 202
    fanout.drain()


def test_an_erasure_removes_every_item_and_file_of_the_customer_and_nothing_else(
        customer, make_agent, fanout, bucket, client):
    busy_customer(customer, make_agent, fanout)
    other = Caller(client, str(uuid.uuid4()))
    other_agents = [Caller(client, other.customer_id, str(uuid.uuid4()), name=f"o{n}") for n in range(3)]
    busy_customer(other, lambda name: other_agents[["alice", "bob", "carol"].index(name)], fanout)
    for number, owner in enumerate((customer, other)):  # a failed stream record of each, kept for make redrive
        failures.keep({"eventName": "INSERT", "sequenceNumber": str(900 + number),
                       "itemKey": f"{owner.customer_id}#chat#{uuid.uuid4()}", "NewImage": {}, "OldImage": None})
    table, files = whole_table(), whole_bucket(bucket)
    assert sum(of_customer(key, item, customer.customer_id) for key, item in table.items()) > 30
    assert any(key.startswith(f"{customer.customer_id}/") for key in files)

    started = customer.delete(DATA, headers=confirmed(customer))
    assert started.status_code == 202, started.body
    assert (started.json_body["status"], started.json_body["phase"]) == ("running", "items")
    fanout.drain()
    done = ok(customer.get(DATA))
    assert (done["status"], done["phase"]) == ("done", "")
    assert done["tm_done"] >= done["tm_create"]

    after, files_after = whole_table(), whole_bucket(bucket)
    left = [key for key, item in after.items() if of_customer(key, item, customer.customer_id)
            and key != (f"{customer.customer_id}#erasure", "#")]
    assert left == [], json.dumps([after[key] for key in left])
    theirs = {key: item for key, item in table.items() if not of_customer(key, item, customer.customer_id)}
    assert {key: item for key, item in after.items() if not of_customer(key, item, customer.customer_id)} == theirs
    assert done["items_deleted"] == sum(of_customer(key, item, customer.customer_id) for key, item in table.items())
    assert [key for key in files_after if key.startswith(f"{customer.customer_id}/")] == []
    assert failures.load(failures.key("901"))["itemKey"].startswith(other.customer_id)  # theirs is kept
    assert failures.key("900") not in files_after
    assert files_after == {key: data for key, data in files.items()
                           if not key.startswith(customer.customer_id) and key != failures.key("900")}
    assert done["files_deleted"] == len(files) - len(files_after)
    assert ok(customer.get("/v1.0/chats"))["result"] == []
    assert ok(customer.get("/v1.0/customer/settings"))["retention_days"] == 0


def test_an_erasure_runs_in_slices_and_takes_what_was_written_meanwhile(customer, make_agent, fanout, bucket,
                                                                        monkeypatch):
    monkeypatch.setattr(erasure, "SLICE_ITEMS", 3)
    alice, bob = make_agent(), make_agent()
    chat = create_chat(customer, alice, bob)
    for number in range(6):
        send_chatmessage(alice, chat, f"message {number}")
    fanout.drain()
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    for _ in range(2):  # the request's record, and the first slice's: two slices of 3 items
        assert fanout.invoke(fanout.read_event(limit=1)) == {"batchItemFailures": []}
    shown = ok(customer.get(DATA))
    assert shown["status"] == "running" and shown["items_deleted"] > 0
    late = create_chat(customer, make_agent(), make_agent())  # written while it runs
    assert accepted(customer.delete(DATA, headers=confirmed(customer)))["tm_create"] == shown["tm_create"]
    fanout.drain()
    assert ok(customer.get(DATA))["status"] == "done"
    assert_error(customer.get(f"/v1.0/chats/{late['id']}"), 404)
    assert [key for key, item in whole_table().items() if of_customer(key, item, customer.customer_id)] == [
        (f"{customer.customer_id}#erasure", "#")]


def test_asking_again_once_done_runs_again(customer, make_agent, fanout, bucket):
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    fanout.drain()
    first = ok(customer.get(DATA))
    assert (first["status"], first["items_deleted"]) == ("done", 0)
    alice, bob = make_agent(), make_agent()
    create_chat(customer, alice, bob)
    again = accepted(customer.delete(DATA, headers=confirmed(customer)))
    assert again["status"] == "running" and again["tm_create"] > first["tm_create"]
    fanout.drain()
    assert ok(customer.get(DATA))["items_deleted"] > 0


@pytest.mark.parametrize("headers, words", [
    ({}, ["Confirm-Customer-Id", "required"]),
    ({"Confirm-Customer-Id": "someone-else"}, ["Confirm-Customer-Id", "not this token's customer id"]),
])
def test_an_erasure_needs_the_customer_id_confirmed(customer, headers, words):
    response = customer.delete(DATA, headers=headers)
    assert_error(response, 400)
    assert all(word in response.json_body["Message"] for word in words)
    assert_error(customer.get(DATA), 404)  # nothing started


@pytest.mark.parametrize("permission", [0, 32, 64])
def test_an_erasure_is_for_customer_tokens_only(make_agent, permission):
    agent = make_agent(permission=permission)
    assert_error(agent.delete(DATA, headers=confirmed(agent)), 403)
    assert_error(agent.get(DATA), 403)


def test_an_erasure_record_names_nothing_it_erased(customer, make_agent, fanout, bucket):
    alice, bob = make_agent(), make_agent()
    send_chatmessage(alice, create_chat(customer, alice, bob), "secret words")
    fanout.drain()
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    fanout.drain()
    [record] = [item for key, item in whole_table().items() if key[0].startswith(customer.customer_id)]
    assert "secret" not in json.dumps(record) and alice.id not in json.dumps(record)


def test_an_erasure_removes_more_files_than_one_delete_objects_takes(customer, fanout, bucket):
    """S3 takes 1,000 keys a DeleteObjects (the suite's guard refuses more): 2,501 objects under the
    customer's prefix go in three, and one of another customer's stays."""
    for number in range(2501):
        bucket.put_object(Bucket=BUCKET, Key=f"{customer.customer_id}/{uuid.UUID(int=number)}", Body=b"x")
    theirs = f"{uuid.uuid4()}/{uuid.uuid4()}"
    bucket.put_object(Bucket=BUCKET, Key=theirs, Body=b"theirs")
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    fanout.drain()
    assert ok(customer.get(DATA))["files_deleted"] == 2501
    assert list(whole_bucket(bucket)) == [theirs]


def test_a_1000_agent_group_is_exported_and_erased_within_every_limit(customer, fanout, bucket, fake_clock):
    """A group at the contract's limit: its 1,000 chatrooms are read 100 to a BatchGetItem (by the export
    and by the erasure), its partition of 1,002 items and its chatrooms deleted 25 to a BatchWriteItem,
    the partition paced as DynamoDB serves one (on a fake clock the guard follows). A message's copies
    go by the same delete_all (test_an_erasure_removes_every_item_...)."""
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    ok(customer.post("/v1.0/chats", {"type": "group", "owner_id": ids[0], "participant_ids": ids}))
    fanout.drain()
    started = customer.post("/v1.0/exports")
    assert started.status_code == 202
    fanout.drain()
    job = ok(customer.get(f"/v1.0/exports/{started.json_body['id']}"))
    assert job["progress"] == {"chat": 1, "chatroom": 1000, "chatmessage": 0, "file": 0}
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    fanout.drain()
    # the 1,000 chatrooms, the chat's partition (the chat, its status, 1,000 member items) and the export
    assert ok(customer.get(DATA))["items_deleted"] == 1000 + 1002 + 1
    assert [key for key, item in whole_table().items() if of_customer(key, item, customer.customer_id)] == [
        (f"{customer.customer_id}#erasure", "#")]

"""Data lifecycle (README.md, "Data lifecycle"): the customer's settings,
transcripts, retention and purge by DynamoDB TTL."""

import random
from collections import Counter

import botocore.client
import pytest

from chalicelib.clock import epoch
from tests.conftest import DYNAMODB, TABLE
from tests.helpers import (
    assert_error,
    chatmessages_of,
    chatroommessages_of,
    create_chat,
    get_room,
    ok,
    room_of,
    send_chatmessage,
)

SETTINGS = "/v1.0/customer/settings"


# ---- GET|PUT /customer/settings -----------------------------------------------------------

def test_settings_start_as_the_defaults_and_change_field_by_field(customer):
    assert ok(customer.get(SETTINGS)) == {"customer_id": customer.customer_id, "retention_days": 0,
                                          "purge_deleted_after_days": 30, "tm_update": ""}
    changed = ok(customer.put(SETTINGS, {"retention_days": 90}))
    assert (changed["retention_days"], changed["purge_deleted_after_days"]) == (90, 30)
    assert changed["tm_update"]
    changed = ok(customer.put(SETTINGS, {"purge_deleted_after_days": 7}))
    assert (changed["retention_days"], changed["purge_deleted_after_days"]) == (90, 7)
    assert ok(customer.get(SETTINGS)) == changed


def test_settings_are_per_customer(customer, other_customer):
    ok(customer.put(SETTINGS, {"retention_days": 5}))
    assert ok(other_customer.get(SETTINGS))["retention_days"] == 0


@pytest.mark.parametrize("permission, status", [(32, 200), (64, 200), (16, 403)])
def test_settings_are_for_customer_tokens_admins_and_managers(make_agent, permission, status):
    agent = make_agent(permission=permission)
    for response in (agent.get(SETTINGS), agent.put(SETTINGS, {"retention_days": 1})):
        assert response.status_code == status, response.body


@pytest.mark.parametrize("body, words", [
    ({"retention_days": -1}, ["retention_days", "0 to 3650"]),
    ({"retention_days": 3651}, ["retention_days", "0 to 3650"]),
    ({"retention_days": "30"}, ["retention_days"]),
    ({"retention_days": 1.5}, ["retention_days"]),
    ({"purge_deleted_after_days": 0}, ["purge_deleted_after_days", "1 to 365"]),
    ({"purge_deleted_after_days": 366}, ["purge_deleted_after_days", "1 to 365"]),
    ({}, ["retention_days", "purge_deleted_after_days"]),
    ({"retention_days": 1, "other": 1}, ["other"]),
])
def test_settings_refuse_what_is_out_of_range(customer, body, words):
    response = customer.put(SETTINGS, body)
    assert_error(response, 400)
    for word in words:
        assert word in response.json_body["Message"], response.json_body
    assert ok(customer.get(SETTINGS))["tm_update"] == ""


@pytest.mark.parametrize("value", [0, 3650])
def test_settings_take_the_ends_of_the_range(customer, value):
    assert ok(customer.put(SETTINGS, {"retention_days": value, "purge_deleted_after_days": 365}))[
        "retention_days"] == value


# ---- GET /chats/{id}/transcript -----------------------------------------------------------

def transcript_pages(caller, chat, fmt="json"):
    pages, token = [], ""
    while True:
        page = ok(caller.get(f"/v1.0/chats/{chat['id']}/transcript?format={fmt}&page_token={token}"))
        pages.append(page)
        token = page["next_page_token"]
        if not token:
            return pages


@pytest.fixture
def pair(customer, make_agent):
    alice, bob = make_agent(name="alice"), make_agent(name="bob")
    return alice, bob, create_chat(customer, alice, bob)


def test_a_transcript_is_oldest_first_with_names_edits_and_deletes_marked(pair, customer, fanout):
    alice, bob, chat = pair
    first = send_chatmessage(alice, chat, "hello bob")
    edited = send_chatmessage(bob, chat, "hi alcie")
    ok(bob.put(f"/v1.0/chatmessages/{edited['id']}", {"text": "hi alice"}))
    gone = send_chatmessage(alice, chat, "oops, wrong chat")
    ok(alice.delete(f"/v1.0/chatmessages/{gone['id']}"))
    system = send_chatmessage(customer, chat, "chat closed", type="system",
                              source={"type": "tel", "target": "+821100000001"})
    fanout.drain()  # the stream files the deleted message for the transcript

    entries = transcript_pages(alice, chat)[0]["result"]
    assert [e["id"] for e in entries] == [first["id"], edited["id"], gone["id"], system["id"]]
    assert [e["sender"] for e in entries] == ["alice", "bob", "alice", "+821100000001"]
    assert [(e["edited"], e["deleted"]) for e in entries] == [(False, False), (True, False), (False, True),
                                                              (False, False)]
    assert entries[1]["text"] == "hi alice" and entries[2]["text"] == ""

    text = transcript_pages(bob, chat, "text")[0]["text"].splitlines()
    assert text == [f"[{first['tm_create']}] alice: hello bob",
                    f"[{edited['tm_create']}] bob: hi alice (edited)",
                    f"[{gone['tm_create']}] alice: (deleted)",
                    f"[{system['tm_create']}] +821100000001: chat closed"]


def test_a_large_chat_pages_through_every_message_once(pair, fanout, monkeypatch):
    from chalicelib.services import transcripts

    alice, bob, chat = pair
    monkeypatch.setattr(transcripts, "PAGE_ITEMS_MAX", 40)
    sent = [send_chatmessage(alice if n % 2 else bob, chat, f"message {n}") for n in range(300)]
    for message in sent[::7]:
        ok(alice.delete(f"/v1.0/chatmessages/{message['id']}")) if message["source"]["target"] == alice.id else \
            ok(bob.delete(f"/v1.0/chatmessages/{message['id']}"))
    fanout.drain()
    pages = transcript_pages(alice, chat)
    assert len(pages) == 8 and all(len(page["result"]) <= 40 for page in pages)
    entries = [entry for page in pages for entry in page["result"]]
    assert [e["id"] for e in entries] == [m["id"] for m in sent]  # all, once, oldest first
    assert {e["id"] for e in entries if e["deleted"]} == {m["id"] for m in sent[::7]}
    lines = [line for page in transcript_pages(bob, chat, "text") for line in page["text"].splitlines()]
    assert len(lines) == 300 and lines[1].endswith("bob: message 1") is False and lines[1].endswith(": message 1")


def test_a_transcript_page_ends_at_its_byte_budget(pair, monkeypatch):
    from chalicelib.services import transcripts

    alice, _, chat = pair
    sent = [send_chatmessage(alice, chat, "x" * 9000) for _ in range(12)]
    monkeypatch.setattr(transcripts, "ANSWER_BYTES_MAX", 40_000)  # five of these messages reach it
    pages = transcript_pages(alice, chat)
    assert [len(page["result"]) for page in pages] == [5, 5, 2]  # a page ends with the message that reaches it
    assert [e["id"] for page in pages for e in page["result"]] == [m["id"] for m in sent]


def test_a_transcript_is_for_whoever_may_read_the_chat(pair, make_agent, admin, stranger):
    alice, _, chat = pair
    send_chatmessage(alice, chat, "hello")
    path = f"/v1.0/chats/{chat['id']}/transcript"
    assert len(ok(admin.get(path))["result"]) == 1
    assert_error(make_agent().get(path), 403)
    assert_error(stranger.get(path), 404)
    assert_error(alice.get(path + "?format=pdf"), 400)
    assert_error(alice.get(path + "?page_token=yesterday"), 400)


# ---- retention and purge by DynamoDB TTL ------------------------------------------------------

DAY = 86400


class FakeClock:
    """Moves the clock that decides what is expired (chalicelib.clock.now as
    services/lifecycle.py and storage read it); writes keep their real times."""

    def __init__(self, monkeypatch):
        from chalicelib import clock

        self._real, self._clock, self._monkeypatch, self.offset = clock.now, clock, monkeypatch, 0

    def advance(self, seconds):
        from datetime import datetime, timedelta

        from chalicelib.clock import TIME_FORMAT

        self.offset += seconds
        real, offset = self._real, self.offset
        self._monkeypatch.setattr(self._clock, "now", lambda: (
            datetime.strptime(real(), TIME_FORMAT) + timedelta(seconds=offset)).strftime(TIME_FORMAT))

    def epoch(self):
        return self._clock.epoch(self._clock.now())


@pytest.fixture
def clock(monkeypatch):
    return FakeClock(monkeypatch)


def table_items():
    """Every item of the test's table (a test may scan; the service never does)."""
    items, start = [], {}
    while True:
        page = DYNAMODB.scan(TableName=TABLE, **start)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def apply_ttl(now):
    """DynamoDB's TTL as it applies it: items whose expires_at has passed are
    deleted by the service some time later, in no particular order, each a
    REMOVE record on the table's stream. Returns the keys deleted."""
    expired = [item for item in table_items() if "expires_at" in item and int(item["expires_at"]["N"]) <= now]
    random.shuffle(expired)
    for item in expired:
        DYNAMODB.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    return {(item["pk"]["S"], item["sk"]["S"]) for item in expired}


def items_of(message_id):
    """The table's items of one chatmessage: itself, its partition (history), its copies."""
    return [item for item in table_items()
            if message_id in item["pk"]["S"] or item.get("messagechat_id", {}).get("S") == message_id]


def test_retention_hides_expired_messages_then_ttl_takes_them_and_their_copies(pair, customer, fanout, clock):
    alice, bob, chat = pair
    ok(customer.put(SETTINGS, {"retention_days": 2}))
    fanout.drain()
    message = send_chatmessage(alice, chat, "kept two days")
    ok(alice.put(f"/v1.0/chatmessages/{message['id']}", {"text": "kept two days, edited"}))
    fanout.drain()
    room = room_of(bob, chat)
    assert (room["unread_count"], room["last_chatroommessage"]["text"]) == (1, "kept two days, edited")
    copy = next(c for c in chatroommessages_of(bob, room) if c["messagechat_id"] == message["id"])
    stamped = items_of(message["id"])
    assert len(stamped) == 4  # the message, its earlier version, two copies
    assert {int(item["expires_at"]["N"]) for item in stamped} == {epoch(message["tm_create"]) + 2 * DAY}

    clock.advance(2 * DAY - 60)
    assert ok(bob.get(f"/v1.0/chatmessages/{message['id']}"))["text"] == "kept two days, edited"
    assert len(chatroommessages_of(bob, room)) == 1
    clock.advance(120)  # past its retention: gone for every reader before DynamoDB deletes it
    assert_error(bob.get(f"/v1.0/chatmessages/{message['id']}"), 404)
    assert_error(bob.get(f"/v1.0/chatroommessages/{copy['id']}"), 404)
    assert_error(alice.get(f"/v1.0/chatmessages/{message['id']}/history"), 404)
    for change in (alice.put(f"/v1.0/chatmessages/{message['id']}", {"text": "too late"}),
                   bob.post(f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": "👍"}),
                   alice.delete(f"/v1.0/chatmessages/{message['id']}")):
        assert_error(change, 404)
    assert chatmessages_of(bob, chat) == []
    assert chatroommessages_of(bob, room) == []
    assert ok(bob.get(f"/v1.0/chats/{chat['id']}/transcript"))["result"] == []

    removed = apply_ttl(clock.epoch())
    assert len([key for key in removed if message["id"] in key[0] or "#chatroommessage#" in key[0]]) == 4
    fanout.drain()
    assert items_of(message["id"]) == []
    assert chatmessages_of(bob, chat) == []
    room = get_room(bob, room)  # its read state let the removed copy go
    assert (room["unread_count"], room["last_chatroommessage"]) == (0, None)


def test_a_ttl_removal_takes_what_carries_no_expiry_with_it(pair, fanout, clock):
    """Copies and history written before the message got its expiry (a settings
    change applied later) go with it: the stream handler follows its REMOVE."""
    alice, bob, chat = pair
    message = send_chatmessage(alice, chat, "old")
    ok(alice.put(f"/v1.0/chatmessages/{message['id']}", {"text": "old, edited"}))
    fanout.drain()
    assert len(items_of(message["id"])) == 4 and all("expires_at" not in i for i in items_of(message["id"]))
    DYNAMODB.update_item(TableName=TABLE, Key={"pk": {"S": f"{alice.customer_id}#chatmessage#{message['id']}"},
                                               "sk": {"S": "#"}},
                         UpdateExpression="SET expires_at = :t", ExpressionAttributeValues={":t": {"N": "1"}})
    fanout.drain()
    assert [key for key in apply_ttl(clock.epoch()) if "#send-window#" not in key[0]] == [
        (f"{alice.customer_id}#chatmessage#{message['id']}", "#")]  # the message only
    fanout.drain()
    assert items_of(message["id"]) == []


def test_a_deleted_messages_content_is_purged_after_the_grace(pair, customer, fanout, clock):
    alice, bob, chat = pair
    ok(customer.put(SETTINGS, {"purge_deleted_after_days": 3}))
    message = send_chatmessage(alice, chat, "regrettable")
    ok(alice.put(f"/v1.0/chatmessages/{message['id']}", {"text": "still regrettable"}))
    ok(bob.post(f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": "👍"}))
    deleted = ok(alice.delete(f"/v1.0/chatmessages/{message['id']}"))
    fanout.drain()
    purge_at = epoch(deleted["tm_delete"]) + 3 * DAY
    assert {int(item["expires_at"]["N"]) for item in items_of(message["id"])} == {purge_at}
    assert len(items_of(message["id"])) == 5  # the message, its earlier version, its reaction, its two copies

    clock.advance(3 * DAY - 60)
    assert ok(alice.get(f"/v1.0/chatmessages/{message['id']}"))["tm_delete"] == deleted["tm_delete"]
    clock.advance(120)
    assert_error(alice.get(f"/v1.0/chatmessages/{message['id']}"), 404)
    assert ok(bob.get(f"/v1.0/chats/{chat['id']}/transcript"))["result"] == []
    apply_ttl(clock.epoch())
    fanout.drain()
    assert items_of(message["id"]) == []


def test_retention_is_the_earlier_of_retention_and_purge(pair, customer, fanout):
    alice, _, chat = pair
    ok(customer.put(SETTINGS, {"retention_days": 1, "purge_deleted_after_days": 30}))
    message = send_chatmessage(alice, chat, "short-lived")
    ok(alice.delete(f"/v1.0/chatmessages/{message['id']}"))
    fanout.drain()
    assert {int(item["expires_at"]["N"]) for item in items_of(message["id"])} == {
        epoch(message["tm_create"]) + DAY}


def test_another_customers_retention_changes_nothing_here(pair, other_customer, fanout):
    alice, _, chat = pair
    ok(other_customer.put(SETTINGS, {"retention_days": 1}))
    message = send_chatmessage(alice, chat, "mine")
    fanout.drain()
    assert all("expires_at" not in item for item in items_of(message["id"]))


def expiries(message_ids):
    """message id -> the set of expires_at on its items (None where there is none)."""
    return {mid: {int(item["expires_at"]["N"]) if "expires_at" in item else None for item in items_of(mid)}
            for mid in message_ids}


def test_a_retention_change_restamps_older_messages_in_slices_without_a_scan(customer, make_agent, other_customer,
                                                                            fanout, monkeypatch):
    from chalicelib.services import lifecycle

    agents = [make_agent() for _ in range(3)]
    chats = [create_chat(customer, agents[0], agents[1]), create_chat(customer, *agents)]
    sent = [send_chatmessage(agents[n % 2], chats[n % 2], f"old {n}") for n in range(8)]
    ok(agents[0].put(f"/v1.0/chatmessages/{sent[0]['id']}", {"text": "old 0, edited"}))
    gone = sent[3]
    ok(agents[1].delete(f"/v1.0/chatmessages/{gone['id']}"))
    stranger = make_agent(customer=other_customer.customer_id)
    theirs = send_chatmessage(other_customer, create_chat(other_customer, stranger, make_agent(
        customer=other_customer.customer_id)), "theirs")
    fanout.drain()
    live = [m for m in sent if m is not gone]
    assert all(found == {None} for found in expiries([m["id"] for m in live]).values())
    purge = expiries([gone["id"]])[gone["id"]]

    monkeypatch.setattr(lifecycle, "PASS_WORK_MAX", 7)  # several slices, each started by the one before
    operations = []
    real_call = botocore.client.BaseClient._make_api_call

    def recording(client, name, params):
        settings_item = params.get("Key", {}).get("pk", {}).get("S", "").endswith("#settings")
        operations.append(f"{name} of the settings" if settings_item else name)
        return real_call(client, name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    ok(customer.put(SETTINGS, {"retention_days": 10}))
    fanout.drain()
    assert "Scan" not in operations
    # the PUT, then each slice's cursor (the next slice starts from its record), then the end
    assert operations.count("UpdateItem of the settings") >= 4
    assert expiries([m["id"] for m in live]) == {m["id"]: {epoch(m["tm_create"]) + 10 * DAY} for m in live}
    assert expiries([gone["id"]])[gone["id"]] == purge  # a deleted message keeps its purge
    assert expiries([theirs["id"]])[theirs["id"]] == {None}  # another customer's: untouched
    assert [i for i in table_items() if i["pk"]["S"] == f"{customer.customer_id}#settings"][0].get(
        "pass_cursor") is None

    ok(customer.put(SETTINGS, {"retention_days": 0}))  # back to forever
    fanout.drain()
    assert all(found == {None} for found in expiries([m["id"] for m in live]).values())


def test_what_the_stream_pays_for_a_delete_and_a_ttl_removal(pair, customer, fanout, clock, monkeypatch):
    """A delete's follow-up: the settings (cached), the copies as before, then one UpdateItem (filed for the
    transcript, its purge expiry), one Query of its partition and one BatchWriteItem for its history. A TTL
    removal: whether the customer's data is being erased (one GetItem, cached 10 s), one Query of its copies,
    one of its partition, one BatchWriteItem per 25 keys."""
    from chalicelib.services import erasure, lifecycle

    alice, bob, chat = pair
    ok(customer.put(SETTINGS, {"purge_deleted_after_days": 1}))
    message = send_chatmessage(alice, chat, "to go")
    ok(alice.put(f"/v1.0/chatmessages/{message['id']}", {"text": "to go, edited"}))
    fanout.drain()
    ok(alice.delete(f"/v1.0/chatmessages/{message['id']}"))
    calls = []
    real_call = botocore.client.BaseClient._make_api_call

    def recording(client, name, params):
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(name)
        return real_call(client, name, params)

    monkeypatch.setattr(lifecycle, "_cache", {})
    monkeypatch.setattr(erasure, "_running", {})
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    fanout.drain()
    # the settings (a cold cache), the fan-out's own deletion of the copies (their Query, their chatrooms, the
    # chat's previous message and each chatroom's newest other copy, one transaction), then lifecycle's part
    assert calls[0] == "GetItem" and calls[-3:] == ["UpdateItem", "Query", "BatchWriteItem"], calls
    assert Counter(calls) == Counter({"GetItem": 1, "Query": 5, "BatchGetItem": 1, "TransactWriteItems": 1,
                                      "UpdateItem": 1, "BatchWriteItem": 1}), calls

    clock.advance(DAY + 60)
    apply_ttl(clock.epoch())
    calls.clear()
    fanout.drain()
    assert Counter(calls) == Counter({"GetItem": 1, "Query": 2, "BatchGetItem": calls.count("BatchGetItem")}), calls
    assert items_of(message["id"]) == []


def test_a_transcript_of_the_largest_messages_stays_inside_lambdas_answer(pair):
    """At the real limits: messages of 10,000 emoji (the largest text, escaped twice the most) end a page
    at 4 MiB as Lambda answers (the test client checks every answer against Lambda's 6 MB)."""
    alice, _, chat = pair
    sent = [send_chatmessage(alice, chat, "\U0001f600" * 10_000) for _ in range(40)]  # 140 KB each, answered
    pages = transcript_pages(alice, chat)
    assert len(pages) >= 2
    assert [e["id"] for page in pages for e in page["result"]] == [m["id"] for m in sent]


def test_removing_a_message_deletes_its_partition_at_a_pace_one_partition_serves(pair, fanout, fake_clock,
                                                                                 monkeypatch):
    """A message's partition holds its reactions (up to 50 emoji a member): its
    removal deletes them at most ONE_PARTITION_ITEMS_PER_SECOND a second (a
    fake clock here), as DynamoDB serves one partition about 1,000 writes a second."""
    from chalicelib.services import lifecycle
    from chalicelib.storage import operations
    from chalicelib.storage.models import ChatmessageItem

    alice, _, chat = pair
    message = send_chatmessage(alice, chat, "much reacted to")
    fanout.drain()
    pk = f"{alice.customer_id}#chatmessage#{message['id']}"
    for start in range(0, 600, 25):
        DYNAMODB.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {
            "pk": {"S": pk}, "sk": {"S": f"reaction#{i:04}"}, "kind": {"S": "reaction"}, "id": {"S": f"{i:04}"},
            "customer_id": {"S": alice.customer_id}, "message_id": {"S": message["id"]}, "emoji": {"S": f":e{i}:"},
            "owner_type": {"S": "agent"}, "owner_id": {"S": alice.id}, "tm_create": {"S": message["tm_create"]}}}}
            for i in range(start, start + 25)]})
    fake_clock["now"] += 1.05  # those 600 writes were the partition's second; the deletes start a new one
    deleted = []  # (fake second, items of the partition deleted)
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        answer = original(client, operation_name, api_params)
        if operation_name == "BatchWriteItem":
            [requests] = api_params["RequestItems"].values()
            deleted.append((fake_clock["now"], sum(r["DeleteRequest"]["Key"]["pk"] == {"S": pk} for r in requests)))
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    lifecycle.on_chatmessage_removed(ChatmessageItem.get(pk, "#"))
    assert sum(count for _, count in deleted) == 600
    for start, _ in deleted:
        in_that_second = sum(count for when, count in deleted if start <= when < start + 1.0)
        assert in_that_second <= operations.ONE_PARTITION_ITEMS_PER_SECOND, (start, in_that_second)

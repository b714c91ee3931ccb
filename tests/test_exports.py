"""Exports of a customer's data (README.md, "Data lifecycle"): POST /exports
starts a job the stream function runs in slices; GET /exports/{id} shows its
progress and, once done, a presigned download of a gzipped JSON-lines archive.
The round trip reads the archive back and compares every line with the API's
own answer for that resource."""

import gzip
import json
import random
import uuid

import pytest

from chalicelib.services import exports
from chalicelib.storage import objects
from devtools import aws_limits
from tests.conftest import BUCKET, DYNAMODB, TABLE, Caller
from tests.helpers import accepted, assert_error, create_chat, ok, room_of, send_chatmessage
from tests.test_files import file_media, uploaded_file

EXPORTS = "/v1.0/exports"


def export_of(caller, fanout) -> dict:
    started = caller.post(EXPORTS)
    assert started.status_code == 202, started.body
    assert started.json_body["status"] == "running"
    fanout.drain()
    return ok(caller.get(f"{EXPORTS}/{started.json_body['id']}"))


def archive_lines(s3, customer_id: str, job: dict) -> list[dict]:
    assert job["status"] == "done", job
    assert f"/{customer_id}/{job['id']}" in job["download_url"]
    data = s3.get_object(Bucket=BUCKET, Key=f"{customer_id}/{job['id']}")["Body"].read()
    assert len(data) == job["size"]
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]


def test_an_export_round_trip_matches_the_apis_own_answers(customer, make_agent, fanout, bucket):
    alice, bob = make_agent(name="alice"), make_agent(name="bob")
    chat = create_chat(customer, alice, bob)
    group = create_chat(customer, alice, bob, make_agent(name="carol"), chat_type="group", name="team")
    file = uploaded_file(alice)
    first = send_chatmessage(alice, chat, "hello bob", medias=[file_media(file)])
    edited = send_chatmessage(bob, chat, "hi alcie")
    ok(bob.put(f"/v1.0/chatmessages/{edited['id']}", {"text": "hi alice"}))
    ok(alice.post(f"/v1.0/chatmessages/{edited['id']}/reactions", {"emoji": "👍"}))
    gone = send_chatmessage(alice, group, "wrong chat")
    ok(alice.delete(f"/v1.0/chatmessages/{gone['id']}"))
    ok(customer.delete(f"/v1.0/chats/{group['id']}"))
    fanout.drain()

    job = export_of(customer, fanout)
    lines = archive_lines(bucket, customer.customer_id, job)
    assert lines[0] == {"type": "export", "data": {"id": job["id"], "customer_id": customer.customer_id,
                                                   "tm_create": job["tm_create"], "format": 1}}
    by_type: dict[str, dict] = {}
    for line in lines[1:]:
        by_type.setdefault(line["type"], {})[line["data"]["id"]] = line
    assert job["progress"] == {kind: len(by_type.get(kind, {})) for kind in ("chat", "chatroom", "chatmessage",
                                                                            "file")}
    assert set(by_type["chat"]) == {chat["id"], group["id"]}
    for chat_id, line in by_type["chat"].items():
        assert line["data"] == ok(customer.get(f"/v1.0/chats/{chat_id}"))
    rooms = {room_of(agent, chat)["id"] for agent in (alice, bob)}
    assert rooms < set(by_type["chatroom"]) and len(by_type["chatroom"]) == 5  # 2 + 3 (the group's, deleted)
    for room_id, line in by_type["chatroom"].items():
        assert line["data"] == ok(customer.get(f"/v1.0/chatrooms/{room_id}"))
    assert set(by_type["chatmessage"]) == {first["id"], edited["id"], gone["id"]}
    for message_id, line in by_type["chatmessage"].items():
        assert line["data"] == ok(customer.get(f"/v1.0/chatmessages/{message_id}"))
        assert line["history"] == ok(customer.get(f"/v1.0/chatmessages/{message_id}/history"))["result"]
        assert line["reactions"] == ok(customer.get(f"/v1.0/chatmessages/{message_id}/reactions"))["result"]
    assert [v["text"] for v in by_type["chatmessage"][edited["id"]]["history"]] == ["hi alcie"]
    assert [r["emoji"] for r in by_type["chatmessage"][edited["id"]]["reactions"]] == ["👍"]
    assert by_type["chatmessage"][gone["id"]]["data"]["tm_delete"] != "9999-01-01 00:00:00.000000"
    shown = ok(customer.get(f"/v1.0/files/{file['id']}"))
    assert by_type["file"][file["id"]]["data"] == {**shown, "download_url": None}


def test_an_export_holds_only_its_customers_data(customer, other_customer, make_agent, fanout, bucket):
    alice, bob = make_agent(), make_agent()
    send_chatmessage(alice, create_chat(customer, alice, bob), "ours")
    one, two = (Caller(other_customer.client, other_customer.customer_id, str(uuid.uuid4())) for _ in range(2))
    theirs = create_chat(other_customer, one, two)
    send_chatmessage(one, theirs, "theirs")
    fanout.drain()
    job = export_of(customer, fanout)
    text = json.dumps(archive_lines(bucket, customer.customer_id, job))
    assert other_customer.customer_id not in text and theirs["id"] not in text and "theirs" not in text


def test_a_large_export_is_written_in_parts_and_slices(customer, make_agent, fanout, bucket, monkeypatch):
    """Past 5 MiB the archive takes more than one part (S3 refuses a smaller
    one that is not the last: moto too); slices of 50 items here."""
    monkeypatch.setattr(exports, "SLICE_ITEMS", 50)
    alice, bob = make_agent(), make_agent()
    chat = create_chat(customer, alice, bob)
    message = send_chatmessage(alice, chat, "a template")
    fanout.drain()
    template = DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": f"{customer.customer_id}#chatmessage#"
                                                                 f"{message['id']}"}, "sk": {"S": "#"}})["Item"]
    rng = random.Random(7)
    texts = {}
    # 400 deleted messages (the stream copies none) of 10,000 random CJK ideographs: 7 MB gzipped
    ideographs = [chr(code) for code in range(0x4E00, 0xA000)]
    for start in range(0, 400, 25):
        batch = []
        for number in range(start, start + 25):
            mid = f"00000000-0000-4000-8000-{number:012}"
            texts[mid] = "".join(rng.choices(ideographs, k=10_000))
            batch.append({"PutRequest": {"Item": {**template, "pk": {"S": f"{customer.customer_id}#chatmessage#{mid}"},
                                                  "id": {"S": mid}, "text": {"S": texts[mid]},
                                                  "tm_delete": {"S": "2026-01-01 00:00:00.000000"},
                                                  "gsi1sk": {"S": f"2026-01-01~{mid}"},
                                                  "gsi2sk": {"S": f"{customer.customer_id}#chatmessage#{mid}"}}}})
        DYNAMODB.batch_write_item(RequestItems={TABLE: batch})
    job = export_of(customer, fanout)
    lines = archive_lines(bucket, customer.customer_id, job)
    found = {line["data"]["id"]: line["data"]["text"] for line in lines if line["type"] == "chatmessage"}
    assert {mid: found.get(mid) for mid in texts} == texts
    parts = bucket.head_object(Bucket=BUCKET, Key=f"{customer.customer_id}/{job['id']}", PartNumber=1)
    assert parts["PartsCount"] >= 2
    assert job["size"] > objects.PART_MIN


def test_parts_grow_so_that_s3s_10000_hold_over_250_gib():
    sizes = [objects.part_size(written) for written in range(objects.PARTS_MAX)]
    assert sizes[0] == objects.PART_MIN == 5 * 1024 ** 2  # S3's least part but the last
    assert sizes == sorted(sizes) and sizes[-1] <= 50 * 1024 ** 2  # a slice holds one part in memory
    assert sum(sizes) > 250 * 1024 ** 3


def test_an_export_that_would_pass_s3s_parts_fails_and_says_why(customer, make_agent, fanout, bucket, monkeypatch):
    """Parts of a byte and uploads of at most 2 parts stand in for S3's 10,000 (moto checks a part's
    size only when the upload is completed, which this one never is)."""
    monkeypatch.setattr(exports, "SLICE_ITEMS", 1)
    monkeypatch.setattr(objects, "part_size", lambda written: 1)
    monkeypatch.setattr(objects, "PARTS_MAX", 2)
    alice = make_agent()
    for _ in range(3):  # 3 chats and 3 messages: 6 partitions with lines, so 6 slices of one at least
        send_chatmessage(alice, create_chat(customer, alice, make_agent()), "hello")
    fanout.drain()
    started = accepted(customer.post(EXPORTS))
    fanout.drain()
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert (shown["status"], shown["download_url"]) == ("failed", None)
    assert shown["error"].startswith("the archive reached S3's 2 parts of one upload at ")
    [upload] = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    parts = bucket.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
    assert [part["PartNumber"] for part in parts] == [1, 2]


@pytest.mark.parametrize("permission, status", [(32, 202), (64, 403), (16, 403), (0, 403)])
def test_exports_are_for_customer_tokens_and_admins(make_agent, bucket, permission, status):
    agent = make_agent(permission=permission)
    assert agent.post(EXPORTS).status_code == status


def test_another_customers_export_is_not_found(customer, other_customer, fanout, bucket):
    started = accepted(customer.post(EXPORTS))
    assert_error(other_customer.get(f"{EXPORTS}/{started['id']}"), 404)
    assert_error(customer.get(f"{EXPORTS}/not-an-id"), 400)


def test_an_export_in_progress_shows_no_download(customer, bucket):
    started = accepted(customer.post(EXPORTS))  # the stream has not run it
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert (shown["status"], shown["download_url"], shown["tm_done"]) == ("running", None, "")


def test_an_export_whose_upload_is_gone_fails_and_says_why(customer, make_agent, fanout, bucket):
    alice, bob = make_agent(), make_agent()
    send_chatmessage(alice, create_chat(customer, alice, bob), "hello")
    started = accepted(customer.post(EXPORTS))
    [upload] = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    bucket.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    fanout.drain()
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert (shown["status"], shown["download_url"]) == ("failed", None)
    assert "start another export" in shown["error"]


def test_left_and_deleted_chatrooms_are_exported_and_live_ones_carry_no_registry_keys(customer, make_agent,
                                                                                        fanout, bucket):
    """A live chatroom is found by its chat's member item: the registry's keys would take the item, which
    every message rewrites, past 1 KB (twice the write units). A left or deleted one is registered then."""
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    group = create_chat(customer, alice, bob, carol, chat_type="group", name="team")
    send_chatmessage(alice, group, "hello team")
    rooms = {agent.id: room_of(agent, group)["id"] for agent in (alice, bob, carol)}
    ok(customer.delete(f"/v1.0/chats/{group['id']}/participant_ids/{carol.id}"))  # carol's is left
    ok(bob.delete(f"/v1.0/chatrooms/{rooms[bob.id]}"))  # bob deletes his
    fanout.drain()
    item = DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": f"{customer.customer_id}#chatroom#{rooms[alice.id]}"},
                                                   "sk": {"S": "#"}})["Item"]
    assert "gsi2pk" not in item and aws_limits.item_size(item) < 1024

    job = export_of(customer, fanout)
    shown = {line["data"]["id"]: line["data"] for line in archive_lines(bucket, customer.customer_id, job)
             if line["type"] == "chatroom"}
    assert set(shown) == set(rooms.values())
    for room_id in rooms.values():
        assert shown[room_id] == ok(customer.get(f"/v1.0/chatrooms/{room_id}"))
    assert shown[rooms[alice.id]]["tm_delete"] == "9999-01-01 00:00:00.000000"
    assert "9999" not in shown[rooms[bob.id]]["tm_delete"] and "9999" not in shown[rooms[carol.id]]["tm_delete"]


def test_a_last_slice_retried_after_its_archive_was_completed_ends_done(customer, make_agent, fanout, bucket,
                                                                        monkeypatch):
    """The last slice completes the upload, then its save fails: Lambda's retry finds the upload gone
    and the archive there, and the export is done, not failed."""
    from chalicelib.storage import operations

    alice, bob = make_agent(), make_agent()
    send_chatmessage(alice, create_chat(customer, alice, bob), "hello")
    fanout.drain()
    started = accepted(customer.post(EXPORTS))
    real_update, failed = operations.update, []

    def save_fails_once(item, actions, condition, what):
        if what.startswith("saving export") and not failed:
            failed.append(what)
            raise operations.Unavailable(f"{what}: the database is busy")
        return real_update(item, actions, condition, what)

    monkeypatch.setattr(exports, "update", save_fails_once)
    event = fanout.read_event()
    assert fanout.invoke(event)["batchItemFailures"]  # the save failed: the record is handed again
    assert fanout.invoke(event) == {"batchItemFailures": []}
    fanout.drain()
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert failed and (shown["status"], shown["error"]) == ("done", "")
    assert archive_lines(bucket, customer.customer_id, shown)[0]["type"] == "export"

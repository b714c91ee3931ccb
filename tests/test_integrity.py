"""Findings of issue 22 on who may change what, through the HTTP layer and the
real stream records: edits need the sender still in the live chat, a replayed
record of an admin's post into another agent's chatroom counts once, mark-read
to a copy the list index has not caught up with moves the marker, and a file's
upload form changes nothing once the file is sent (nor does a refused send, or
a media that carries another type's payload, give anyone a file)."""

import threading
from urllib.parse import unquote, urlsplit

import pytest
import requests

from chalicelib.storage import objects
from chalicelib.storage.models import ChatroommessageItem
from tests.conftest import BUCKET
from tests.helpers import (
    assert_error,
    copies,
    insert_of,
    ok,
    room_of,
    send_chatmessage,
    send_chatroommessage,
)
from tests.test_files import PNG, file_media, new_file, upload, uploaded_file


@pytest.fixture
def trio(trio, bucket):
    """conftest's trio, with the files' bucket."""
    return trio


# ---- 1. edits need the sender in the live chat ------------------------------------------------

def test_a_sender_removed_from_the_chat_can_no_longer_edit_nor_attach_a_file_that_way(trio, customer, fanout):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "before")
    file = uploaded_file(b)
    ok(customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{b.id}"))
    fanout.drain()
    response = b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "after", "medias": [file_media(file)]})
    assert_error(response, 403)
    assert "participant" in response.json_body["Message"]
    assert ok(a.get(f"/v1.0/chatmessages/{sent['id']}"))["text"] == "before"
    assert ok(a.get(f"/v1.0/chatmessages/{sent['id']}/history"))["result"] == []
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)  # the members got no access to it


def test_in_a_deleted_chat_an_edit_is_404_and_changes_nothing(trio, customer, fanout):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "before")
    file = uploaded_file(b)
    ok(customer.delete(f"/v1.0/chats/{chat['id']}"))
    fanout.drain()
    assert_error(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "after", "medias": [file_media(file)]}), 404)
    assert ok(customer.get(f"/v1.0/chatmessages/{sent['id']}"))["text"] == "before"
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)


def test_a_sender_still_in_the_chat_edits_with_a_file_and_the_members_read_it(trio, fanout):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "before")
    file = uploaded_file(b)
    edited = ok(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "after", "medias": [file_media(file)]}))
    assert edited["text"] == "after" and edited["medias"] == [file_media(file)]
    assert ok(a.get(f"/v1.0/files/{file['id']}"))["status"] == "uploaded"


def test_an_admin_edits_what_they_sent_to_a_chat_they_are_not_in_while_it_is_live(trio, admin, customer, fanout):
    """As for a send: admins and managers may send to any chat, so they need not be in it to edit."""
    sent = send_chatmessage(admin, trio[3], "from the admin")
    assert ok(admin.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "edited"}))["text"] == "edited"
    ok(customer.delete(f"/v1.0/chats/{trio[3]['id']}"))
    assert_error(admin.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "again"}), 404)


# ---- 2. an admin's post into another agent's chatroom, replayed ----------------------------

def test_an_admins_post_into_another_agents_chatroom_counts_once_however_often_replayed(trio, admin, fanout):
    a, b, c, chat = trio
    copy = send_chatroommessage(admin, room_of(a, chat), "from the admin")
    record = insert_of(fanout.read_event(), copy["messagechat_id"])
    for _ in range(3):
        assert fanout.invoke({"Records": [record]}) == {"batchItemFailures": []}
    fanout.drain()
    for agent in (a, b, c):
        assert room_of(agent, chat)["unread_count"] == 1, agent
    assert [shown["id"] for shown in copies(a, chat)] == [copy["id"]]


# ---- 3. mark-read to a copy the list index has not caught up with ------------------------

def test_mark_read_to_a_copy_the_index_has_not_caught_up_with_moves_the_marker(trio, fanout, monkeypatch):
    """Index lag simulated by hiding the copy from every list-index Query of its chatroom
    (as DynamoDB's eventually consistent index does for a moment): the table has it."""
    a, b, _, chat = trio
    for text in ("1", "2", "3"):
        send_chatmessage(b, chat, text)
    fanout.drain()
    listed = copies(a, chat)  # newest first: 3, 2, 1
    middle = next(copy for copy in listed if copy["text"] == "2")
    index_query = ChatroommessageItem.list_index.query

    def lagging(*args, **kwargs):
        return [copy for copy in index_query(*args, **kwargs) if copy.id != middle["id"]]

    monkeypatch.setattr(ChatroommessageItem.list_index, "query", lagging)
    read = ok(a.post(f"/v1.0/chatrooms/{room_of(a, chat)['id']}/read", {"chatroommessage_id": middle["id"]}))
    assert read["tm_read"] == middle["tm_create"]
    assert read["unread_count"] == 1  # "3"
    monkeypatch.undo()
    assert room_of(a, chat)["tm_read"] == middle["tm_create"]


# ---- 4. files ------------------------------------------------------------------------------

def download(caller, file):
    got = ok(caller.get(f"/v1.0/files/{file['id']}"))
    response = requests.get(got["download_url"], timeout=10)
    assert response.status_code == 200, response.status_code
    return response.content, unquote(urlsplit(got["download_url"]).path).lstrip("/")


def tags_of(key):
    return {tag["Key"]: tag["Value"] for tag in objects.client().get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}


def test_after_the_first_send_the_upload_form_changes_nothing_that_is_downloaded(trio):
    a, b, _, chat = trio
    file = uploaded_file(b)
    send_chatmessage(b, chat, "see", medias=[file_media(file)])
    swapped = bytes(reversed(PNG))
    upload(file, swapped)  # the form again: the same size and type, another content, tagged pending
    content, key = download(a, file)
    assert content == PNG
    assert tags_of(key) == {objects.UPLOAD_TAG: objects.ATTACHED}  # never expired by the lifecycle rule
    send_chatmessage(b, chat, "again", medias=[file_media(file)])  # a later send changes nothing either
    assert download(a, file) == (PNG, key)


def test_a_link_media_carrying_a_file_id_is_400_naming_the_media(trio):
    a, b, _, chat = trio
    file = uploaded_file(b)
    link = {"type": "link", "link_url": "https://example.com/", "file_id": file["id"]}
    response = b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "type": "normal", "text": "t",
                                             "medias": [{"type": "link", "link_url": "https://example.com/"}, link]})
    assert_error(response, 400)
    assert response.json_body["Message"].startswith("medias[1]"), response.json_body
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)


def test_a_send_refused_after_its_files_were_checked_gives_no_one_the_file(trio):
    a, b, _, chat = trio
    ok(b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "type": "normal", "text": "first"},
              headers={"Idempotency-Key": "k-1"}))
    file = uploaded_file(b)
    refused = b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "type": "normal", "text": "other",
                                            "medias": [file_media(file)]}, headers={"Idempotency-Key": "k-1"})
    assert_error(refused, 409)
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)
    assert ok(b.get(f"/v1.0/files/{file['id']}"))["status"] == "pending"
    # the upload is still there: a send that is not refused sends it
    send_chatmessage(b, chat, "now", medias=[file_media(file)])
    assert download(a, file)[0] == PNG


def test_a_refused_chatroommessage_gives_no_one_the_file(trio):
    a, b, _, chat = trio
    room = room_of(b, chat)
    ok(b.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "first"},
              headers={"Idempotency-Key": "k-2"}))
    file = new_file(b)
    upload(file)
    refused = b.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "other",
                                                "medias": [file_media(file)]}, headers={"Idempotency-Key": "k-2"})
    assert_error(refused, 409)
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)


def test_two_first_sends_of_one_file_at_once_leave_one_copy_and_no_upload(trio, monkeypatch):
    """Both sends read the file pending and copy its upload (held at a barrier after their copy):
    one is written, the other refused (409, retry); its copy is removed, and the upload once sent."""
    a, b, _, chat = trio
    file = uploaded_file(b)
    statuses = []
    both_copied = threading.Barrier(2, timeout=10)
    head = objects.head

    def head_once_both_copied(key):
        both_copied.wait()
        return head(key)

    monkeypatch.setattr(objects, "head", head_once_both_copied)

    def send(text):
        statuses.append(b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "type": "normal", "text": text,
                                                      "medias": [file_media(file)]}).status_code)

    threads = [threading.Thread(target=send, args=(text,)) for text in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409], statuses
    content, key = download(a, file)
    assert content == PNG
    listed = [item["Key"] for item in objects.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert listed == [key], "the loser's copy is removed, and the upload once sent"

"""Files through the HTTP layer, with moto's S3 in process: the round trip (presign, upload
with the returned fields, send, download through the URL, delete), what S3's POST policy
refuses, the check at the first send, who may read and delete, tenant isolation, S3 faults
and the requests each operation costs."""

import base64
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
import requests
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from chalicelib.clock import NOT_DELETED
from chalicelib.services import files as file_service
from chalicelib.storage import objects, operations
from tests.conftest import BUCKET, REGION, TABLE, Caller
from tests.helpers import assert_error, create_chat, ok, room_of, send_chatmessage, send_chatroommessage
from tests.schema_check import seed_fields

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
FILE_FIELDS = seed_fields("file")
MIB_30 = 30 * 1024 * 1024


# ---- helpers --------------------------------------------------------------------------------

def new_file(caller, name="shot.png", content_type="image/png", size=None):
    body = {"name": name, "content_type": content_type, "size": len(PNG) if size is None else size}
    return ok(caller.post("/v1.0/files", body))


def upload(file, content=PNG, **field_overrides):
    """POST the file to its upload url as a browser would (moto does not enforce the policy)."""
    fields = {**file["upload"]["fields"], **field_overrides}
    response = requests.post(file["upload"]["url"], data=fields, files={"file": ("upload", content)}, timeout=10)
    assert response.status_code == 204, (response.status_code, response.text)


def uploaded_file(caller, content=PNG, **kwargs):
    file = new_file(caller, size=len(content), **kwargs)
    upload(file, content)
    return file


def file_media(file):
    return {"type": "file", "file_id": file["id"]}


def download_key(file):
    """The key of the object the file's downloads get: its sent copy once sent, else its upload."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName=TABLE, ConsistentRead=True, Key={
        "pk": {"S": f"{file['customer_id']}#file#{file['id']}"}, "sk": {"S": "#"}}).get("Item", {})
    return item.get("sent_key", {}).get("S") or f"{file['customer_id']}/{file['id']}"


def stored_object(file):
    """(bytes, content type, tags) of the object the file's downloads get, or None."""
    s3 = objects.client()
    key = download_key(file)
    try:
        got = s3.get_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return None
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}
    return got["Body"].read(), got["ContentType"], tags


def policy_of(file) -> dict:
    return json.loads(base64.b64decode(file["upload"]["fields"]["policy"]))


def s3_accepts(file, content, now=None, **field_overrides) -> bool:
    """What S3 does with a browser POST of `content` (the form: the upload's fields with the
    overrides): it checks the signed policy (docs: "Creating a POST policy"). The policy's
    expiration has passed; a condition fails; or the form holds a field no condition names:
    refused."""
    policy = policy_of(file)
    form = {name.lower(): value for name, value in {**file["upload"]["fields"], **field_overrides}.items()}
    form["bucket"] = urlsplit(file["upload"]["url"]).hostname.split(".s3.")[0]
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) >= expiration:
        return False
    named = {"policy", "x-amz-signature", "file", "bucket"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            [(name, value)] = condition.items()
            condition = ["eq", f"${name}", value]
        operator, *arguments = condition
        if operator == "content-length-range":
            low, high = arguments
            if not low <= len(content) <= high:
                return False
            continue
        name, value = arguments[0].lstrip("$").lower(), arguments[1]
        named.add(name)
        if operator == "eq" and form.get(name) != value:
            return False
        if operator == "starts-with" and not str(form.get(name, "")).startswith(value):
            return False
    return set(form) <= named


def file_items():
    """The file records in the table, by id."""
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {item["id"]["S"]: item for item in items if item.get("kind", {}).get("S") == "file"}


def chats_of(file):
    """The chats the table records `file` as sent in."""
    pk = f"{file['customer_id']}#file#{file['id']}"
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName=TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :chat)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":chat": {"S": "chat#"}})["Items"]
    return [item["chat_id"]["S"] for item in items]


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def team(client, bucket, customer, make_agent, fanout):
    """Alice and Bob in a chat, Carol in none of Alice's; an admin; the bucket."""
    alice, bob, carol = make_agent(name="alice"), make_agent(name="bob"), make_agent(name="carol")
    chat = create_chat(customer, alice, bob)
    return SimpleNamespace(customer=customer, alice=alice, bob=bob, carol=carol, chat=chat, s3=bucket,
                           room=room_of(alice, chat), admin=make_agent(permission=32, name="admin"),
                           manager=make_agent(permission=64, name="manager"), fanout=fanout, make_agent=make_agent)


# ---- the round trip -------------------------------------------------------------------------

def test_round_trip_presign_upload_send_download_delete(team):
    file = new_file(team.alice, name="Screen shot.png")
    assert file["status"] == "pending" and file["download_url"] is None
    upload(file)

    copy = send_chatroommessage(team.alice, team.room, text="see this", medias=[file_media(file)])
    assert copy["medias"] == [file_media(file)]
    team.fanout.drain()
    bobs_room = room_of(team.bob, team.chat)
    [bobs_copy] = ok(team.bob.get(f"/v1.0/chatroommessages?chatroom_id={bobs_room['id']}"))["result"]
    assert bobs_copy["medias"] == [file_media(file)]

    got = ok(team.bob.get(f"/v1.0/files/{file['id']}"))
    assert got["status"] == "uploaded" and got["upload"] is None
    download = requests.get(got["download_url"], timeout=10)
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="Screen shot.png"')
    assert stored_object(file)[2] == {objects.UPLOAD_TAG: objects.ATTACHED}  # out of the lifecycle rule's reach

    deleted = ok(team.alice.delete(f"/v1.0/files/{file['id']}"))
    assert deleted["status"] == "deleted" and deleted["tm_delete"] != NOT_DELETED
    assert stored_object(file) is None
    again = ok(team.bob.get(f"/v1.0/files/{file['id']}"))
    assert again["status"] == "deleted" and again["download_url"] is None
    message = ok(team.bob.get(f"/v1.0/chatmessages/{copy['messagechat_id']}"))
    assert message["medias"] == [file_media(file)], "messages keep the media"


def test_create_answers_the_pending_record_and_an_upload_bound_to_its_key_size_and_type(team):
    file = new_file(team.alice, content_type="Application/PDF", size=MIB_30)
    assert list(file) == FILE_FIELDS
    assert file["customer_id"] == team.customer.customer_id and file["owner_id"] == team.alice.id
    assert file["owner_type"] == "agent" and file["content_type"] == "application/pdf"
    assert file["size"] == MIB_30 and file["status"] == "pending" and file["tm_delete"] == NOT_DELETED
    fields = file["upload"]["fields"]
    assert fields["key"] == f"{team.customer.customer_id}/{file['id']}"
    assert fields["Content-Type"] == "application/pdf"
    conditions = policy_of(file)["conditions"]
    assert ["content-length-range", MIB_30, MIB_30] in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert {"key": fields["key"]} in conditions and {"bucket": BUCKET} in conditions
    expiration = datetime.strptime(policy_of(file)["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 14 * 60 < (expiration - datetime.now(UTC)).total_seconds() <= 15 * 60


def test_a_customer_token_uploads_as_the_customer(team):
    file = new_file(team.customer)
    assert file["owner_type"] == "customer" and file["owner_id"] == team.customer.customer_id


# ---- what S3 refuses through the policy ------------------------------------------------------

def test_the_policy_refuses_another_size_type_key_or_a_late_upload(team):
    file = new_file(team.alice, size=len(PNG))
    assert s3_accepts(file, PNG)
    assert not s3_accepts(file, PNG + b"x"), "one byte over"
    assert not s3_accepts(file, PNG[:-1]), "one byte under"
    assert not s3_accepts(file, PNG, **{"Content-Type": "text/html"})
    assert not s3_accepts(file, PNG, key=f"{team.customer.customer_id}/{team.customer.customer_id}")
    assert not s3_accepts(file, PNG, key=f"{team.carol.customer_id}/../other")
    assert not s3_accepts(file, PNG, tagging="<Tagging><TagSet></TagSet></Tagging>"), "out of the lifecycle rule"
    assert not s3_accepts(file, PNG, acl="public-read"), "a field the policy does not name"
    assert not s3_accepts(file, PNG, now=datetime.now(UTC) + timedelta(minutes=15, seconds=1))


def test_a_file_over_30_mib_is_refused_before_any_url_is_signed(team):
    response = team.alice.post("/v1.0/files", {"name": "big.mov", "content_type": "video/quicktime",
                                               "size": MIB_30 + 1})
    assert_error(response, 400)
    assert "size" in response.json_body["Message"] and "31457280" in response.json_body["Message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"size": 0}, "size"), ({"size": -1}, "size"), ({"size": "5"}, "size"), ({"size": True}, "size"),
    ({"size": 1.5}, "size"), ({"content_type": "image"}, "content_type"),
    ({"content_type": "text/plain; charset=utf-8"}, "content_type"), ({"content_type": "a/b/c"}, "content_type"),
    ({"content_type": ""}, "content_type"), ({"content_type": "image/png\n"}, "content_type"),
    ({"content_type": "ima ge/png"}, "content_type"), ({"name": ""}, "name"), ({"name": "x" * 256}, "name"),
    ({"name": "a\u0000b"}, "name"), ({"name": "line\nbreak"}, "name"), ({"owner_id": "x"}, "owner_id"),
])
def test_bad_file_bodies_are_400_naming_the_field(team, body, field):
    full = {"name": "a.png", "content_type": "image/png", "size": 5, **body}
    response = team.alice.post("/v1.0/files", full)
    assert_error(response, 400)
    assert response.json_body["Message"].startswith(field), response.json_body


def test_a_body_without_size_is_400_naming_it(team):
    response = team.alice.post("/v1.0/files", {"name": "a.png", "content_type": "image/png"})
    assert_error(response, 400)
    assert "size" in response.json_body["Message"]


# ---- the check at the first send -------------------------------------------------------------

def test_an_upload_of_another_size_is_refused_at_send_and_removed(team):
    file = new_file(team.alice, size=len(PNG))
    upload(file, PNG + b"more")  # moto takes it; S3 would not (test above)
    response = team.alice.post("/v1.0/chatroommessages", {"chatroom_id": team.room["id"], "medias": [
        {"type": "link", "link_url": "https://example.com"}, file_media(file)]})
    assert_error(response, 400)
    message = response.json_body["Message"]
    assert message.startswith("medias[1].file_id:") and "removed" in message, message
    assert stored_object(file) is None
    assert ok(team.alice.get(f"/v1.0/files/{file['id']}"))["status"] == "pending"
    assert ok(team.alice.get(f"/v1.0/chatroommessages?chatroom_id={team.room['id']}"))["result"] == []
    upload(file, PNG)  # again, right this time, while its upload url is valid
    send_chatroommessage(team.alice, team.room, medias=[file_media(file)])


def test_an_upload_of_another_type_is_refused_at_send_and_removed(team):
    file = new_file(team.alice)
    upload(file, PNG, **{"Content-Type": "text/html"})
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 400)
    assert "text/html" in response.json_body["Message"] and "image/png" in response.json_body["Message"]
    assert stored_object(file) is None


def test_a_file_not_uploaded_yet_is_400(team):
    file = new_file(team.alice)
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 400)
    assert response.json_body["Message"].startswith("medias[0].file_id:")
    assert "not uploaded" in response.json_body["Message"]


@pytest.mark.parametrize("sender", ["alice", "admin", "customer"])
def test_an_unknown_file_is_400(team, sender):
    caller = getattr(team, sender)
    response = caller.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "text": "x",
                                                  "medias": [{"type": "file", "file_id": str(uuid.uuid4())}]})
    assert_error(response, 400)
    assert response.json_body["Message"].startswith("medias[0].file_id: no file")


def test_a_deleted_file_is_400(team):
    file = uploaded_file(team.alice)
    ok(team.alice.delete(f"/v1.0/files/{file['id']}"))
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 400)
    assert "deleted" in response.json_body["Message"]


def test_an_upload_never_sent_within_23_hours_is_refused_and_hidden(team, monkeypatch):
    file = uploaded_file(team.alice)
    later = time.time() + file_service.ATTACH_WITHIN_SECONDS + 60
    monkeypatch.setattr(file_service.time, "time", lambda: later)
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 400)
    assert "23 hours" in response.json_body["Message"]
    assert_error(team.alice.get(f"/v1.0/files/{file['id']}"), 404)


def test_a_pending_record_expires_with_its_upload_and_a_sent_one_does_not(team):
    pending = new_file(team.alice)
    sent = uploaded_file(team.alice)
    send_chatmessage(team.alice, team.chat, medias=[file_media(sent)])
    table = file_items()
    assert abs(int(table[pending["id"]]["expires_at"]["N"]) - (time.time() + file_service.RECORD_TTL_SECONDS)) < 60
    assert "expires_at" not in table[sent["id"]]


def test_the_same_file_twice_in_a_message_and_in_two_chats_is_recorded_once_per_chat(team):
    file = uploaded_file(team.alice)
    other_chat = create_chat(team.customer, team.alice, team.carol)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file), file_media(file)])
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    send_chatmessage(team.alice, other_chat, medias=[file_media(file)])
    links = chats_of(file)
    assert sorted(links) == sorted([team.chat["id"], other_chat["id"]])


# ---- who may read, send and delete a file ----------------------------------------------------

@pytest.mark.parametrize("reader", ["alice", "admin", "manager", "customer"])
def test_the_uploader_and_privileged_callers_read_a_file_not_sent_yet(team, reader):
    file = new_file(team.alice)
    got = ok(getattr(team, reader).get(f"/v1.0/files/{file['id']}"))
    assert got["status"] == "pending" and got["download_url"] is None and got["upload"] is None


@pytest.mark.parametrize("reader", ["bob", "carol"])
def test_other_agents_get_404_until_it_is_sent_in_a_chat_of_theirs(team, reader):
    file = uploaded_file(team.alice)
    assert_error(getattr(team, reader).get(f"/v1.0/files/{file['id']}"), 404)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    response = getattr(team, reader).get(f"/v1.0/files/{file['id']}")
    if reader == "bob":  # in the chat
        assert ok(response)["download_url"].startswith("https://")
    else:
        assert_error(response, 404)


def test_an_agent_who_leaves_the_chat_loses_the_file(team):
    group = create_chat(team.customer, team.alice, team.bob, team.carol)
    file = uploaded_file(team.alice)
    send_chatmessage(team.alice, group, medias=[file_media(file)])
    ok(team.carol.get(f"/v1.0/files/{file['id']}"))
    ok(team.customer.delete(f"/v1.0/chats/{group['id']}/participant_ids/{team.carol.id}"))
    assert_error(team.carol.get(f"/v1.0/files/{file['id']}"), 404)


def test_a_reader_may_forward_a_file_and_others_may_not_name_it(team):
    file = uploaded_file(team.alice)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    bob_and_carol = create_chat(team.customer, team.bob, team.carol)
    send_chatmessage(team.bob, bob_and_carol, medias=[file_media(file)])  # Bob may read it: he may forward it
    ok(team.carol.get(f"/v1.0/files/{file['id']}"))

    private = uploaded_file(team.alice)
    response = team.carol.post("/v1.0/chatmessages", {"chat_id": bob_and_carol["id"], "medias": [file_media(private)]})
    assert_error(response, 400)
    assert "no file" in response.json_body["Message"], "the same answer as for a file that does not exist"
    assert chats_of(private) == []


@pytest.mark.parametrize("deleter", ["alice", "admin", "manager", "customer"])
def test_the_uploader_and_privileged_callers_delete_a_file(team, deleter):
    file = uploaded_file(team.alice)
    deleted = ok(getattr(team, deleter).delete(f"/v1.0/files/{file['id']}"))
    assert deleted["status"] == "deleted" and stored_object(file) is None
    again = ok(getattr(team, deleter).delete(f"/v1.0/files/{file['id']}"))
    assert again["tm_delete"] == deleted["tm_delete"], "deleting twice answers the same deleted file"


def test_a_reader_who_did_not_upload_it_may_not_delete_it(team):
    file = uploaded_file(team.alice)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    assert_error(team.bob.delete(f"/v1.0/files/{file['id']}"), 403)
    assert_error(team.carol.delete(f"/v1.0/files/{file['id']}"), 404)
    assert stored_object(file) is not None


def test_a_late_upload_after_the_delete_is_removed_by_deleting_again(team):
    file = new_file(team.alice)
    ok(team.alice.delete(f"/v1.0/files/{file['id']}"))
    upload(file)  # the upload url is still valid for a while
    ok(team.alice.delete(f"/v1.0/files/{file['id']}"))
    assert stored_object(file) is None


def test_a_path_id_that_is_not_a_uuid_is_400(team):
    assert_error(team.alice.get("/v1.0/files/not-a-uuid"), 400)
    assert_error(team.alice.delete("/v1.0/files/not-a-uuid"), 400)


# ---- tenant isolation -------------------------------------------------------------------------

def test_another_customer_never_reaches_a_file(team, stranger):
    file = uploaded_file(team.alice)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    assert_error(stranger.get(f"/v1.0/files/{file['id']}"), 404)
    assert_error(stranger.delete(f"/v1.0/files/{file['id']}"), 404)
    theirs = stranger.customer_id
    their_chat = create_chat(Caller(team.customer.client, theirs),
                             stranger if stranger.id else team.make_agent(customer=theirs),
                             team.make_agent(customer=theirs))
    response = stranger.post("/v1.0/chatmessages", {"chat_id": their_chat["id"], "medias": [file_media(file)]})
    assert_error(response, 400)
    assert stored_object(file) is not None and chats_of(file) == [team.chat["id"]]


def test_every_url_names_the_callers_own_customer_only(team, other_customer):
    mine, theirs = uploaded_file(team.alice), uploaded_file(other_customer)
    for file, customer_id in ((mine, team.customer.customer_id), (theirs, other_customer.customer_id)):
        assert file["customer_id"] == customer_id
        assert file["upload"]["fields"]["key"] == f"{customer_id}/{file['id']}"
        assert {"key": f"{customer_id}/{file['id']}"} in policy_of(file)["conditions"]
    send_chatmessage(team.alice, team.chat, medias=[file_media(mine)])
    url = urlsplit(ok(team.bob.get(f"/v1.0/files/{mine['id']}"))["download_url"])
    sent = download_key(mine)  # the copy made at the first send, under an id of its own
    assert sent.startswith(f"{team.customer.customer_id}/") and sent != f"{team.customer.customer_id}/{mine['id']}"
    assert unquote(url.path) == f"/{sent}"
    assert parse_qs(url.query)["X-Amz-Expires"] == ["900"]


@pytest.mark.parametrize(("name", "header"), [
    ("report.pdf", 'attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf'),
    ('통화 "녹음".mp3', 'attachment; filename="__ ____.mp3"; filename*=UTF-8\'\''
                     '%ED%86%B5%ED%99%94%20%22%EB%85%B9%EC%9D%8C%22.mp3'),
])
def test_downloads_are_attachments_named_as_uploaded(name, header):
    assert objects.attachment(name) == header


# ---- S3 faults: retried, then 503; never a wrong answer ----------------------------------------

def s3_error(code, status):
    def make(operation):
        return ClientError({"Error": {"Code": code, "Message": code},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, operation)
    return make


@pytest.fixture
def inject_s3(monkeypatch):
    """Fail the next `times` S3 requests of the given operations."""
    plan = SimpleNamespace(operations=set(), times=0, error=None, injected=0, sleeps=[])
    original = BaseClient._make_api_call

    def make_api_call(client, operation_name, api_params):
        if (client.meta.service_model.service_name == "s3" and operation_name in plan.operations
                and plan.injected < plan.times):
            plan.injected += 1
            raise plan.error(operation_name)
        return original(client, operation_name, api_params)

    def arm(error, operations, times):
        plan.error, plan.operations, plan.times, plan.injected = error, set(operations), times, 0

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    monkeypatch.setattr(objects, "time", SimpleNamespace(sleep=plan.sleeps.append))
    plan.arm = arm
    return plan


@pytest.mark.parametrize("operation", ["CopyObject", "HeadObject"])
def test_a_passing_slowdown_at_send_is_retried(team, inject_s3, operation):
    file = uploaded_file(team.alice)
    inject_s3.arm(s3_error("SlowDown", 503), {operation}, times=2)
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    assert inject_s3.injected == 2 and len(inject_s3.sleeps) == 2
    assert ok(team.alice.get(f"/v1.0/files/{file['id']}"))["status"] == "uploaded"


@pytest.mark.parametrize("operation", ["CopyObject", "HeadObject"])
def test_s3_busy_through_every_retry_at_send_is_503_and_sends_nothing(team, inject_s3, operation):
    file = uploaded_file(team.alice)
    inject_s3.arm(s3_error("SlowDown", 503), {operation}, times=1000)
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 503)
    assert inject_s3.injected == objects.ATTEMPTS
    assert ok(team.alice.get(f"/v1.0/chatmessages?chat_id={team.chat['id']}"))["result"] == []
    assert ok(team.alice.get(f"/v1.0/files/{file['id']}"))["status"] == "pending" and chats_of(file) == []
    assert stored_object(file) is not None
    keys = [listed["Key"] for listed in team.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [f"{file['customer_id']}/{file['id']}"], "the upload stays; no copy is left behind"


def test_access_denied_is_a_logged_500_never_a_400_or_a_200(team, inject_s3, caplog):
    file = uploaded_file(team.alice)
    inject_s3.arm(s3_error("AccessDenied", 403), {"HeadObject"}, times=1000)
    response = team.alice.post("/v1.0/chatmessages", {"chat_id": team.chat["id"], "medias": [file_media(file)]})
    assert_error(response, 500)
    assert inject_s3.injected == 1, "not retried"
    assert any(record.levelname == "ERROR" for record in caplog.records)
    assert stored_object(file) is not None, "a failed check removes nothing"


def test_a_delete_that_s3_refuses_changes_nothing(team, inject_s3):
    file = uploaded_file(team.alice)
    inject_s3.arm(s3_error("InternalError", 500), {"DeleteObject"}, times=1000)
    assert_error(team.alice.delete(f"/v1.0/files/{file['id']}"), 503)
    assert ok(team.alice.get(f"/v1.0/files/{file['id']}"))["status"] == "pending"
    assert stored_object(file) is not None


@pytest.fixture
def inject_dynamodb(monkeypatch):
    """Throttle the next `times` DynamoDB requests of the given operations."""
    plan = SimpleNamespace(operations=set(), times=0, injected=0)
    original = BaseClient._make_api_call

    def make_api_call(client, operation_name, api_params):
        if (client.meta.service_model.service_name == "dynamodb" and operation_name in plan.operations
                and plan.injected < plan.times):
            plan.injected += 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                              operation_name)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    monkeypatch.setattr(operations, "time", SimpleNamespace(sleep=lambda seconds: None))
    return plan


def test_a_send_whose_file_record_cannot_be_written_is_503_and_a_retry_sends_it(team, inject_dynamodb):
    file = uploaded_file(team.alice)
    inject_dynamodb.operations, inject_dynamodb.times = {"TransactWriteItems"}, 1000
    body = {"chat_id": team.chat["id"], "medias": [file_media(file)]}
    assert_error(team.alice.post("/v1.0/chatmessages", body), 503)
    assert ok(team.alice.get(f"/v1.0/chatmessages?chat_id={team.chat['id']}"))["result"] == []
    assert ok(team.alice.get(f"/v1.0/files/{file['id']}"))["status"] == "pending" and chats_of(file) == []
    inject_dynamodb.times = 0
    send_chatmessage(team.alice, team.chat, medias=[file_media(file)])
    assert chats_of(file) == [team.chat["id"]]


def test_a_file_record_that_cannot_be_stored_is_503_and_nothing_is_stored(team, inject_dynamodb):
    inject_dynamodb.operations, inject_dynamodb.times = {"PutItem"}, 1000
    response = team.alice.post("/v1.0/files", {"name": "a.png", "content_type": "image/png", "size": 5})
    assert_error(response, 503)
    assert file_items() == {}


def test_without_a_bucket_the_routes_say_so_and_store_nothing(team, monkeypatch, caplog):
    monkeypatch.setattr(objects, "_settings", SimpleNamespace(files_bucket=None))
    response = team.alice.post("/v1.0/files", {"name": "a.png", "content_type": "image/png", "size": 5})
    assert_error(response, 500)
    assert "CHAT_FILES_BUCKET" in response.json_body["Message"]
    assert file_items() == {}


# ---- requests per operation -------------------------------------------------------------------

@pytest.fixture
def calls(monkeypatch):
    """(service, operation) of every AWS request since the last clear()."""
    made = []
    original = BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        made.append(f"{client.meta.service_model.service_name}:{operation_name}")
        return original(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return made


def counted(calls, request) -> Counter:
    calls.clear()
    ok(request())
    return Counter(calls)


def test_requests_per_operation(team, calls):
    file = new_file(team.alice)
    assert counted(calls, lambda: team.alice.post("/v1.0/files", {
        "name": "a.png", "content_type": "image/png", "size": 5})) == Counter({"dynamodb:PutItem": 1})
    upload(file)
    send = {"chat_id": team.chat["id"], "text": "t"}
    team.alice.post("/v1.0/chatmessages", send)  # the customer's first send reads its settings (once a minute)
    plain = counted(calls, lambda: team.alice.post("/v1.0/chatmessages", send))
    # the UpdateItem: the send limits (services/limits.py)
    assert plain == Counter({"dynamodb:UpdateItem": 1, "dynamodb:BatchGetItem": 1, "dynamodb:PutItem": 1}), \
        "no file: nothing more"
    first = counted(calls, lambda: team.alice.post("/v1.0/chatmessages", {**send, "medias": [file_media(file)]}))
    # the upload copied to the key downloads use, the copy checked, the message written with the file's record
    # and link in one transaction, then the upload removed
    assert first == plain - Counter({"dynamodb:PutItem": 1}) + Counter({
        "dynamodb:BatchGetItem": 1, "s3:CopyObject": 1, "s3:HeadObject": 1, "dynamodb:TransactWriteItems": 1,
        "s3:DeleteObject": 1})
    again = counted(calls, lambda: team.alice.post("/v1.0/chatmessages", {**send, "medias": [file_media(file)]}))
    assert again == plain + Counter({"dynamodb:BatchGetItem": 1})
    assert counted(calls, lambda: team.alice.get(f"/v1.0/files/{file['id']}")) == Counter({"dynamodb:GetItem": 1})
    assert counted(calls, lambda: team.bob.get(f"/v1.0/files/{file['id']}")) == Counter({
        "dynamodb:GetItem": 1, "dynamodb:Query": 1, "dynamodb:BatchGetItem": 1})
    # the upload (a form posted again after the send puts one back) and the sent copy
    assert counted(calls, lambda: team.alice.delete(f"/v1.0/files/{file['id']}")) == Counter({
        "dynamodb:GetItem": 1, "s3:DeleteObject": 2, "dynamodb:UpdateItem": 1})

"""Input validation (docs/API.md, "Errors" and "Limits"): every bad input is a
clean 4xx whose Message names the field (and the limit, where there is one),
never a 5xx, and a refused write writes nothing."""

import json
import uuid

import pytest

CHATS = "/v1.0/chats"
CHATROOMS = "/v1.0/chatrooms"
CHATMESSAGES = "/v1.0/chatmessages"
CHATROOMMESSAGES = "/v1.0/chatroommessages"
MAX_BODY = 256 * 1024


def new_id():
    return str(uuid.uuid4())


def assert_refused(r, status, *words, limit=None):
    """`status` with {"Code", "Message"}; the Message names each of `words` and the limit."""
    assert r.status_code == status, (r.status_code, r.body)
    body = r.json_body
    assert set(body) == {"Code", "Message"}, body
    message = body["Message"]
    assert isinstance(message, str) and message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not named in {message!r}"
    if limit is not None:
        assert str(limit) in message.replace(",", ""), f"limit {limit} not named in {message!r}"


def assert_not_5xx(r):
    assert r.status_code < 500, (r.status_code, r.body)


def assert_no_chats(customer):
    listed = customer.get(CHATS)
    assert listed.status_code == 200, listed.body
    assert listed.json_body["result"] == []


def assert_no_chatmessages(customer, chat_id):
    listed = customer.get(f"{CHATMESSAGES}?chat_id={chat_id}")
    assert listed.status_code == 200, listed.body
    assert listed.json_body["result"] == []


def assert_no_chatroommessages(agent, chatroom_id):
    listed = agent.get(f"{CHATROOMMESSAGES}?chatroom_id={chatroom_id}")
    assert listed.status_code == 200, listed.body
    assert listed.json_body["result"] == []


@pytest.fixture
def pair(make_agent):
    return make_agent(), make_agent()


@pytest.fixture
def chat_body(pair):
    a, b = pair
    return {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}


@pytest.fixture
def chat(customer, chat_body):
    r = customer.post(CHATS, chat_body)
    assert r.status_code == 200, r.body
    return r.json_body


@pytest.fixture
def room(chat, pair):
    """Agent a's chatroom of `chat`."""
    a, _ = pair
    rooms = a.get(CHATROOMS).json_body["result"]
    assert len(rooms) == 1
    return rooms[0]


def chat_raw(chat_body) -> bytes:
    return json.dumps(chat_body).encode()


# ---- the body as a whole ---------------------------------------------------------

@pytest.mark.parametrize("raw", [b"{", b'{"type": "normal",}', b"{'type': 'normal'}", b"nope", b'{"a": 1} extra'])
def test_malformed_json_is_400(customer, raw):
    assert_refused(customer.post(CHATS, raw=raw), 400, "body", "json")
    assert_no_chats(customer)


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_400(customer, raw):
    assert_refused(customer.post(CHATS, raw=raw), 400, "body", "object")
    assert_no_chats(customer)


@pytest.mark.parametrize("raw", [b"", b"   \n\t "])
def test_empty_body_is_400(customer, raw):
    assert_refused(customer.post(CHATS, raw=raw), 400, "body")
    assert_no_chats(customer)


def test_invalid_utf8_body_is_400(customer, chat_body):
    raw = chat_raw(chat_body)[:-1] + b', "name": "\xff\xfe\xc3"}'
    assert_refused(customer.post(CHATS, raw=raw), 400, "body", "utf-8")
    assert_no_chats(customer)


def test_deeply_nested_lists_are_400(customer):
    raw = b"[" * 100_000 + b"]" * 100_000
    assert len(raw) <= MAX_BODY
    assert_refused(customer.post(CHATS, raw=raw), 400, "body")
    assert_no_chats(customer)


def test_deeply_nested_objects_inside_a_field_are_400(customer, chat_body):
    depth = 40_000
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    raw = chat_raw(chat_body)[:-1] + b', "name": ' + nested + b"}"
    assert len(raw) <= MAX_BODY
    assert_refused(customer.post(CHATS, raw=raw), 400, "body")
    assert_no_chats(customer)


def test_json_integer_with_thousands_of_digits_is_400(customer, chat):
    # Python refuses to parse integers over 4300 digits; that is bad input, not a server error.
    raw = b'{"chat_id": "%s", "text": %s}' % (chat["id"].encode(), b"7" * 5000)
    assert_refused(customer.post(CHATMESSAGES, raw=raw), 400, "body")
    assert_no_chatmessages(customer, chat["id"])


def test_lone_surrogate_in_text_is_not_5xx(customer, chat):
    raw = b'{"chat_id": "%s", "text": "a\\ud800b"}' % chat["id"].encode()
    r = customer.post(CHATMESSAGES, raw=raw)
    assert_not_5xx(r)
    if r.status_code != 200:
        assert_refused(r, r.status_code, "text")
        assert_no_chatmessages(customer, chat["id"])


def test_body_over_256_kib_is_413(customer, chat):
    raw = json.dumps({"chat_id": chat["id"], "text": "x" * (MAX_BODY + 1)}).encode()
    assert_refused(customer.post(CHATMESSAGES, raw=raw), 413, "body")
    assert_no_chatmessages(customer, chat["id"])


def test_body_one_byte_over_256_kib_is_413_naming_the_limit(customer, chat):
    raw = json.dumps({"chat_id": chat["id"], "text": "hi"}).encode()
    raw += b" " * (MAX_BODY + 1 - len(raw))  # whitespace keeps it valid JSON
    assert len(raw) == MAX_BODY + 1
    r = customer.post(CHATMESSAGES, raw=raw)
    assert r.status_code == 413, (r.status_code, r.body)
    message = r.json_body["Message"]
    assert "256 KiB" in message or str(MAX_BODY) in message, message
    assert_no_chatmessages(customer, chat["id"])


def test_body_of_exactly_256_kib_is_accepted(customer, chat):
    raw = json.dumps({"chat_id": chat["id"], "text": "hi"}).encode()
    raw += b" " * (MAX_BODY - len(raw))
    assert len(raw) == MAX_BODY
    r = customer.post(CHATMESSAGES, raw=raw)
    assert r.status_code == 200, r.body
    assert r.json_body["text"] == "hi"


def test_text_plain_content_type_is_accepted_as_the_seed_sends_it(customer, chat_body):
    r = customer.post(CHATS, raw=chat_raw(chat_body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.body
    assert [c["id"] for c in customer.get(CHATS).json_body["result"]] == [r.json_body["id"]]


def test_text_plain_chatmessage_is_accepted_as_the_seed_sends_it(customer, chat):
    raw = json.dumps({"chat_id": chat["id"], "type": "normal", "text": "test message"}).encode()
    r = customer.post(CHATMESSAGES, raw=raw, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.body
    assert r.json_body["text"] == "test message"


# ---- limits: text, name, detail, participants, medias ------------------------------

def test_chatmessage_text_of_10000_characters_is_accepted(customer, chat):
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "é" * 10_000})
    assert r.status_code == 200, r.body
    assert len(r.json_body["text"]) == 10_000


def test_chatmessage_text_of_10001_characters_is_400(customer, chat):
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "x" * 10_001})
    assert_refused(r, 400, "text", limit=10_000)
    assert_no_chatmessages(customer, chat["id"])


def test_chatroommessage_text_of_10000_characters_is_accepted(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": room["id"], "text": "x" * 10_000})
    assert r.status_code == 200, r.body
    assert len(r.json_body["text"]) == 10_000


def test_chatroommessage_text_of_10001_characters_is_400(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": room["id"], "text": "x" * 10_001})
    assert_refused(r, 400, "text", limit=10_000)
    assert_no_chatroommessages(a, room["id"])


def test_chat_name_of_255_characters_is_accepted(customer, chat_body):
    r = customer.post(CHATS, {**chat_body, "name": "n" * 255})
    assert r.status_code == 200, r.body
    assert r.json_body["name"] == "n" * 255


def test_chat_name_of_256_characters_is_400(customer, chat_body):
    assert_refused(customer.post(CHATS, {**chat_body, "name": "n" * 256}), 400, "name", limit=255)
    assert_no_chats(customer)


def test_chat_detail_of_2000_characters_is_accepted(customer, chat_body):
    r = customer.post(CHATS, {**chat_body, "detail": "d" * 2000})
    assert r.status_code == 200, r.body


def test_chat_detail_of_2001_characters_is_400(customer, chat_body):
    assert_refused(customer.post(CHATS, {**chat_body, "detail": "d" * 2001}), 400, "detail", limit=2000)
    assert_no_chats(customer)


@pytest.mark.parametrize(("field", "length", "limit"), [("name", 256, 255), ("detail", 2001, 2000)])
def test_chat_update_over_limit_is_400_and_changes_nothing(customer, chat, field, length, limit):
    r = customer.put(f"{CHATS}/{chat['id']}", {field: "x" * length})
    assert_refused(r, 400, field, limit=limit)
    assert customer.get(f"{CHATS}/{chat['id']}").json_body == chat


@pytest.mark.parametrize(("field", "length", "limit"), [("name", 256, 255), ("detail", 2001, 2000)])
def test_chatroom_update_over_limit_is_400_and_changes_nothing(pair, room, field, length, limit):
    a, _ = pair
    r = a.put(f"{CHATROOMS}/{room['id']}", {field: "x" * length})
    assert_refused(r, 400, field, limit=limit)
    assert a.get(f"{CHATROOMS}/{room['id']}").json_body == room


@pytest.mark.parametrize(("field", "length", "limit"), [("name", 256, 255), ("detail", 2001, 2000)])
def test_chatroom_create_over_limit_is_400_and_writes_nothing(pair, field, length, limit):
    a, b = pair
    r = a.post(CHATROOMS, {"participant_ids": [b.id], field: "x" * length})
    assert_refused(r, 400, field, limit=limit)
    assert a.get(CHATROOMS).json_body["result"] == []


def test_1001_distinct_participants_is_400(customer, pair):
    a, _ = pair
    ids = [a.id] + [new_id() for _ in range(1000)]
    r = customer.post(CHATS, {"type": "group", "owner_id": a.id, "participant_ids": ids})
    assert_refused(r, 400, "participant_ids", limit=1000)
    assert_no_chats(customer)


def test_chatroom_with_1000_others_plus_the_caller_is_400(pair):
    a, _ = pair
    r = a.post(CHATROOMS, {"participant_ids": [new_id() for _ in range(1000)]})
    assert_refused(r, 400, "participant_ids", limit=1000)
    assert a.get(CHATROOMS).json_body["result"] == []


def test_group_of_1000_participants_is_accepted(customer, pair):
    a, _ = pair
    ids = [a.id] + [new_id() for _ in range(999)]
    r = customer.post(CHATS, {"type": "group", "owner_id": a.id, "participant_ids": ids})
    assert r.status_code == 200, r.body
    assert r.json_body["participant_ids"] == sorted(ids)


def test_duplicate_participants_are_removed_silently(customer, pair):
    a, b = pair
    r = customer.post(CHATS, {"type": "normal", "owner_id": a.id, "participant_ids": [b.id, a.id, b.id, a.id]})
    assert r.status_code == 200, r.body
    assert r.json_body["participant_ids"] == sorted([a.id, b.id])
    assert r.json_body["type"] == "normal"


def test_duplicates_beyond_1000_entries_are_removed_silently(customer, pair):
    a, b = pair
    ids = [a.id] * 600 + [b.id] * 601  # 1001 entries, 2 distinct
    r = customer.post(CHATS, {"type": "normal", "owner_id": a.id, "participant_ids": ids})
    assert r.status_code == 200, r.body
    assert r.json_body["participant_ids"] == sorted([a.id, b.id])


def test_duplicates_beyond_2000_entries_are_removed_silently(customer, pair):
    # The limit is on distinct participants; duplicates are removed silently (docs/API.md, "Limits").
    a, b = pair
    ids = [a.id, b.id] * 1001  # 2002 entries, 2 distinct, about 80 KB: well under the body limit
    r = customer.post(CHATS, {"type": "normal", "owner_id": a.id, "participant_ids": ids})
    assert r.status_code == 200, r.body
    assert r.json_body["participant_ids"] == sorted([a.id, b.id])


def test_duplicate_participants_in_chatroom_create_are_removed_silently(pair):
    a, b = pair
    r = a.post(CHATROOMS, {"participant_ids": [b.id, b.id, a.id]})
    assert r.status_code == 200, r.body
    assert r.json_body["participant_ids"] == sorted([a.id, b.id])
    assert r.json_body["type"] == "normal"


def test_more_than_10_medias_is_400(customer, chat):
    medias = [{"type": "link", "link_url": f"https://example.com/{i}"} for i in range(11)]
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "hi", "medias": medias})
    assert_refused(r, 400, "medias", limit=10)
    assert_no_chatmessages(customer, chat["id"])


# ---- chat shape rules ---------------------------------------------------------------

@pytest.mark.parametrize("chat_type", ["private", "", "NORMAL", None, 1])
def test_unknown_chat_type_is_400(customer, chat_body, chat_type):
    assert_refused(customer.post(CHATS, {**chat_body, "type": chat_type}), 400, "type")
    assert_no_chats(customer)


def test_missing_chat_type_is_400(customer, chat_body):
    body = {k: v for k, v in chat_body.items() if k != "type"}
    assert_refused(customer.post(CHATS, body), 400, "type")
    assert_no_chats(customer)


def test_normal_chat_with_3_participants_is_400(customer, pair, make_agent):
    a, b = pair
    ids = [a.id, b.id, make_agent().id]
    r = customer.post(CHATS, {"type": "normal", "owner_id": a.id, "participant_ids": ids})
    assert_refused(r, 400, "participant_ids")
    assert_no_chats(customer)


@pytest.mark.parametrize("chat_type", ["normal", "group"])
def test_chat_with_a_single_participant_is_400(customer, pair, chat_type):
    a, _ = pair
    r = customer.post(CHATS, {"type": chat_type, "owner_id": a.id, "participant_ids": [a.id, a.id]})
    assert_refused(r, 400, "participant_ids")
    assert_no_chats(customer)


def test_owner_not_a_participant_is_400(customer, pair, make_agent):
    a, b = pair
    r = customer.post(CHATS, {"type": "normal", "owner_id": make_agent().id, "participant_ids": [a.id, b.id]})
    assert_refused(r, 400, "owner_id")
    assert_no_chats(customer)


def test_changing_owner_to_a_non_participant_is_400(customer, chat):
    r = customer.put(f"{CHATS}/{chat['id']}/owner_id", {"owner_id": new_id()})
    assert_refused(r, 400, "owner_id")
    assert customer.get(f"{CHATS}/{chat['id']}").json_body == chat


def test_chatroom_with_only_the_caller_is_400(pair):
    a, _ = pair
    assert_refused(a.post(CHATROOMS, {"participant_ids": [a.id]}), 400, "participant_ids")
    assert a.get(CHATROOMS).json_body["result"] == []


# ---- unknown fields and wrong types -----------------------------------------------

def test_unknown_field_in_chat_is_400(customer, chat_body):
    assert_refused(customer.post(CHATS, {**chat_body, "colour": "red"}), 400, "colour")
    assert_no_chats(customer)


def test_unknown_field_in_chatmessage_is_400(customer, chat):
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "hi", "priority": 1})
    assert_refused(r, 400, "priority")
    assert_no_chatmessages(customer, chat["id"])


def test_unknown_field_in_chatroommessage_is_400(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": room["id"], "text": "hi", "source": {"type": "agent"}})
    assert_refused(r, 400, "source")
    assert_no_chatroommessages(a, room["id"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("participant_ids", "a-string"),
        ("participant_ids", {"a": 1}),
        ("participant_ids", [1, 2]),
        ("owner_id", 7),
        ("name", 5),
        ("name", None),
        ("detail", ["x"]),
    ],
)
def test_wrong_type_in_chat_is_400_naming_the_field(customer, chat_body, field, value):
    assert_refused(customer.post(CHATS, {**chat_body, field: value}), 400, field)
    assert_no_chats(customer)


def test_participant_ids_as_a_uuid_string_is_400(customer, chat_body, pair):
    a, _ = pair
    assert_refused(customer.post(CHATS, {**chat_body, "participant_ids": a.id}), 400, "participant_ids")
    assert_no_chats(customer)


@pytest.mark.parametrize(("field", "value"), [("text", 42), ("text", ["hi"]), ("medias", "x"), ("type", "loud")])
def test_wrong_type_in_chatmessage_is_400_naming_the_field(customer, chat, field, value):
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "hi", field: value})
    assert_refused(r, 400, field)
    assert_no_chatmessages(customer, chat["id"])


def test_text_as_a_number_in_chatroommessage_is_400(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": room["id"], "text": 42})
    assert_refused(r, 400, "text")
    assert_no_chatroommessages(a, room["id"])


def test_nul_characters_in_text_are_accepted_or_cleanly_refused(customer, chat):
    text = "a\x00b\x00"
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": text})
    assert_not_5xx(r)
    if r.status_code == 200:
        assert r.json_body["text"] == text
        assert customer.get(f"{CHATMESSAGES}/{r.json_body['id']}").json_body["text"] == text
    else:
        assert_refused(r, 400, "text")
        assert_no_chatmessages(customer, chat["id"])


# ---- ids: in the path, the query and the body ------------------------------------

SOME_ID = "3f1a0c64-2a7e-4c1b-9a59-1d2b7c1e5f00"
BAD_ID = "not-a-uuid"


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("get", f"{CHATS}/{BAD_ID}", "chat_id"),
        ("put", f"{CHATS}/{BAD_ID}", "chat_id"),
        ("delete", f"{CHATS}/{BAD_ID}", "chat_id"),
        ("put", f"{CHATS}/{BAD_ID}/owner_id", "chat_id"),
        ("post", f"{CHATS}/{BAD_ID}/participant_ids", "chat_id"),
        ("delete", f"{CHATS}/{BAD_ID}/participant_ids/{SOME_ID}", "chat_id"),
        ("delete", f"{CHATS}/{SOME_ID}/participant_ids/{BAD_ID}", "participant_id"),
        ("get", f"{CHATROOMS}/{BAD_ID}", "chatroom_id"),
        ("put", f"{CHATROOMS}/{BAD_ID}", "chatroom_id"),
        ("delete", f"{CHATROOMS}/{BAD_ID}", "chatroom_id"),
        ("get", f"{CHATMESSAGES}/{BAD_ID}", "chatmessage_id"),
        ("delete", f"{CHATMESSAGES}/{BAD_ID}", "chatmessage_id"),
        ("get", f"{CHATROOMMESSAGES}/{BAD_ID}", "chatroommessage_id"),
        ("delete", f"{CHATROOMMESSAGES}/{BAD_ID}", "chatroommessage_id"),
    ],
)
def test_non_uuid_path_id_is_400_naming_the_path_field(customer, method, path, field):
    # A valid body, so only the path id is wrong.
    if path.endswith("/owner_id"):
        kwargs = {"body": {"owner_id": SOME_ID}}
    elif method == "put":
        kwargs = {"body": {"name": "x"}}
    elif method == "post":
        kwargs = {"body": {"participant_id": SOME_ID}}
    else:
        kwargs = {}
    r = getattr(customer, method)(path, **kwargs)
    assert_refused(r, 400, field)


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-uuid",
        "3f1a0c642a7e4c1b9a591d2b7c1e5f00",  # hex without hyphens
        "3f1a0c64-2a7e-4c1b-9a59-1d2b7c1e5f00a",  # one character too many
        "3f1a0c64-2a7e-4c1b-9a59-1d2b7c1e5f0g",  # not hex
        "12345",
    ],
)
def test_malformed_chat_path_id_is_400(customer, bad):
    assert_refused(customer.get(f"{CHATS}/{bad}"), 400, "chat_id")


def test_non_uuid_chat_id_in_chatmessage_body_is_400(customer, chat):
    r = customer.post(CHATMESSAGES, {"chat_id": BAD_ID, "text": "hi"})
    assert_refused(r, 400, "chat_id")
    assert_no_chatmessages(customer, chat["id"])


def test_non_uuid_chatroom_id_in_chatroommessage_body_is_400(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": BAD_ID, "text": "hi"})
    assert_refused(r, 400, "chatroom_id")
    assert_no_chatroommessages(a, room["id"])


def test_non_uuid_owner_id_in_chat_body_is_400(customer, chat_body):
    assert_refused(customer.post(CHATS, {**chat_body, "owner_id": BAD_ID}), 400, "owner_id")
    assert_no_chats(customer)


def test_non_uuid_in_participant_ids_is_400(customer, chat_body, pair):
    a, _ = pair
    r = customer.post(CHATS, {**chat_body, "participant_ids": [a.id, BAD_ID]})
    assert_refused(r, 400, "participant_ids")
    assert_no_chats(customer)


def test_non_uuid_in_chatroom_participant_ids_is_400(pair):
    a, _ = pair
    assert_refused(a.post(CHATROOMS, {"participant_ids": [BAD_ID]}), 400, "participant_ids")
    assert a.get(CHATROOMS).json_body["result"] == []


def test_non_uuid_owner_id_in_owner_change_is_400(customer, chat):
    r = customer.put(f"{CHATS}/{chat['id']}/owner_id", {"owner_id": BAD_ID})
    assert_refused(r, 400, "owner_id")
    assert customer.get(f"{CHATS}/{chat['id']}").json_body == chat


def test_non_uuid_participant_id_in_participant_add_is_400(customer, chat):
    r = customer.post(f"{CHATS}/{chat['id']}/participant_ids", {"participant_id": BAD_ID})
    assert_refused(r, 400, "participant_id")
    assert customer.get(f"{CHATS}/{chat['id']}").json_body == chat


def test_missing_chat_id_on_chatmessage_list_is_400(customer):
    assert_refused(customer.get(CHATMESSAGES), 400, "chat_id")


def test_missing_chatroom_id_on_chatroommessage_list_is_400(customer):
    assert_refused(customer.get(CHATROOMMESSAGES), 400, "chatroom_id")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"{CHATMESSAGES}?chat_id={BAD_ID}", "chat_id"),
        (f"{CHATMESSAGES}?chat_id=", "chat_id"),
        (f"{CHATROOMMESSAGES}?chatroom_id={BAD_ID}", "chatroom_id"),
        (f"{CHATROOMS}?owner_id={BAD_ID}", "owner_id"),
    ],
)
def test_non_uuid_query_id_is_400(customer, path, field):
    assert_refused(customer.get(path), 400, field)


def test_chatroom_list_with_customer_token_needs_owner_id(customer):
    assert_refused(customer.get(CHATROOMS), 400, "owner_id")


# ---- Idempotency-Key ---------------------------------------------------------------

@pytest.mark.parametrize("key", ["k" * 300, "has space", "tab\tinside"])
def test_bad_idempotency_key_on_chatmessage_is_400(customer, chat, key):
    r = customer.post(CHATMESSAGES, {"chat_id": chat["id"], "text": "hi"}, headers={"Idempotency-Key": key})
    assert_refused(r, 400, "Idempotency-Key")
    assert_no_chatmessages(customer, chat["id"])


def test_bad_idempotency_key_on_chatroommessage_is_400(pair, room):
    a, _ = pair
    r = a.post(CHATROOMMESSAGES, {"chatroom_id": room["id"], "text": "hi"}, headers={"Idempotency-Key": "k" * 300})
    assert_refused(r, 400, "Idempotency-Key")
    assert_no_chatroommessages(a, room["id"])

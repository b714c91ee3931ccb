"""The project's own schemas (tests/schemas/) and the check every response goes
through (tests/schema_check.py): they know every route, accept the seed's
examples and refuse what the API must never answer."""

import copy
import json

import pytest
from jsonschema import Draft202012Validator

import app as chat_app
from chalicelib.clock import NOT_DELETED
from tests import schema_check
from tests.schema_check import SCHEMA_DIR, assert_valid, check_response

CUSTOMER = "5e4a0680-804e-11ec-8477-2fea5968d85b"
AGENT_1 = "eb1ac5c0-ff63-47e2-bcdb-5da9c336eb4b"
AGENT_2 = "47fe0b7c-7333-46cf-8b23-61e14e62490a"
SOURCE = {"type": "agent", "target": AGENT_1, "target_name": "", "name": "", "detail": ""}

# The seed's own examples, with the fields we return after the seed's.
EXAMPLES = {
    "chat": {
        "id": "e8b2e976-f043-44c8-bb89-e214e225e813", "customer_id": CUSTOMER, "type": "normal",
        "owner_id": AGENT_1, "participant_ids": [AGENT_2, AGENT_1], "name": "test chat normal",
        "detail": "test chat with agent 1 and agent2", "tm_create": "2022-09-22 02:41:44.884828",
        "tm_update": "2022-09-22 02:41:44.884828", "tm_delete": NOT_DELETED,
    },
    "chatroom": {
        "id": "1e385680-0f41-4e2a-b154-a61c62bf830a", "customer_id": CUSTOMER, "type": "normal",
        "chat_id": "e8b2e976-f043-44c8-bb89-e214e225e813", "owner_id": AGENT_1,
        "participant_ids": [AGENT_2, AGENT_1], "name": "test chat normal",
        "detail": "test chat with agent 1 and agent2", "tm_create": "2022-09-22 02:41:45.237021",
        "tm_update": "2022-09-22 02:41:45.237021", "tm_delete": NOT_DELETED,
        "unread_count": 0, "tm_read": "2022-09-22 02:41:45.237021", "tm_activity": "2022-09-22 02:41:45.237021",
        "last_chatroommessage": None, "mention_count": 0,
    },
    "chatmessage": {
        "id": "2b4acb7b-f1ba-43c5-ae43-0435a07d55ea", "customer_id": CUSTOMER,
        "chat_id": "e8b2e976-f043-44c8-bb89-e214e225e813", "source": SOURCE, "type": "normal",
        "text": "test message", "medias": [], "tm_create": "2022-09-25 13:11:59.075363",
        "tm_update": "2022-09-25 13:11:59.075363", "tm_delete": NOT_DELETED,
        "metadata": {"reactions": [], "reaction_counts": {}}, "parent_id": "", "reply_count": 0,
        "mentions": [],
    },
    "chatroommessage": {
        "id": "04f90d46-2d51-4c8e-ba7d-e181f48bc925", "customer_id": CUSTOMER,
        "chatroom_id": "1e385680-0f41-4e2a-b154-a61c62bf830a", "messagechat_id": "2b4acb7b-f1ba-43c5-ae43-0435a07d55ea",
        "source": SOURCE, "type": "normal", "text": "test message", "medias": [],
        "tm_create": "2022-09-25 13:11:59.274200", "tm_update": "2022-09-25 13:11:59.274200", "tm_delete": NOT_DELETED,
        "owner_type": "agent", "owner_id": AGENT_1, "metadata": {"reactions": [], "reaction_counts": {}},
        "parent_id": "", "mentions": [],
    },
}
RESOURCES = sorted(EXAMPLES)
MEDIAS = [
    {"type": "address", "address": {"type": "tel", "target": "+821100000001", "target_name": "", "name": "",
                                    "detail": ""}},
    {"type": "agent", "agent": {"id": AGENT_2, "name": "bob", "permission": 16}},
    {"type": "file", "file_id": "0c4ca9f6-2a8e-4c4e-9d43-2b8c0b6e7a11"},
    {"type": "link", "link_url": "https://example.com/report.pdf"},
]


def example(kind):
    body = copy.deepcopy(EXAMPLES[kind])
    if "participant_ids" in body:
        body["participant_ids"].sort()  # the seed's example happens to be sorted already; stay independent of it
    return body


def refused(kind, body, *words):
    with pytest.raises(AssertionError) as caught:
        assert_valid(kind, body)
    for word in words:
        assert word in str(caught.value), str(caught.value)


# ---- the schemas themselves ---------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_schema_file_is_a_valid_json_schema(path):
    document = json.loads(path.read_text(encoding="utf-8"))
    if path.name != "routes.json":
        Draft202012Validator.check_schema(document)
        assert document["$id"] == path.name


def test_every_route_the_app_registers_has_a_schema_and_no_other():
    """A route added later fails here until tests/schemas/routes.json says what it returns."""
    registered = {(method, path) for path, methods in chat_app.app.routes.items() for method in methods}
    assert set(schema_check.routes()) == registered


def test_a_resource_starts_with_exactly_the_seeds_fields_and_every_field_is_required():
    for kind in RESOURCES:
        spec = schema_check.schema(kind)
        order = schema_check.seed_fields(kind)
        assert list(spec["properties"])[: len(order)] == order, kind
        assert set(spec["required"]) == set(spec["properties"]), kind
        assert spec["additionalProperties"] is False, kind


# ---- what they accept -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", RESOURCES)
def test_the_seeds_examples_are_valid(kind):
    assert_valid(kind, example(kind))


@pytest.mark.parametrize("kind", RESOURCES)
def test_a_deleted_resource_and_a_page_of_live_ones_are_valid(kind):
    deleted = {**example(kind), "tm_delete": "2022-09-26 00:00:00.000001"}
    assert_valid(kind, deleted)
    item = example(kind)
    assert_valid(f"{kind}_list", {"result": [item, item], "next_page_token": f"{item['tm_create']}~{item['id']}"})
    assert_valid(f"{kind}_list", {"result": [item], "next_page_token": item["tm_create"]})
    assert_valid(f"{kind}_list", {"result": [], "next_page_token": ""})


@pytest.mark.parametrize("media", MEDIAS, ids=[m["type"] for m in MEDIAS])
def test_each_media_type_with_its_payload_is_valid(media):
    assert_valid("chatmessage", {**example("chatmessage"), "medias": [media]})


def test_an_error_is_code_and_message():
    assert_valid("error", {"Code": "BadRequestError", "Message": "text: at most 10000 characters"})


# ---- what they refuse -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", RESOURCES)
def test_seed_fields_out_of_order_are_refused(kind):
    body = example(kind)
    keys = list(body)
    keys[0], keys[1] = keys[1], keys[0]
    refused(kind, {key: body[key] for key in keys}, "in this order")


@pytest.mark.parametrize("kind", RESOURCES)
def test_a_field_added_before_the_seeds_fields_end_is_refused(kind):
    body = example(kind)
    keys = list(body)
    refused(kind, {"owner_type": "agent", **body} if kind != "chatroommessage"
            else {key: body[key] for key in keys[-2:] + keys[:-2]}, "in this order")


@pytest.mark.parametrize("kind", RESOURCES)
def test_an_unknown_field_and_a_missing_field_are_refused(kind):
    refused(kind, {**example(kind), "surprise": 1}, "surprise")
    body = example(kind)
    del body["tm_update"]
    refused(kind, body, "tm_update")


@pytest.mark.parametrize("kind", RESOURCES)
@pytest.mark.parametrize(("field", "value"), [
    ("id", "E8B2E976-F043-44C8-BB89-E214E225E813"), ("id", "e8b2e976f04344c8bb89e214e225e813"), ("id", 7),
    ("customer_id", ""), ("tm_create", "2022-09-22T02:41:44.884828"), ("tm_create", "2022-09-22 02:41:44"),
    ("tm_update", "2022-13-22 02:41:44.884828"), ("tm_delete", ""), ("tm_delete", None), ("type", "secret"),
])
def test_wrong_formats_are_refused(kind, field, value):
    refused(kind, {**example(kind), field: value}, field)


@pytest.mark.parametrize("kind", ["chat", "chatroom"])
def test_participants_unsorted_duplicated_or_not_uuids_are_refused(kind):
    body = example(kind)
    refused(kind, {**body, "participant_ids": sorted(body["participant_ids"], reverse=True)}, "sorted")
    refused(kind, {**body, "participant_ids": [AGENT_1, AGENT_1]}, "participant_ids")
    refused(kind, {**body, "participant_ids": [AGENT_1]}, "participant_ids")
    refused(kind, {**body, "participant_ids": sorted([AGENT_1, "bob"])}, "participant_ids")


@pytest.mark.parametrize("kind", ["chatmessage", "chatroommessage"])
def test_a_source_needs_its_five_string_keys(kind):
    for key in SOURCE:
        source = {k: v for k, v in SOURCE.items() if k != key}
        refused(kind, {**example(kind), "source": source}, "source")
    refused(kind, {**example(kind), "source": {**SOURCE, "target": None}}, "source")
    refused(kind, {**example(kind), "source": {**SOURCE, "type": "fax"}}, "source")
    refused(kind, {**example(kind), "source": {**SOURCE, "extra": ""}}, "source")


@pytest.mark.parametrize("media", [
    {"type": "file"}, {"type": "file", "link_url": "https://example.com"}, {"type": "link", "link_url": "ftp://x"},
    {"type": "agent", "agent": {"name": "no id"}}, {"type": "address", "address": {"type": "tel"}},
    {"type": "video", "file_id": "0c4ca9f6-2a8e-4c4e-9d43-2b8c0b6e7a11"},
    {"type": "file", "file_id": "0c4ca9f6-2a8e-4c4e-9d43-2b8c0b6e7a11", "address": None},
], ids=lambda m: json.dumps(m)[:40])
def test_a_media_without_exactly_its_payload_is_refused(media):
    refused("chatmessage", {**example("chatmessage"), "medias": [media]}, "medias")


def test_more_than_ten_medias_and_over_limit_text_are_refused():
    refused("chatmessage", {**example("chatmessage"), "medias": [MEDIAS[3]] * 11}, "medias")
    refused("chatmessage", {**example("chatmessage"), "text": "x" * 10_001}, "text")
    refused("chat", {**example("chat"), "name": "n" * 256}, "name")


@pytest.mark.parametrize("kind", RESOURCES)
def test_a_list_never_shows_a_deleted_item_and_checks_its_items(kind):
    deleted = {**example(kind), "tm_delete": "2022-09-26 00:00:00.000001"}
    refused(f"{kind}_list", {"result": [deleted], "next_page_token": ""}, "result/0")
    body = example(kind)
    reordered = dict(reversed(list(body.items())))
    refused(f"{kind}_list", {"result": [body, reordered], "next_page_token": ""}, "result/1/", "in this order")


def test_a_page_envelope_is_exact():
    item = example("chat")
    refused("chat_list", {"next_page_token": "", "result": [item]}, "in this order")
    refused("chat_list", {"result": [item]}, "next_page_token")
    refused("chat_list", {"result": [item], "next_page_token": "", "count": 1}, "count")
    refused("chat_list", {"result": [item], "next_page_token": "page 2"}, "next_page_token")


def test_an_error_is_nothing_but_code_and_message():
    refused("error", {"message": "Missing Authentication Token"}, "Code")
    refused("error", {"Code": "X", "Message": "m", "Detail": "d"}, "Detail")
    refused("error", {"Code": "X", "Message": ""}, "Message")


# ---- the routes ----------------------------------------------------------------------------------

def test_every_response_is_checked_as_what_its_route_returns():
    chat = json.dumps(example("chat"))
    check_response("GET", f"/v1.0/chats/{AGENT_1}?token=t", 200, chat)
    check_response("GET", "/v1.0/chats/", 200, json.dumps({"result": [], "next_page_token": ""}))
    check_response("DELETE", f"/v1.0/chats/{AGENT_1}/participant_ids/{AGENT_2}", 200, chat.encode())
    check_response("GET", "/v1.0/chats/not-a-uuid", 400, b'{"Code": "BadRequestError", "Message": "chat_id: ..."}')
    check_response("PATCH", "/v1.0/chats", 405, b'{"Code": "MethodNotAllowedError", "Message": "PATCH"}')
    check_response("GET", "/v1.0/openapi.json", 200, b'{"openapi": "3.1.0"}')
    with pytest.raises(AssertionError, match="chatroom"):
        check_response("GET", f"/v1.0/chatrooms/{AGENT_1}", 200, chat)
    with pytest.raises(AssertionError, match="not JSON"):
        check_response("GET", "/v1.0/chats", 200, b"<html>")
    with pytest.raises(AssertionError, match="error"):
        check_response("GET", "/v1.0/chats", 404, b'{"message": "Not Found"}')


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1.0/service_agents/chats"), ("POST", "/v1.0/chatrooms/x/archive"), ("GET", "/v2.0/chats"),
    ("GET", "/v1.0/nothing"),
])
def test_a_route_the_schemas_do_not_know_fails_loudly(method, path):
    for status in (200, 404):
        with pytest.raises(AssertionError, match="routes.json"):
            check_response(method, path, status, b'{"Code": "NotFoundError", "Message": "m"}')


def test_a_method_the_schemas_do_not_know_on_a_known_path_fails_loudly_when_it_answers():
    with pytest.raises(AssertionError, match="routes.json"):
        check_response("PATCH", "/v1.0/chatmessages/" + AGENT_1, 200, json.dumps(example("chatmessage")))

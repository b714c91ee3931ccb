"""docs/API.md, the API's reference for its users: the hand-written conventions of
docs/API.intro.md, then every route and schema of the app's own OpenAPI document
(GET /v1.0/openapi.json, built by chalicelib/api/openapi.py).

    .venv/bin/python -m devtools.apidoc          # rewrites docs/API.md
    .venv/bin/python -m devtools.apidoc --check  # exit 1 if docs/API.md is out of date

Who may call each route is authorization knowledge the document does not carry:
it is in ACCESS below, and a route without an entry stops the generator, so a new
route cannot reach the reference undocumented. tests/test_docs.py fails when
docs/API.md differs from what this writes.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTRO = ROOT / "docs" / "API.intro.md"
OUTPUT = ROOT / "docs" / "API.md"
DOCUMENT_PATH = "/v1.0/openapi.json"
METHOD_ORDER = ["get", "post", "put", "delete"]

_PRIVILEGED = "customer tokens, admins and managers"
_OWN = ("agent tokens only, on the caller's own {what} whatever their permission bits (another agent's: 403; "
        "another customer's: 404; a customer token: 403).")
ACCESS = {
    "GET /v1.0/chats": f"{_PRIVILEGED}. A plain agent: 403.",
    "POST /v1.0/chats": f"{_PRIVILEGED}; a plain agent only for a chat that includes themselves.",
    "GET /v1.0/chats/{chat_id}": f"{_PRIVILEGED}; a plain agent while a participant.",
    "PUT /v1.0/chats/{chat_id}": f"{_PRIVILEGED}; a plain agent as the chat's owner.",
    "DELETE /v1.0/chats/{chat_id}": f"{_PRIVILEGED}; a plain agent as the chat's owner.",
    "PUT /v1.0/chats/{chat_id}/owner_id": f"{_PRIVILEGED}; a plain agent as the chat's owner.",
    "PUT /v1.0/chats/{chat_id}/room_owner_id": f"{_PRIVILEGED}; a plain agent as the chat's owner (VoIPBIN's "
                                               "name for `PUT .../owner_id`).",
    "POST /v1.0/chats/{chat_id}/participant_ids": f"{_PRIVILEGED}; a plain agent as the chat's owner.",
    "DELETE /v1.0/chats/{chat_id}/participant_ids/{participant_id}":
        f"{_PRIVILEGED}; a plain agent as the chat's owner.",
    "GET /v1.0/chatrooms": "any token. Without `owner_id`: the caller's own chatrooms (agents only; a customer "
                           f"token must give `owner_id`). With `owner_id`: {_PRIVILEGED} for any agent, a plain "
                           "agent only for themselves.",
    "POST /v1.0/chatrooms": "agent tokens only (any permission); the caller becomes the chat's owner and a "
                            "participant. A customer token: 403.",
    "GET /v1.0/chatrooms/{chatroom_id}": f"{_PRIVILEGED}; a plain agent only their own chatroom.",
    "PUT /v1.0/chatrooms/{chatroom_id}": f"{_PRIVILEGED}; a plain agent only their own chatroom.",
    "DELETE /v1.0/chatrooms/{chatroom_id}": f"{_PRIVILEGED}; a plain agent only their own chatroom.",
    "POST /v1.0/chatmessages": f"{_PRIVILEGED}, who may give the `source`; a plain agent while a participant, "
                               "always as themselves (a `source` they give is replaced by their own).",
    "GET /v1.0/chatmessages": f"{_PRIVILEGED}; a plain agent while a participant of the chat.",
    "GET /v1.0/chatmessages/{chatmessage_id}": f"{_PRIVILEGED}; a plain agent while a participant of the chat.",
    "DELETE /v1.0/chatmessages/{chatmessage_id}": f"{_PRIVILEGED}; a plain agent only as its sender.",
    "POST /v1.0/chatroommessages": "agent tokens only: a plain agent into their own chatroom, admins and managers "
                                   "into any chatroom of their customer; the source is the caller. A customer "
                                   "token: 403.",
    "GET /v1.0/chatroommessages": f"{_PRIVILEGED}; a plain agent only in their own chatroom.",
    "GET /v1.0/chatroommessages/{chatroommessage_id}": f"{_PRIVILEGED}; a plain agent only a copy in their own "
                                                       "chatroom.",
    "DELETE /v1.0/chatroommessages/{chatroommessage_id}": f"{_PRIVILEGED}; a plain agent only a copy in their "
                                                          "own chatroom.",
    "GET /v1.0/service_agents/chatrooms": _OWN.format(what="chatrooms"),
    "POST /v1.0/service_agents/chatrooms": "agent tokens only; the caller becomes the chat's owner and a participant.",
    "GET /v1.0/service_agents/chatrooms/{chatroom_id}": _OWN.format(what="chatroom"),
    "PUT /v1.0/service_agents/chatrooms/{chatroom_id}": _OWN.format(what="chatroom"),
    "DELETE /v1.0/service_agents/chatrooms/{chatroom_id}": _OWN.format(what="chatroom"),
    "GET /v1.0/service_agents/chatroommessages": _OWN.format(what="chatroom"),
    "POST /v1.0/service_agents/chatroommessages": _OWN.format(what="chatroom"),
    "GET /v1.0/service_agents/chatroommessages/{chatroommessage_id}": _OWN.format(what="chatroom's copies"),
    "DELETE /v1.0/service_agents/chatroommessages/{chatroommessage_id}": _OWN.format(what="chatroom's copies"),
    "POST /v1.0/chatrooms/{chatroom_id}/read": "the chatroom's owner only (admins included: another agent's "
                                               "marker is theirs); another agent's chatroom: 403.",
    "POST /v1.0/service_agents/chatrooms/{chatroom_id}/read": _OWN.format(what="chatroom"),
    "PUT /v1.0/chatmessages/{chatmessage_id}": "its sender only (admins and managers may delete a message, not "
                                               "edit it), while the chat is live (else 404) and, a plain agent, "
                                               "while a participant of it; others: 403.",
    "GET /v1.0/chatmessages/{chatmessage_id}/history": f"{_PRIVILEGED}; a plain agent while a participant of "
                                                       "the chat.",
    "POST /v1.0/chatmessages/{chatmessage_id}/reactions": f"{_PRIVILEGED}; a plain agent while a participant of "
                                                          "the chat. The chat and the message must be live (else "
                                                          "404).",
    "GET /v1.0/chatmessages/{chatmessage_id}/reactions": f"{_PRIVILEGED}; a plain agent while a participant of "
                                                         "the chat.",
    "DELETE /v1.0/chatmessages/{chatmessage_id}/reactions/{emoji}": "whoever may react; it takes back the "
                                                                    "caller's own reaction only.",
    "POST /v1.0/files": "any token: agents (the file's owner is the caller) and customer tokens (the owner is the "
                        "customer).",
    "GET /v1.0/files/{file_id}": f"its uploader, {_PRIVILEGED}, and agents of a chat it was sent in (while they "
                                 "are participants); anyone else: 404.",
    "DELETE /v1.0/files/{file_id}": f"its uploader, {_PRIVILEGED}. An agent of a chat it was sent in: 403; "
                                    "anyone else: 404.",
    "PUT /v1.0/presence": "agent tokens only (any permission): the caller's own status. A customer token: 403.",
    "GET /v1.0/presence": "any token of the customer (agents of another customer are simply never seen).",
    "GET /v1.0/chatmessages/{chatmessage_id}/receipts": f"{_PRIVILEGED}; a plain agent while a participant of "
                                                        "the chat.",
    "GET /v1.0/customer/settings": f"{_PRIVILEGED}. A plain agent: 403.",
    "GET /v1.0/chats/{chat_id}/transcript": f"{_PRIVILEGED}; a plain agent while a participant of the chat.",
    "PUT /v1.0/customer/settings": f"{_PRIVILEGED}. A plain agent: 403.",
    "POST /v1.0/exports": "Customer tokens and admins. Managers and plain agents: 403.",
    "GET /v1.0/exports/{export_id}": "Customer tokens and admins, of their own customer's exports. Others: 403.",
    "DELETE /v1.0/customer/data": "Customer tokens only, with `Confirm-Customer-Id`. Every agent token: 403.",
    "GET /v1.0/customer/data": "Customer tokens only. Every agent token: 403.",
    "GET /v1.0/openapi.json": "anyone: no token needed.",
}
# What a field means, for the "notes" column of the tables: "Schema.field" first, then "field".
NOTES = {
    "id": "the resource's id (a UUID made by the server)",
    "customer_id": "the customer it belongs to",
    "tm_create": "when it was created (timestamp)",
    "tm_update": "when it last changed (timestamp); equal to `tm_create` on create",
    "tm_delete": "`9999-01-01 00:00:00.000000` while not deleted, else when it was deleted",
    "participant_ids": "agent ids, sorted, without duplicates",
    "name": "free text",
    "detail": "free text",
    "text": "the message",
    "medias": "attachments, `[]` when none",
    "source": "who sent it",
    "Chat.owner_id": "the agent who owns the chat (one of its participants)",
    "Chat.type": "`normal`: two agents; `group`: two or more",
    "Chatroom.owner_id": "the agent whose view of the chat this is",
    "Chatroom.chat_id": "the chat this is a view of",
    "Chatroom.type": "the chat's type",
    "Chatroom.participant_ids": "the chat's participants",
    "Chatroom.name": "the owner's own name for the chat; starts as the chat's",
    "Chatroom.detail": "the owner's own detail; starts as the chat's",
    "Chatmessage.chat_id": "the chat it was sent to",
    "Chatmessage.type": "`normal`, or `system` for messages from the system",
    "Chatroommessage.chatroom_id": "the chatroom this copy is in",
    "Chatroommessage.messagechat_id": "the chatmessage this is a copy of",
    "Chatroommessage.owner_type": "always `agent`",
    "Chatroommessage.owner_id": "the owner of the chatroom this copy is in",
    "Chatroommessage.type": "the chatmessage's type",
    "ChatCreate.owner_id": "must be one of `participant_ids`",
    "ChatCreate.participant_ids": "duplicates are dropped; `normal`: exactly 2 distinct, `group`: 2 to 1,000",
    "ChatroomCreate.participant_ids": "the others: the caller is added; `normal` for two people, `group` above",
    "ChatmessageCreate.source": "used as given for customer tokens, admins and managers; a plain agent is "
                                "always the source",
    "ChatmessageCreate.text": "`text` or `medias` (or both) must not be empty",
    "ChatroommessageCreate.text": "`text` or `medias` (or both) must not be empty",
    "ChatUpdate.name": "give `name`, `detail` or both",
    "ChatroomUpdate.name": "give `name`, `detail` or both",
    "ChatOwnerUpdate.owner_id": "one of the chat's participants",
    "RoomOwnerUpdate.room_owner_id": "one of the chat's participants",
    "ChatmessageCreate.parent_id": "a chatmessage of the same chat (deleted or not): this one replies in its thread",
    "ChatroommessageCreate.parent_id": "a chatmessage of the same chat (deleted or not): this one replies in its "
                                       "thread",
    "ChatroomRead.chatroommessage_id": "a copy in this chatroom; absent: the newest. The marker never moves back",
    "ReactionCreate.emoji": "one emoji as Unicode defines it (skin tones, ZWJ sequences, keycaps, flags), or a "
                            "`:name:` (lowercase letters, digits, `_ + -`), at most 32 characters; invisible, format, "
                            "combining or blank characters alone are 400. A message holds at most 50 different emoji: "
                            "the 51st different one is 409",
    "Chatroom.unread_count": "copies not sent by the owner, newer than `tm_read`, not deleted (at most 1,000)",
    "Chatroom.tm_read": "the read marker; starts as `tm_create`",
    "Chatroom.tm_activity": "`tm_create` of the newest live copy, or of the chatroom when it has none",
    "Chatroom.last_chatroommessage": "the newest live copy in short (`text` cut to 200 characters), or null",
    "Chatmessage.metadata": "`{\"reactions\": [...], \"reaction_counts\": {emoji: n}}`: `reactions` holds each "
                            "emoji's newest 3 owners (oldest first), `reaction_counts` every emoji's count (at most "
                            "50 different emoji); the full list pages at `GET /chatmessages/{id}/reactions`",
    "Reaction.emoji": "one emoji, or a `:name:`",
    "Reaction.owner_type": "`agent`, or `customer` for a customer token",
    "Reaction.owner_id": "the agent's id, or the customer's",
    "Chatmessage.parent_id": "the chatmessage this one replies to, `\"\"` when none",
    "Chatmessage.reply_count": "its live replies",
    "Chatroommessage.metadata": "its chatmessage's",
    "Chatroommessage.parent_id": "its chatmessage's",
    "ParticipantAdd.participant_id": "an agent not yet in the chat",
    "Address.type": "`\"\"` when unknown",
    "Address.target": "the address itself: an agent id, a number, an email address...",
    "Media.type": "which one payload field the media has",
    "Media.address": "only with type `address`",
    "Media.agent": "only with type `agent`",
    "Media.file_id": "only with type `file`: a file uploaded through `POST /v1.0/files` that the sender may read",
    "Media.link_url": "only with type `link`",
    "MediaAgent.id": "the agent's id",
    "MediaAgent.customer_id": "the agent's customer",
    "File.owner_id": "who uploaded it: the agent, or the customer for a customer token (see `owner_type`)",
    "File.owner_type": "`agent` or `customer`",
    "File.name": "the name given at creation; downloads carry it (Content-Disposition)",
    "File.content_type": "the MIME type given at creation, lower case; S3 accepts only an upload of this type",
    "File.size": "the size in bytes given at creation; S3 accepts only an upload of exactly this size",
    "File.status": "`pending` until the first message that names it (which checks the upload), then "
                   "`uploaded`; `deleted` once deleted",
    "File.upload": "in the answer to `POST /v1.0/files` only (else `null`): the presigned S3 POST, valid 15 "
                   "minutes",
    "File.download_url": "in answers to `GET /v1.0/files/{file_id}` of an `uploaded` file only (else `null`): a "
                         "presigned GET, valid 15 minutes",
    "FileUpload.url": "where to POST the file (multipart/form-data)",
    "FileUpload.fields": "form fields to send as they are, before the file itself (the last field, `file`)",
    "CustomerSettings.retention_days": "days a message (its copies, history and reactions) is kept after it was "
                                       "sent; 0 keeps it forever",
    "CustomerSettings.purge_deleted_after_days": "days after a delete when a deleted message's text, medias, "
                                                 "history and reactions are removed",
    "CustomerSettings.tm_update": "when the settings last changed; `\"\"` while they are the defaults",
    "CustomerSettingsUpdate.retention_days": "0 to 3650 (0 keeps forever); absent: unchanged",
    "CustomerSettingsUpdate.purge_deleted_after_days": "1 to 365 (default 30); absent: unchanged",
    "Transcript.result": "`format=json`: the page's messages, oldest first; `format=text`: `[]`",
    "Transcript.text": "`format=text`: one line per message, oldest first; `format=json`: `\"\"`",
    "TranscriptEntry.sender": "`source.target_name`, else `source.name`, else `source.target`",
    "TranscriptEntry.text": "`\"\"` for a deleted message",
    "TranscriptEntry.edited": "edited after it was sent (a live message)",
    "Error.Code": "the error's class, e.g. `BadRequestError`",
    "Error.Message": "what is wrong: names the field and the limit",
    "next_page_token": "pass it back as `page_token` for the next page; `\"\"` on the last page",
    "result": "newest first",
}
# A sentence under a schema's heading, for shapes found in both bodies and answers.
IN_ANSWERS = {
    "Address": "In answers (a message's `source`, an address media) all five keys are always present, `\"\"` "
               "when unknown.",
    "Media": "In answers a media has its `type` and the one payload field of that type, nothing else.",
    "MediaAgent": "In answers an agent card has the fields it was sent with.",
}
# The events (README, "Real-time events"): type -> (when, who hears it on a websocket, its `data`).
# tests/test_docs.py keeps this the list of chalicelib/services/events.py's EVENT_TYPES.
_FEED = "the customer's feed (customer tokens, admins, managers) and the chat's participants"
EVENTS = {
    "chat_created": ("a chat is created", _FEED, "[Chat](#chat)"),
    "chat_updated": ("its name, detail, owner or participants change", _FEED + " (those removed included)",
                     "[Chat](#chat)"),
    "chat_deleted": ("it is deleted", _FEED, "[Chat](#chat)"),
    "chatroom_created": ("a participant's chatroom appears (a chat created, a participant added)",
                         "its owner", "[Chatroom](#chatroom)"),
    "chatroom_updated": ("its owner changes its name or detail", "its owner", "[Chatroom](#chatroom)"),
    "chatroom_deleted": ("it is deleted (by its owner, with its chat, or its owner removed)", "its owner",
                         "[Chatroom](#chatroom)"),
    "chatroom_read_state": ("its read state moves: a copy arrives or goes, its owner marks it read", "its owner",
                            "the read state alone: `{chatroom_id, customer_id, chat_id, owner_id, unread_count, "
                            "mention_count, tm_read, tm_activity, last_chatroommessage}`, as the [Chatroom](#chatroom) "
                            "shows them"),
    "messagechat_created": ("a chatmessage is sent", _FEED, "[Chatmessage](#chatmessage)"),
    "messagechat_updated": ("it is edited, reacted to, or replied to", _FEED, "[Chatmessage](#chatmessage)"),
    "messagechat_deleted": ("it is deleted", _FEED, "[Chatmessage](#chatmessage)"),
    "messagechatroom_created": ("a copy reaches a chatroom", "the chatroom's owner",
                                "[Chatroommessage](#chatroommessage)"),
    "messagechatroom_updated": ("its chatmessage is edited or reacted to", "the chatroom's owner",
                                "[Chatroommessage](#chatroommessage)"),
    "messagechatroom_deleted": ("it is deleted (by its owner, or with its chatmessage)", "the chatroom's owner",
                                "[Chatroommessage](#chatroommessage)"),
}
EVENTS_INTRO = """## Events

Every change is an event, derived from the table's stream after the write: pushed to websocket
connections (`wss://...?token=<the same token>`) as `{"type": ..., "data": ...}`, compact UTF-8
JSON, and put on the stage's EventBridge bus (`source` `voipbin.chat`, `detail-type` the type,
`detail` the data).

- A push that would pass 128 KiB (API Gateway's limit) goes as a notice to follow by fetching:
  `{"type": ..., "data": {...}, "truncated": true}` whose `data` keeps only the resource's keys
  (`id`, `customer_id`, and of `chat_id`, `chatroom_id`, `messagechat_id`, `owner_id`, `tm_update`
  those it has). A bus entry that would pass 256 KiB carries the same keys and `"truncated": true`.
- A connection's events of one batch arrive in order. Delivery is at least once: a stream record
  handled again (its fan-out or the bus failed) pushes its events again. A client that reconnects
  lists what it missed; events are not stored.
- The bus gets the chat-level events (`chat_*`, `messagechat_*`: one to three per message sent,
  whatever the group's size); a stage with `CHAT_BUS_CHATROOM_EVENTS=1` also gets the per-chatroom
  ones (one or two per recipient of every message).
- Frames a client sends: `{"type": "ping"}` is answered `{"type": "pong"}`; anything else gets
  `{"type": "error", "message": ...}`.

| type | when | pushed to | `data` | on the bus |
|---|---|---|---|---|
"""


def _events_section() -> list[str]:
    rows = [f"| `{name}` | {when} | {audience} | {data} | "
            f"{'yes' if name.startswith(('chat_', 'messagechat_')) else 'with `CHAT_BUS_CHATROOM_EVENTS=1`'} |"
            for name, (when, audience, data) in EVENTS.items()]
    return EVENTS_INTRO.rstrip("\n").split("\n") + rows + [""]


HEADER = (
    "<!-- Generated by `python -m devtools.apidoc` from docs/API.intro.md and the app's OpenAPI document "
    "(GET /v1.0/openapi.json). Do not edit by hand: edit those and run it again. -->\n\n"
)


def fetch_document() -> dict:
    """GET /v1.0/openapi.json from the app itself (Chalice's test client: no server, no AWS)."""
    from chalice.test import Client

    import app as chat_app

    with Client(chat_app.app) as client:
        response = client.http.get(DOCUMENT_PATH)
    if response.status_code != 200:
        raise RuntimeError(f"GET {DOCUMENT_PATH} answered {response.status_code}: {response.body[:300]!r}")
    return response.json_body


# ---- JSON Schema to words ------------------------------------------------------------------

def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", name.lower()).replace(" ", "-")


def _link(name: str) -> str:
    label = _title(name)
    return f"[{label}](#{_anchor(label)})"


def _title(name: str) -> str:
    """Page_Chat_ -> page of Chat; Media-Input -> Media (input)."""
    page = re.fullmatch(r"Page_(\w+?)_", name)
    if page:
        return f"Page of {page.group(1)}"
    return name


def _code(value) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def describe(schema: dict) -> str:
    """A short description of a schema node: its type and its limits."""
    if "$ref" in schema:
        return _link(_schema_name(schema["$ref"]))
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            return " or ".join(describe(option) for option in schema[combiner])
    if "const" in schema:
        return _code(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_code(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return "`null`"
    if kind == "array":
        text = f"list of {describe(schema.get('items', {}))}"
    elif kind == "string" and schema.get("format") == "uuid":
        text = "UUID"
    elif kind == "integer":
        text = "integer"
    elif kind == "object":
        text = "object"
    else:
        text = kind or "any"
    return text + _limits(schema)


def _limits(schema: dict) -> str:
    limits = []
    kind = schema.get("type")
    unit = "items" if kind == "array" else "characters"
    low, high = schema.get("minLength", schema.get("minItems")), schema.get("maxLength", schema.get("maxItems"))
    if low is not None and high is not None:
        limits.append(f"{low} to {high:,} {unit}")
    elif high is not None:
        limits.append(f"at most {high:,} {unit}")
    elif low:
        limits.append(f"at least {low} {unit}")
    if "minimum" in schema and "maximum" in schema:
        limits.append(f"{schema['minimum']} to {schema['maximum']}")
    if "pattern" in schema:
        limits.append(f"matching `{schema['pattern']}`")
    if schema.get("format") and schema.get("format") != "uuid":
        limits.append(f"format {schema['format']}")
    return f" ({', '.join(limits)})" if limits else ""


def _notes(name: str, field: str, node: dict) -> str:
    return node.get("description") or NOTES.get(f"{name}.{field}") or NOTES.get(field, "")


def _fields_table(name: str, schema: dict) -> list[str]:
    """A body's fields: what a client sends."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | default | notes |", "|---|---|---|---|---|"]
    for field, node in properties.items():
        default = _code(node["default"]) if "default" in node else ""
        lines.append(f"| `{field}` | {describe(node)} | {'yes' if field in required else 'no'} | {default} | "
                     f"{_notes(name, field, node)} |")
    return lines


def _answer_table(name: str, schema: dict) -> list[str]:
    """An answer's fields: what the API writes, every one of them, in this order."""
    lines = ["| field | type | notes |", "|---|---|---|"]
    for field, node in schema.get("properties", {}).items():
        lines.append(f"| `{field}` | {describe(node)} | {_notes(name, field, node)} |")
    return lines


# ---- the document -------------------------------------------------------------------------------

def _operations(document: dict) -> list[tuple[str, str, dict]]:
    """Every operation: paths in the document's order (the order the app registers them), then by method."""
    paths = list(document["paths"])
    operations = [(method, path, op) for path, methods in document["paths"].items() for method, op in methods.items()]
    return sorted(operations, key=lambda o: (paths.index(o[1]),
                                             METHOD_ORDER.index(o[0]) if o[0] in METHOD_ORDER else 9))


def _route_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def _check_access(operations) -> None:
    routes = {_route_key(method, path) for method, path, _ in operations}
    problems = []
    if routes - set(ACCESS):
        problems.append(f"say who may call {sorted(routes - set(ACCESS))}")
    if set(ACCESS) - routes:
        problems.append(f"remove {sorted(set(ACCESS) - routes)}, which the app no longer has")
    if problems:
        raise ValueError("devtools/apidoc.py ACCESS does not match the app's routes: " + "; ".join(problems))


def _route_section(method: str, path: str, op: dict, schemas: dict) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", op.get("summary", "").rstrip(".") + ".", ""]
    if op.get("description"):
        lines += [op["description"], ""]
    lines += [f"**Who may call it:** {ACCESS[_route_key(method, path)]}", ""]
    parameters = op.get("parameters", [])
    if parameters:
        lines += ["**Parameters**", "", "| name | in | required | type | notes |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            notes = parameter.get("description", "")
            if "default" in schema:
                notes = (notes + "; " if notes else "") + f"default {_code(schema['default'])}"
            lines.append(f"| `{parameter['name']}` | {parameter['in']} | {'yes' if parameter.get('required') else 'no'}"
                         f" | {describe(schema)} | {notes} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        content = body["content"]
        name = _schema_name(next(iter(content.values()))["schema"]["$ref"])
        types = ", ".join(f"`{t}`" for t in content)
        lines += [f"**Body** ({types}): a JSON object, {_link(name)}. Unknown fields are refused.", ""]
        lines += _fields_table(name, schemas[name]) + [""]
    elif method in ("post", "put"):
        lines += ["**Body** none: send no body.", ""]
    responses = op.get("responses", {})
    success = "202" if "202" in responses else "200"  # 202: a job started
    ok = responses.get(success, {})
    ok_schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in ok_schema:
        answer = _link(_schema_name(ok_schema["$ref"]))
    else:
        answer = ok.get("description", "")
    lines += [f"**Answer {success}:** {answer}", ""]
    errors = [(status, r.get("description", "")) for status, r in responses.items() if status != success]
    if errors:
        lines += ["**Errors** (an [Error](#error), see \"Errors\" above):", ""]
        lines += [f"- {status}: {text}" for status, text in errors] + [""]
    return lines


def _refs(node) -> set[str]:
    """The schema names a part of the document refers to."""
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(_schema_name(node["$ref"]))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def render(document: dict, intro: str) -> str:
    operations = _operations(document)
    _check_access(operations)
    schemas = document.get("components", {}).get("schemas", {})
    answers = set().union(*(_refs(op.get("responses", {})) for _, _, op in operations))
    answers |= set().union(*(_refs(schemas[name].get("properties", {}).get("result", {}))
                             for name in list(answers) if name in schemas))
    bodies = [name for _, _, op in operations for name in sorted(_refs(op.get("requestBody", {})))]
    answers -= set(IN_ANSWERS)
    shared = sorted(set(schemas) - answers - set(bodies))

    lines = [HEADER + intro.rstrip(), "", "## Routes", "",
             "| method | path | what it does |", "|---|---|---|"]
    for method, path, op in operations:
        title = f"{method.upper()} {path}"
        lines.append(f"| [{method.upper()}](#{_anchor(title)}) | `{path}` | {op.get('summary', '')} |")
    lines.append("")
    for method, path, op in operations:
        lines += _route_section(method, path, op, schemas)
    lines += _events_section()

    lines += ["## Schemas", "", "### What the API answers with", "",
              "Every field of an answer is always present, in the order below.", ""]
    order = ["Chat", "Chatroom", "Chatmessage", "Chatroommessage", "File"]
    for name in sorted(answers, key=lambda n: (n not in order, order.index(n) if n in order else 0, n)):
        lines += [f"#### {_title(name)}", ""] + _answer_table(name, schemas[name]) + [""]
    lines += ["### What the API takes", "", "Request bodies: unknown fields are refused.", ""]
    for name in list(dict.fromkeys(bodies)) + shared:
        lines += [f"#### {_title(name)}", ""]
        if name in IN_ANSWERS:
            lines += [IN_ANSWERS[name], ""]
        lines += _fields_table(name, schemas[name]) + [""]
    return "\n".join(lines).rstrip() + "\n"


def generate() -> str:
    return render(fetch_document(), INTRO.read_text(encoding="utf-8"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/API.md is out of date")
    args = parser.parse_args(argv)
    text = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python -m devtools.apidoc", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

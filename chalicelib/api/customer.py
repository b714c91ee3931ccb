"""Data-lifecycle routes: the customer's settings (/v1.0/customer), chat
transcripts, exports of the customer's data and its erasure."""

from chalice import Blueprint

from chalicelib.api import inputs
from chalicelib.api.routing import Router, Service

lifecycle = Service("chalicelib.services.lifecycle")
transcripts = Service("chalicelib.services.transcripts")
exports = Service("chalicelib.services.exports")
erasure = Service("chalicelib.services.erasure")
bp = Blueprint(__name__)
route = Router(bp)


@route("GET", "/customer/settings", "The customer's data-lifecycle settings (retention, purge of deleted content)",
       returns="CustomerSettings", errors=(401, 403))
def get_settings(caller):
    return lifecycle.get_settings(caller)


@route("PUT", "/customer/settings", "Change the customer's data-lifecycle settings", body="CustomerSettingsUpdate",
       returns="CustomerSettings", errors=(400, 401, 403, 413),
       description="`retention_days` (0 to 3650, 0 keeps forever): messages, their copies and history expire "
                   "that many days after they were sent. `purge_deleted_after_days` (1 to 365, default 30): a "
                   "deleted message's text, medias, history and reactions are removed that many days after the "
                   "delete. A change applies to messages sent after it at once, and to older ones through a "
                   "background pass.")
def put_settings(caller, body):
    return lifecycle.put_settings(caller, body)


@route("GET", "/chats/{chat_id}/transcript", "A chat's transcript: its messages oldest first, a page at a time",
       returns="Transcript", errors=(400, 401, 403, 404),
       parameters=(
           {"name": "format", "in": "query", "required": False,
            "description": "`json`: `result` holds the entries; `text`: `text` holds one line per message, "
                           "`[tm_create] sender: text`, ` (edited)` after an edited one, `(deleted)` in place of "
                           "a deleted one's content",
            "schema": {"type": "string", "enum": ["json", "text"], "default": "json"}},
           {"name": "page_token", "in": "query", "required": False,
            "description": "next_page_token of the page before",
            "schema": {"type": "string", "maxLength": 80}}),
       description="A page ends after 1,000 messages or once its answer reaches 4 MiB, whichever comes first; "
                   "`next_page_token` is `\"\"` on the last page. Expired messages are left out.")
def chat_transcript(caller, chat_id):
    request = bp.current_request
    return transcripts.transcript(caller, chat_id, inputs.query_param(request, "format"),
                                  inputs.page_token(inputs.query_param(request, "page_token")))


@route("POST", "/exports", "Start an export of the customer's data", returns="Export", status=202,
       errors=(401, 403),
       description="Customer tokens and admins. The export runs in the background: `GET /exports/{export_id}` "
                   "shows its progress and, once `done`, a `download_url` (15 minutes) of a gzipped JSON-lines "
                   "archive: a first line `{\"type\": \"export\", ...}`, then a line `{\"type\", \"data\"}` "
                   "per chat, chatroom, chatmessage (with its `history` and `reactions`) and file record, `data` "
                   "as GET answers it. Archives are kept 7 days.")
def start_export(caller):
    return exports.start_export(caller)


@route("GET", "/exports/{export_id}", "An export of the customer's data: its progress, and its archive when done",
       returns="Export", errors=(400, 401, 403, 404))
def get_export(caller, export_id):
    return exports.get_export(caller, export_id)


@route("DELETE", "/customer/data", "Erase every item and file of the customer", returns="Erasure", status=202,
       errors=(400, 401, 403),
       parameters=({"name": "Confirm-Customer-Id", "in": "header", "required": True,
                    "description": "the customer id of the token, again: nothing is erased without it",
                    "schema": {"type": "string"}},),
       description="Customer tokens only. Runs in the background (`GET /customer/data` shows how far it is): "
                   "every chat, chatroom, message, copy, file, setting and export of the customer is deleted, "
                   "then every object under the customer's prefix in the files' bucket. Asking again while it "
                   "runs answers the same erasure; asking after it is done, or failed, runs it again.")
def erase_customer_data(caller):
    return erasure.request_erasure(caller, bp.current_request.headers.get("confirm-customer-id"))


@route("GET", "/customer/data", "The erasure of the customer's data: how far it is", returns="Erasure",
       errors=(401, 403, 404))
def get_erasure(caller):
    return erasure.get_erasure(caller)

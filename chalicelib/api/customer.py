"""Data-lifecycle routes: the customer's settings (/v1.0/customer), chat transcripts."""

from chalice import Blueprint

from chalicelib.api import inputs
from chalicelib.api.routing import Router, Service

lifecycle = Service("chalicelib.services.lifecycle")
transcripts = Service("chalicelib.services.transcripts")
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

"""/v1.0/presence and /v1.0/chatmessages/{id}/receipts: who is there, and who has seen a message."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

presence = Service("chalicelib.services.presence")
receipts = Service("chalicelib.services.receipts")
bp = Blueprint(__name__)
route = Router(bp)
RECEIPTS_PAGE_MAX = 1000  # a whole 1,000-agent group in one answer (some 100 KB)


@route("PUT", "/presence", "Set your presence status (agent tokens); your watchers are told",
       body="PresenceUpdate", returns="Presence", errors=(400, 401, 403, 413))
def set_presence(caller, body):
    return presence.set_status(caller, body.status)


@route("GET", "/presence", "The presence of 1 to 100 agents of your customer, in the order asked",
       returns="PresenceList", errors=(400, 401), list_query=("agent_id",),
       description="Repeat the `agent_id` query parameter for each agent (1 to 100 UUIDs): "
                   "`?agent_id=...&agent_id=...`. An agent never seen is `offline`, `online: false`, "
                   "`tm_update: \"\"`.")
def get_presence(caller, agent_id):
    return presence.get_presence(caller, agent_id)


@route("GET", "/chatmessages/{chatmessage_id}/receipts",
       "Seen-by: the participants (not the sender) whose read marker is at or past the message",
       returns="Receipt", page=True, page_size_max=RECEIPTS_PAGE_MAX,
       description="By agent id; `page_size` 1 to 1,000 (default 1,000: a whole group in one answer).")
def chatmessage_receipts(caller, chatmessage_id, page):
    return receipts.receipts(caller, chatmessage_id, page)

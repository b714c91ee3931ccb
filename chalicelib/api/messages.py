"""/v1.0/chatmessages and /v1.0/chatroommessages routes."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

messages = Service("chalicelib.services.messages")
reactions = Service("chalicelib.services.reactions")
bp = Blueprint(__name__)
route = Router(bp)
SEND_ERRORS = (400, 401, 403, 404, 409, 413, 429)


@route("POST", "/chatmessages", "Send a message to a chat; copied into every chatroom", body="ChatmessageCreate",
       returns="Chatmessage", idempotent=True, errors=SEND_ERRORS)
def send_chatmessage(caller, body, idempotency_key):
    return messages.send_chatmessage(caller, body, idempotency_key)


@route("GET", "/chatmessages", "List a chat's messages, or (parent_id) one thread's replies", returns="Chatmessage",
       page=True, required_query=("chat_id",), query=("parent_id",))
def list_chatmessages(caller, chat_id, parent_id, page):
    return messages.list_chatmessages(caller, chat_id, parent_id, page)


@route("GET", "/chatmessages/{chatmessage_id}", "Get a chatmessage (deleted ones too)", returns="Chatmessage")
def get_chatmessage(caller, chatmessage_id):
    return messages.get_chatmessage(caller, chatmessage_id)


@route("DELETE", "/chatmessages/{chatmessage_id}", "Delete a chatmessage and every copy of it", returns="Chatmessage",
       errors=(400, 401, 403, 404, 409))
def delete_chatmessage(caller, chatmessage_id):
    return messages.delete_chatmessage(caller, chatmessage_id)


@route("PUT", "/chatmessages/{chatmessage_id}", "Edit your message (its sender only); every copy shows the edit",
       body="ChatmessageEdit", returns="Chatmessage", errors=(400, 401, 403, 404, 409, 413))
def edit_chatmessage(caller, chatmessage_id, body):
    return messages.edit_chatmessage(caller, chatmessage_id, body)


@route("GET", "/chatmessages/{chatmessage_id}/history", "Earlier versions of an edited chatmessage, newest first",
       returns="ChatmessageVersion", page=True)
def chatmessage_history(caller, chatmessage_id, page):
    return messages.chatmessage_history(caller, chatmessage_id, page)


@route("POST", "/chatmessages/{chatmessage_id}/reactions", "React to a chatmessage (one per emoji and caller)",
       body="ReactionCreate", returns="Chatmessage", errors=(400, 401, 403, 404, 409, 413))
def add_reaction(caller, chatmessage_id, body):
    return reactions.add_reaction(caller, chatmessage_id, body)


@route("GET", "/chatmessages/{chatmessage_id}/reactions", "Every reaction to a chatmessage, newest first",
       returns="Reaction", page=True)
def list_reactions(caller, chatmessage_id, page):
    return reactions.list_reactions(caller, chatmessage_id, page)


@route("DELETE", "/chatmessages/{chatmessage_id}/reactions/{emoji}", "Take your reaction back",
       returns="Chatmessage", path_strings=("emoji",), errors=(400, 401, 403, 404, 409))
def remove_reaction(caller, chatmessage_id, emoji):
    return reactions.remove_reaction(caller, chatmessage_id, emoji)


@route("POST", "/chatroommessages", "Send through your chatroom; returns your copy at once",
       body="ChatroommessageCreate", returns="Chatroommessage", idempotent=True, errors=SEND_ERRORS)
def send_chatroommessage(caller, body, idempotency_key):
    return messages.send_chatroommessage(caller, body, idempotency_key)


@route("GET", "/chatroommessages", "List the messages in a chatroom", returns="Chatroommessage", page=True,
       required_query=("chatroom_id",))
def list_chatroommessages(caller, chatroom_id, page):
    return messages.list_chatroommessages(caller, chatroom_id, page)


@route("GET", "/chatroommessages/{chatroommessage_id}", "Get a chatroommessage (deleted ones too)",
       returns="Chatroommessage")
def get_chatroommessage(caller, chatroommessage_id):
    return messages.get_chatroommessage(caller, chatroommessage_id)


@route("DELETE", "/chatroommessages/{chatroommessage_id}", "Delete this copy only", returns="Chatroommessage",
       errors=(400, 401, 403, 404, 409))
def delete_chatroommessage(caller, chatroommessage_id):
    return messages.delete_chatroommessage(caller, chatroommessage_id)

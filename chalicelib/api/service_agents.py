"""/v1.0/service_agents/...: VoIPBIN's agent self-service routes, for clients
written against its published API. Agent tokens only; they act on the
caller's own chatrooms and copies whatever the caller's permission bits
(another agent's: 403; another customer's: 404). The same services as
/chatrooms and /chatroommessages stand behind them."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service
from chalicelib.auth import Principal

access = Service("chalicelib.services.access")
chatrooms = Service("chalicelib.services.chatrooms")
messages = Service("chalicelib.services.messages")
bp = Blueprint(__name__)
route = Router(bp)
OWN = "(agent tokens only; the caller's own)"


def own(caller: Principal) -> Principal:
    """The calling agent, with a plain agent's rights: only their own things."""
    access.require_agent(caller, "the service_agents routes")
    return caller.without_privileges()


@route("GET", "/service_agents/chatrooms", f"List your chatrooms {OWN}", returns="Chatroom", page=True,
       orders=("create", "activity"))
def list_chatrooms(caller, page):
    return chatrooms.list_chatrooms(own(caller), None, page)


@route("POST", "/service_agents/chatrooms", f"Start a chat; returns your chatroom {OWN}",
       body="ChatroomCreate", returns="Chatroom", errors=(400, 401, 403, 409, 413))
def create_chatroom(caller, body):
    return chatrooms.create_chatroom(own(caller), body)


@route("GET", "/service_agents/chatrooms/{chatroom_id}", f"Get one of your chatrooms {OWN}", returns="Chatroom")
def get_chatroom(caller, chatroom_id):
    return chatrooms.get_chatroom(own(caller), chatroom_id)


@route("PUT", "/service_agents/chatrooms/{chatroom_id}", f"Rename your view of a chat {OWN}",
       body="ChatroomUpdate", returns="Chatroom", errors=(400, 401, 403, 404, 409, 413))
def update_chatroom(caller, chatroom_id, body):
    return chatrooms.update_chatroom(own(caller), chatroom_id, body)


@route("DELETE", "/service_agents/chatrooms/{chatroom_id}", f"Delete your view of a chat {OWN}", returns="Chatroom",
       errors=(400, 401, 403, 404, 409))
def delete_chatroom(caller, chatroom_id):
    return chatrooms.delete_chatroom(own(caller), chatroom_id)


@route("POST", "/service_agents/chatrooms/{chatroom_id}/read", f"Move your read marker forward {OWN}",
       body="ChatroomRead", returns="Chatroom", errors=(400, 401, 403, 404, 409, 413))
def mark_read(caller, chatroom_id, body):
    return chatrooms.mark_read(own(caller), chatroom_id, body)


@route("GET", "/service_agents/chatroommessages", f"List the messages in your chatroom {OWN}",
       returns="Chatroommessage", page=True, required_query=("chatroom_id",))
def list_chatroommessages(caller, chatroom_id, page):
    return messages.list_chatroommessages(own(caller), chatroom_id, page)


@route("POST", "/service_agents/chatroommessages", f"Send through your chatroom; returns your copy {OWN}",
       body="ChatroommessageCreate", returns="Chatroommessage", idempotent=True,
       errors=(400, 401, 403, 404, 409, 413))
def send_chatroommessage(caller, body, idempotency_key):
    return messages.send_chatroommessage(own(caller), body, idempotency_key)


@route("GET", "/service_agents/chatroommessages/{chatroommessage_id}", f"Get a message of your chatroom {OWN}",
       returns="Chatroommessage")
def get_chatroommessage(caller, chatroommessage_id):
    return messages.get_chatroommessage(own(caller), chatroommessage_id)


@route("DELETE", "/service_agents/chatroommessages/{chatroommessage_id}", f"Delete your copy of a message {OWN}",
       returns="Chatroommessage", errors=(400, 401, 403, 404, 409))
def delete_chatroommessage(caller, chatroommessage_id):
    return messages.delete_chatroommessage(own(caller), chatroommessage_id)

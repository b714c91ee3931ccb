"""/v1.0/chatrooms routes."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

chatrooms = Service("chalicelib.services.chatrooms")
bp = Blueprint(__name__)
route = Router(bp)
ORDERS = ("create", "activity")


@route("GET", "/chatrooms", "List an agent's chatrooms (the caller's own by default); order=activity: newest "
       "activity first", returns="Chatroom", page=True, query=("owner_id",), orders=ORDERS)
def list_chatrooms(caller, owner_id, page):
    return chatrooms.list_chatrooms(caller, owner_id, page)


@route("POST", "/chatrooms", "Start a chat as an agent; returns the caller's chatroom", body="ChatroomCreate",
       returns="Chatroom", errors=(400, 401, 403, 409, 413))
def create_chatroom(caller, body):
    return chatrooms.create_chatroom(caller, body)


@route("GET", "/chatrooms/{chatroom_id}", "Get a chatroom (deleted ones too)", returns="Chatroom")
def get_chatroom(caller, chatroom_id):
    return chatrooms.get_chatroom(caller, chatroom_id)


@route("PUT", "/chatrooms/{chatroom_id}", "Rename this view of a chat", body="ChatroomUpdate",
       returns="Chatroom", errors=(400, 401, 403, 404, 409, 413))
def update_chatroom(caller, chatroom_id, body):
    return chatrooms.update_chatroom(caller, chatroom_id, body)


@route("DELETE", "/chatrooms/{chatroom_id}", "Delete this view of a chat only", returns="Chatroom",
       errors=(400, 401, 403, 404, 409))
def delete_chatroom(caller, chatroom_id):
    return chatrooms.delete_chatroom(caller, chatroom_id)


@route("POST", "/chatrooms/{chatroom_id}/read", "Move your read marker forward (to a copy, or to the newest)",
       body="ChatroomRead", returns="Chatroom", errors=(400, 401, 403, 404, 409, 413))
def mark_read(caller, chatroom_id, body):
    return chatrooms.mark_read(caller, chatroom_id, body)

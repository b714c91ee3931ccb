"""/v1.0/chats routes."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

chats = Service("chalicelib.services.chats")
bp = Blueprint(__name__)
route = Router(bp)
CHANGE_ERRORS = (400, 401, 403, 404, 409, 413)


@route("GET", "/chats", "List the customer's chats (admins, managers, customer tokens)", returns="Chat", page=True)
def list_chats(caller, page):
    return chats.list_chats(caller, page)


@route("POST", "/chats", "Create a chat and one chatroom per participant", body="ChatCreate", returns="Chat",
       errors=(400, 401, 403, 409, 413))
def create_chat(caller, body):
    return chats.create_chat(caller, body)


@route("GET", "/chats/{chat_id}", "Get a chat (deleted ones too)", returns="Chat")
def get_chat(caller, chat_id):
    return chats.get_chat(caller, chat_id)


@route("PUT", "/chats/{chat_id}", "Change a chat's name and detail", body="ChatUpdate", returns="Chat",
       errors=CHANGE_ERRORS)
def update_chat(caller, chat_id, body):
    return chats.update_chat(caller, chat_id, body)


@route("DELETE", "/chats/{chat_id}", "Delete a chat and, through the stream, its chatrooms", returns="Chat",
       errors=(400, 401, 403, 404, 409))
def delete_chat(caller, chat_id):
    return chats.delete_chat(caller, chat_id)


@route("PUT", "/chats/{chat_id}/owner_id", "Give a chat another owner (one of its participants)",
       body="ChatOwnerUpdate", returns="Chat", errors=CHANGE_ERRORS)
def change_owner(caller, chat_id, body):
    return chats.change_owner(caller, chat_id, body.owner_id)


@route("PUT", "/chats/{chat_id}/room_owner_id", "Give a chat another owner (VoIPBIN's name for PUT .../owner_id)",
       body="RoomOwnerUpdate", returns="Chat", errors=CHANGE_ERRORS)
def change_room_owner(caller, chat_id, body):
    return chats.change_owner(caller, chat_id, body.room_owner_id, field="room_owner_id")


@route("POST", "/chats/{chat_id}/participant_ids", "Add a participant (creates their chatroom)",
       body="ParticipantAdd", returns="Chat", errors=CHANGE_ERRORS)
def add_participant(caller, chat_id, body):
    return chats.add_participant(caller, chat_id, body)


@route("DELETE", "/chats/{chat_id}/participant_ids/{participant_id}", "Remove a participant (deletes their chatroom)",
       returns="Chat", errors=(400, 401, 403, 404, 409))
def remove_participant(caller, chat_id, participant_id):
    return chats.remove_participant(caller, chat_id, participant_id)

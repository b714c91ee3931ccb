"""/v1.0/chats routes: parse, call the service, render."""

from chalice import Blueprint

from chalicelib.api import render
from chalicelib.api.docs import operation
from chalicelib.api.request import (
    BODY_CONTENT_TYPES,
    NO_BODY,
    body_of,
    endpoint,
    page_params,
    path_id,
    principal_of,
)
from chalicelib.schemas import requests
from chalicelib.schemas.resources import Chat
from chalicelib.services import chats

bp = Blueprint(__name__)


@bp.route("/chats", methods=["GET"], content_types=NO_BODY)
@operation("List the customer's chats (admins, managers, customer tokens)", returns=Chat, page=True)
@endpoint
def list_chats():
    request = bp.current_request
    caller = principal_of(request)
    return render.page(chats.list_chats(caller, *page_params(request)), Chat)


@bp.route("/chats", methods=["POST"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Create a chat and one chatroom per participant",
    body=requests.ChatCreate,
    returns=Chat,
    errors=(400, 401, 403, 409, 413),
)
@endpoint
def create_chat():
    request = bp.current_request
    caller = principal_of(request)
    return render.resource(chats.create_chat(caller, body_of(request, requests.ChatCreate)), Chat)


@bp.route("/chats/{chat_id}", methods=["GET"], content_types=NO_BODY)
@operation("Get a chat (deleted ones too)", returns=Chat)
@endpoint
def get_chat(chat_id):
    caller = principal_of(bp.current_request)
    return render.resource(chats.get_chat(caller, path_id(chat_id, "chat_id")), Chat)


@bp.route("/chats/{chat_id}", methods=["PUT"], content_types=BODY_CONTENT_TYPES)
@operation("Change a chat's name and detail", body=requests.ChatUpdate, returns=Chat, errors=(400, 401, 403, 404, 413))
@endpoint
def update_chat(chat_id):
    request = bp.current_request
    caller = principal_of(request)
    chat_id = path_id(chat_id, "chat_id")
    return render.resource(chats.update_chat(caller, chat_id, body_of(request, requests.ChatUpdate)), Chat)


@bp.route("/chats/{chat_id}", methods=["DELETE"], content_types=NO_BODY)
@operation("Delete a chat and, through the stream, its chatrooms", returns=Chat)
@endpoint
def delete_chat(chat_id):
    caller = principal_of(bp.current_request)
    return render.resource(chats.delete_chat(caller, path_id(chat_id, "chat_id")), Chat)


@bp.route("/chats/{chat_id}/owner_id", methods=["PUT"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Give a chat another owner (one of its participants)",
    body=requests.ChatOwnerUpdate,
    returns=Chat,
    errors=(400, 401, 403, 404, 409, 413),
)
@endpoint
def change_owner(chat_id):
    request = bp.current_request
    caller = principal_of(request)
    chat_id = path_id(chat_id, "chat_id")
    return render.resource(chats.change_owner(caller, chat_id, body_of(request, requests.ChatOwnerUpdate)), Chat)


@bp.route("/chats/{chat_id}/participant_ids", methods=["POST"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Add a participant (creates their chatroom)",
    body=requests.ParticipantAdd,
    returns=Chat,
    errors=(400, 401, 403, 404, 409, 413),
)
@endpoint
def add_participant(chat_id):
    request = bp.current_request
    caller = principal_of(request)
    chat_id = path_id(chat_id, "chat_id")
    return render.resource(chats.add_participant(caller, chat_id, body_of(request, requests.ParticipantAdd)), Chat)


@bp.route("/chats/{chat_id}/participant_ids/{participant_id}", methods=["DELETE"], content_types=NO_BODY)
@operation("Remove a participant (deletes their chatroom)", returns=Chat, errors=(400, 401, 403, 404, 409))
@endpoint
def remove_participant(chat_id, participant_id):
    caller = principal_of(bp.current_request)
    chat = chats.remove_participant(caller, path_id(chat_id, "chat_id"), path_id(participant_id, "participant_id"))
    return render.resource(chat, Chat)

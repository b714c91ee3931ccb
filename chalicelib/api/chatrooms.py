"""/v1.0/chatrooms routes."""

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
    query_id,
)
from chalicelib.schemas import requests
from chalicelib.schemas.resources import Chatroom
from chalicelib.services import chatrooms

bp = Blueprint(__name__)


@bp.route("/chatrooms", methods=["GET"], content_types=NO_BODY)
@operation("List an agent's chatrooms (the caller's own by default)", returns=Chatroom, page=True, query=("owner_id",))
@endpoint
def list_chatrooms():
    request = bp.current_request
    caller = principal_of(request)
    owner_id = query_id(request, "owner_id", required=False)
    return render.page(chatrooms.list_chatrooms(caller, owner_id, *page_params(request)), Chatroom)


@bp.route("/chatrooms", methods=["POST"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Start a chat as an agent; returns the caller's chatroom",
    body=requests.ChatroomCreate,
    returns=Chatroom,
    errors=(400, 401, 403, 409, 413),
)
@endpoint
def create_chatroom():
    request = bp.current_request
    caller = principal_of(request)
    return render.resource(chatrooms.create_chatroom(caller, body_of(request, requests.ChatroomCreate)), Chatroom)


@bp.route("/chatrooms/{chatroom_id}", methods=["GET"], content_types=NO_BODY)
@operation("Get a chatroom (deleted ones too)", returns=Chatroom)
@endpoint
def get_chatroom(chatroom_id):
    caller = principal_of(bp.current_request)
    return render.resource(chatrooms.get_chatroom(caller, path_id(chatroom_id, "chatroom_id")), Chatroom)


@bp.route("/chatrooms/{chatroom_id}", methods=["PUT"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Rename this view of a chat", body=requests.ChatroomUpdate, returns=Chatroom, errors=(400, 401, 403, 404, 413)
)
@endpoint
def update_chatroom(chatroom_id):
    request = bp.current_request
    caller = principal_of(request)
    chatroom_id = path_id(chatroom_id, "chatroom_id")
    room = chatrooms.update_chatroom(caller, chatroom_id, body_of(request, requests.ChatroomUpdate))
    return render.resource(room, Chatroom)


@bp.route("/chatrooms/{chatroom_id}", methods=["DELETE"], content_types=NO_BODY)
@operation("Delete this view of a chat only", returns=Chatroom)
@endpoint
def delete_chatroom(chatroom_id):
    caller = principal_of(bp.current_request)
    return render.resource(chatrooms.delete_chatroom(caller, path_id(chatroom_id, "chatroom_id")), Chatroom)

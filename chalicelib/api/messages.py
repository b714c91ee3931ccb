"""/v1.0/chatmessages and /v1.0/chatroommessages routes."""

from chalice import Blueprint

from chalicelib.api import render
from chalicelib.api.docs import operation
from chalicelib.api.request import (
    BODY_CONTENT_TYPES,
    NO_BODY,
    body_of,
    endpoint,
    idempotency_key,
    page_params,
    path_id,
    principal_of,
    query_id,
)
from chalicelib.schemas import requests
from chalicelib.schemas.resources import Chatmessage, Chatroommessage
from chalicelib.services import messages

bp = Blueprint(__name__)


@bp.route("/chatmessages", methods=["POST"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Send a message to a chat; copied into every chatroom",
    body=requests.ChatmessageCreate,
    returns=Chatmessage,
    idempotent=True,
    errors=(400, 401, 403, 404, 409, 413),
)
@endpoint
def send_chatmessage():
    request = bp.current_request
    caller = principal_of(request)
    key = idempotency_key(request)
    message = messages.send_chatmessage(caller, body_of(request, requests.ChatmessageCreate), key)
    return render.resource(message, Chatmessage)


@bp.route("/chatmessages", methods=["GET"], content_types=NO_BODY)
@operation("List a chat's messages", returns=Chatmessage, page=True, required_query=("chat_id",))
@endpoint
def list_chatmessages():
    request = bp.current_request
    caller = principal_of(request)
    chat_id = query_id(request, "chat_id")
    return render.page(messages.list_chatmessages(caller, chat_id, *page_params(request)), Chatmessage)


@bp.route("/chatmessages/{chatmessage_id}", methods=["GET"], content_types=NO_BODY)
@operation("Get a chatmessage (deleted ones too)", returns=Chatmessage)
@endpoint
def get_chatmessage(chatmessage_id):
    caller = principal_of(bp.current_request)
    return render.resource(messages.get_chatmessage(caller, path_id(chatmessage_id, "chatmessage_id")), Chatmessage)


@bp.route("/chatmessages/{chatmessage_id}", methods=["DELETE"], content_types=NO_BODY)
@operation("Delete a chatmessage and every copy of it", returns=Chatmessage)
@endpoint
def delete_chatmessage(chatmessage_id):
    caller = principal_of(bp.current_request)
    message = messages.delete_chatmessage(caller, path_id(chatmessage_id, "chatmessage_id"))
    return render.resource(message, Chatmessage)


@bp.route("/chatroommessages", methods=["POST"], content_types=BODY_CONTENT_TYPES)
@operation(
    "Send through your chatroom; returns your copy at once",
    body=requests.ChatroommessageCreate,
    returns=Chatroommessage,
    idempotent=True,
    errors=(400, 401, 403, 404, 409, 413),
)
@endpoint
def send_chatroommessage():
    request = bp.current_request
    caller = principal_of(request)
    key = idempotency_key(request)
    copy = messages.send_chatroommessage(caller, body_of(request, requests.ChatroommessageCreate), key)
    return render.resource(copy, Chatroommessage)


@bp.route("/chatroommessages", methods=["GET"], content_types=NO_BODY)
@operation("List the messages in a chatroom", returns=Chatroommessage, page=True, required_query=("chatroom_id",))
@endpoint
def list_chatroommessages():
    request = bp.current_request
    caller = principal_of(request)
    chatroom_id = query_id(request, "chatroom_id")
    return render.page(messages.list_chatroommessages(caller, chatroom_id, *page_params(request)), Chatroommessage)


@bp.route("/chatroommessages/{chatroommessage_id}", methods=["GET"], content_types=NO_BODY)
@operation("Get a chatroommessage (deleted ones too)", returns=Chatroommessage)
@endpoint
def get_chatroommessage(chatroommessage_id):
    caller = principal_of(bp.current_request)
    copy = messages.get_chatroommessage(caller, path_id(chatroommessage_id, "chatroommessage_id"))
    return render.resource(copy, Chatroommessage)


@bp.route("/chatroommessages/{chatroommessage_id}", methods=["DELETE"], content_types=NO_BODY)
@operation("Delete this copy only", returns=Chatroommessage)
@endpoint
def delete_chatroommessage(chatroommessage_id):
    caller = principal_of(bp.current_request)
    copy = messages.delete_chatroommessage(caller, path_id(chatroommessage_id, "chatroommessage_id"))
    return render.resource(copy, Chatroommessage)

"""Declaring a route once. `@route(...)` registers the view with Chalice,
documents it for the OpenAPI document, and around the view resolves the
caller, checks path and query ids, parses paging, the Idempotency-Key and the
body, renders the result, and turns service errors into Chalice's JSON error
shape. A view is then one line that calls its service:

    @route("GET", "/chats/{chat_id}", "Get a chat (deleted ones too)", returns="Chat")
    def get_chat(caller, chat_id):
        return chats.get_chat(caller, chat_id)

The view's parameters say what it needs: `caller`, each path parameter by
name, each query id, `body`, `page` (lists), `idempotency_key`. Models are
named (returns="Chat", body="ChatCreate"): see Operation.
"""

import functools
import importlib
import logging
import re
import threading
from dataclasses import dataclass, field

from chalice import Blueprint, Response

from chalicelib import logcontext
from chalicelib.api import inputs
from chalicelib.errors import ServiceError
from chalicelib.schemas import render

log = logging.getLogger(__name__)
# The seed's examples send JSON as text/plain, and curl -d sends it form-encoded.
BODY_CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
NO_BODY = ["*/*"]  # GET and DELETE read no body: whatever Content-Type a client sends is fine


@dataclass(frozen=True)
class Operation:
    """What a route takes and returns: the OpenAPI document's source."""

    summary: str
    # Models by name (chalicelib.schemas.resources and .bodies): routes are
    # registered without importing pydantic, which loads only when a body is
    # parsed or the OpenAPI document is built (a third of a cold start).
    returns: str
    status: int = 200  # 202 for a job started
    body: str | None = None
    page: bool = False  # a list envelope of `returns`
    query: tuple[str, ...] = ()  # optional UUID query parameters
    required_query: tuple[str, ...] = ()  # required UUID query parameters
    list_query: tuple[str, ...] = ()  # required, repeated UUID query parameters (?x=..&x=..), as lists
    orders: tuple[str, ...] = ("create",)  # list orders offered (`order` query parameter when more than one)
    page_size_max: int = inputs.PAGE_SIZE_MAX  # a list whose whole answer is small may offer larger pages
    path_strings: tuple[str, ...] = ()  # path parameters that are not ids (validated by the view's service)
    idempotent: bool = False  # takes an Idempotency-Key header
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404))
    description: str = ""
    parameters: tuple[dict, ...] = ()  # other parameters, as OpenAPI parameter objects (the view reads them)


def error_response(error: ServiceError) -> Response:
    retry_after = getattr(error, "retry_after", None)  # 429: when to send again, in whole seconds
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(body={"Code": error.code, "Message": error.message}, status_code=error.status, headers=headers)


class Router:
    """`route = Router(blueprint)`; then `@route(method, path, summary, returns=..., ...)`."""

    def __init__(self, blueprint: Blueprint):
        self.blueprint = blueprint

    def __call__(self, method: str, path: str, summary: str, **spec):
        operation = Operation(summary, **spec)
        path_ids = re.findall(r"{(\w+)}", path)

        def register(view):
            @functools.wraps(view)
            def handler(**path_args):
                try:
                    return self._serve(view, operation, path_ids, path_args)
                except ServiceError as error:
                    if error.status >= 500:
                        log.error("%s %s failed: %s", method, path, error.message)
                    return error_response(error)

            handler.operation = operation
            content_types = BODY_CONTENT_TYPES if operation.body else NO_BODY
            self.blueprint.route(path, methods=[method], content_types=content_types)(handler)
            return view

        return register

    def _serve(self, view, operation: Operation, path_ids: list[str], path_args: dict):
        request = self.blueprint.current_request
        arguments = {"caller": inputs.caller(request)}
        logcontext.set_customer(arguments["caller"].customer_id)  # in every log line of the request from here
        for name in path_ids:
            value = path_args[name]
            arguments[name] = value if name in operation.path_strings else inputs.uuid_value(value, name)
        for name in operation.required_query:
            arguments[name] = inputs.query_id(request, name, required=True)
        for name in operation.query:
            arguments[name] = inputs.query_id(request, name, required=False)
        for name in operation.list_query:
            arguments[name] = inputs.query_list(request, name)
        if operation.page:
            arguments["page"] = inputs.page(request, operation.orders, operation.page_size_max)
        if operation.idempotent:
            arguments["idempotency_key"] = inputs.idempotency_key(request)
        if operation.body:
            arguments["body"] = inputs.body(request, operation.body)
        result = view(**arguments)
        if operation.page:
            answer = render.page(result, operation.returns)  # may end early: a page stays under Lambda's 6 MB
            answer["next_page_token"] = inputs.next_page_token(arguments["page"], answer["next_page_token"])
            return answer
        if operation.status != 200:
            return Response(body=render.resource(result, operation.returns), status_code=operation.status)
        return render.resource(result, operation.returns)


class Service:
    """A service module imported at its first use, not with the app: a cold
    start then imports what its first request needs (a GET of a chat loads
    neither the message nor the file services). `importlib` makes the first
    import thread-safe; tests/test_layers.py reads these names as imports."""

    def __init__(self, name: str):
        self._name = name
        self._module = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str):
        if self._module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

"""Turning an HTTP request into validated inputs: the caller, the body, ids, paging."""

import functools
import json
import logging
from http.cookies import CookieError, SimpleCookie
from typing import Any, TypeVar

from chalice import Response
from pydantic import BaseModel, ValidationError

from chalicelib import auth
from chalicelib.auth.secret import jwt_secret
from chalicelib.clock import is_uuid
from chalicelib.errors import BadRequest, PayloadTooLarge, ServiceError, Unauthorized
from chalicelib.services import idempotency, paging

MAX_BODY_BYTES = 256 * 1024
# The seed's examples send JSON as text/plain, and curl -d sends it form-encoded.
BODY_CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
NO_BODY = ["*/*"]  # GET and DELETE read no body: whatever Content-Type a client sends is fine

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


def token_of(request) -> str | None:
    """The JWT from the `token` cookie, the `token` query parameter or a Bearer header."""
    cookie_header = request.headers.get("cookie")
    if cookie_header:
        try:
            cookie = SimpleCookie(cookie_header)
        except CookieError:
            cookie = {}
        if "token" in cookie and cookie["token"].value:
            return cookie["token"].value
    query_token = (request.query_params or {}).get("token")
    if query_token:
        return query_token
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer ") and authorization[7:].strip():
        return authorization[7:].strip()
    return None


def principal_of(request) -> auth.Principal:
    token = token_of(request)
    if not token:
        raise Unauthorized("token: missing (give it as ?token=, a Bearer header or a token cookie)")
    return auth.decode(token, jwt_secret())


def body_of(request, model: type[M]) -> M:
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body: {len(raw)} bytes is over the limit of {MAX_BODY_BYTES} bytes (256 KiB)")
    if not raw.strip():
        raise BadRequest("body: a JSON object is required")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("body: not valid UTF-8") from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None
    except json.JSONDecodeError as error:
        raise BadRequest(f"body: not valid JSON ({error.msg} at position {error.pos})") from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise BadRequest(f"body: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None


def describe(error: ValidationError) -> str:
    """'field.path: what is wrong' for the first few problems."""
    parts = []
    for problem in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def path_id(value: str, field: str) -> str:
    if not is_uuid(value):
        raise BadRequest(f"{field}: must be a UUID, got {value[:64]!r}")
    return value.lower()


def query_param(request, name: str) -> str | None:
    return (request.query_params or {}).get(name)


def query_id(request, name: str, required: bool = True) -> str | None:
    value = query_param(request, name)
    if value is None:
        if required:
            raise BadRequest(f"{name}: query parameter is required")
        return None
    return path_id(value, name)


def page_params(request) -> tuple[int, str | None]:
    return (
        paging.parse_page_size(query_param(request, "page_size")),
        paging.parse_page_token(query_param(request, "page_token")),
    )


def idempotency_key(request) -> str | None:
    return idempotency.parse_key(request.headers.get("idempotency-key"))


def error_response(error: ServiceError) -> Response:
    return Response(body={"Code": error.code, "Message": error.message}, status_code=error.status)


def endpoint(view):
    """Service errors become Chalice-shaped JSON errors with their status."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return view(*args, **kwargs)
        except ServiceError as error:
            if error.status >= 500:
                log.error("request failed: %s", error.message)
            return error_response(error)

    return wrapper

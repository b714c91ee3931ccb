"""Turning an HTTP request into validated inputs: the caller, the body, ids,
paging, the Idempotency-Key. Every refusal names the field and the limit."""

import functools
import importlib
import json
import re

from chalicelib import auth
from chalicelib.api.cors import allowed_origins
from chalicelib.auth.transport import refuse_cross_site_cookie_write
from chalicelib.clock import is_timestamp, is_uuid
from chalicelib.errors import BadRequest, PayloadTooLarge
from chalicelib.storage.paging import PageRequest

MAX_BODY_BYTES = 256 * 1024
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 100
_PAGE_SIZE = re.compile(r"[0-9]{1,4}")  # ASCII digits only (str.isdigit would take "５")
_PAGE_TOKEN = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})(~[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$",
    re.ASCII,
)
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")



def caller(request) -> auth.Principal:
    query = request.query_params
    tokens = query.getlist("token") if query is not None and "token" in query else []
    refuse_cross_site_cookie_write(request.headers, request.method, allowed_origins())
    return auth.authenticate(request.headers, tokens)


@functools.cache
def body_model(name: str):
    """A request body's pydantic model by name; pydantic loads here, at the first body."""
    return getattr(importlib.import_module("chalicelib.schemas.bodies"), name)


def body(request, model_name: str):
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
    model = body_model(model_name)
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None


def describe(error) -> str:
    """'field.path: what is wrong' for the first few problems."""
    parts = []
    for problem in error.errors(include_url=False)[:3]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"]).lstrip(".") or "body"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def uuid_value(value: str, field: str) -> str:
    if not is_uuid(value):
        raise BadRequest(f"{field}: must be a UUID, got {value[:64]!r}")
    return value.lower()


def query_param(request, name: str) -> str | None:
    return (request.query_params or {}).get(name)


def query_id(request, name: str, required: bool) -> str | None:
    value = query_param(request, name)
    if value is None:
        if required:
            raise BadRequest(f"{name}: query parameter is required")
        return None
    return uuid_value(value, name)


LIST_QUERY_MAX = 100  # values of one repeated query parameter


def query_list(request, name: str) -> list[str]:
    """Every value of a repeated UUID query parameter (`?x=a&x=b`): 1 to LIST_QUERY_MAX."""
    query = request.query_params
    values = query.getlist(name) if query is not None and name in query else []
    if not 1 <= len(values) <= LIST_QUERY_MAX:
        raise BadRequest(f"{name}: give 1 to {LIST_QUERY_MAX} (repeat the parameter), got {len(values)}")
    return [uuid_value(value, name) for value in values]


ORDERS = ("create", "activity")
ACTIVITY_TOKEN_PREFIX = "activity:"


def page(request, orders: tuple[str, ...] = ("create",), size_max: int = PAGE_SIZE_MAX) -> PageRequest:
    """page_size, page_token and (where a list offers more than one) order.
    A list offering pages larger than PAGE_SIZE_MAX has them by default."""
    size = page_size(query_param(request, "page_size"), size_max)
    order = query_param(request, "order") if len(orders) > 1 else None
    if order is None:
        order = "create"
    if order not in orders:
        raise BadRequest(f"order: one of {', '.join(orders)}")
    raw = query_param(request, "page_token")
    if order == "activity" and raw:
        if not raw.startswith(ACTIVITY_TOKEN_PREFIX):
            raise BadRequest("page_token: not a token of order=activity (those start with 'activity:')")
        return PageRequest(size, page_token(raw[len(ACTIVITY_TOKEN_PREFIX):]), order)
    return PageRequest(size, page_token(raw), order)


def next_page_token(page_request: PageRequest, token: str) -> str:
    """The token a list answers with; activity tokens say so, so that one
    order refuses the other's."""
    if token and page_request.order == "activity":
        return ACTIVITY_TOKEN_PREFIX + token
    return token


def page_size(raw: str | None, size_max: int = PAGE_SIZE_MAX) -> int:
    if raw is None:
        return max(PAGE_SIZE_DEFAULT, size_max)
    if not _PAGE_SIZE.fullmatch(raw) or not 1 <= int(raw) <= size_max:
        raise BadRequest(f"page_size: must be an integer from 1 to {size_max} (ASCII digits)")
    return int(raw)


def page_token(raw: str | None) -> str | None:
    """A token we issued ("tm_create~id") or a bare tm_create; "" means the first page."""
    if not raw:
        return None
    match = _PAGE_TOKEN.match(raw)
    if not match or not is_timestamp(match.group("ts")):
        raise BadRequest(
            "page_token: must be a next_page_token from an earlier page or a timestamp "
            "'YYYY-MM-DD HH:MM:SS.ffffff'"
        )
    return raw


def idempotency_key(request) -> str | None:
    raw = request.headers.get("idempotency-key")
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.match(raw):
        raise BadRequest("Idempotency-Key: 1 to 255 printable ASCII characters without spaces")
    return raw

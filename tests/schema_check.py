"""Checks API bodies against the project's own JSON Schemas in tests/schemas/.

One file per kind: the four resources (chat, chatroom, chatmessage,
chatroommessage), their list pages (chat_list, ...) and error; common.json
holds the shapes they share. routes.json says which kind each route answers
with, so that `check_response` can check every response the suite sees
(tests/conftest.py and tests/local_server.py call it for every request).

JSON Schema cannot say everything the API promises, so a schema may also
carry, and this module checks:
- "x-field-order": the body's first keys are exactly these, in this order
- "x-extra-order": the keys after those (the fields we add) are exactly these, in this order
  (the seed's fields first; fields we add come after them);
- "x-sorted": these arrays are sorted ascending;
- "x-item-kind": a list page's items are of this kind (their order and sorting
  are checked too).
"""

import functools
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
ERROR = "error"

_tally = {"checked": 0}
_tally_lock = threading.Lock()  # requests run on several threads


def checked_count() -> int:
    """How many responses this process has checked so far (check_response)."""
    return _tally["checked"]


@functools.cache
def _schemas() -> dict[str, dict]:
    schemas = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        if path.name == "routes.json":
            continue
        with path.open(encoding="utf-8") as handle:
            schemas[path.stem] = json.load(handle)
    return schemas


@functools.cache
def _registry() -> Registry:
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values()
    )


def kinds() -> list[str]:
    """Every kind a body can be checked as (common holds definitions only)."""
    return sorted(kind for kind in _schemas() if kind != "common")


def schema(kind: str) -> dict:
    if kind not in kinds():
        raise KeyError(f"no schema for {kind!r} in {SCHEMA_DIR}; known: {kinds()}")
    return _schemas()[kind]


def all_fields(kind: str) -> list[str]:
    """Every field of a resource in order: the seed's, then the ones we add."""
    return seed_fields(kind) + list(schema(kind).get("x-extra-order", ()))


def seed_fields(kind: str) -> list[str]:
    """The seed's fields of a resource, in the seed's order."""
    return list(schema(kind)["x-field-order"])


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema(kind))
    return Draft202012Validator(schema(kind), registry=_registry())


def _problems(kind: str, body) -> list[str]:
    problems = [
        f"at {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(_validator(kind).iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]
    return problems + _extra_problems(kind, body)


def _extra_problems(kind: str, body, where: str = "") -> list[str]:
    """What the x- keywords of the schema ask for (JSON Schema cannot say it)."""
    if not isinstance(body, dict):
        return []
    problems = []
    spec = schema(kind)
    order = spec.get("x-field-order")
    if order and list(body)[: len(order)] != order:
        problems.append(f"at {where or '<root>'}: keys {list(body)} do not start with {order} in this order")
    extra = spec.get("x-extra-order")
    if order and extra and list(body)[len(order):] != extra:
        problems.append(f"at {where or '<root>'}: after the seed's fields, keys {list(body)[len(order):]} "
                        f"are not {extra} in this order")
    for field in spec.get("x-sorted", ()):
        value = body.get(field)
        if isinstance(value, list) and value != sorted(value):
            problems.append(f"at {where}{field}: not sorted ascending: {value}")
    item_kind = spec.get("x-item-kind")
    if item_kind and isinstance(body.get("result"), list):
        for i, item in enumerate(body["result"]):
            if isinstance(item, dict):
                problems += _extra_problems(item_kind, item, f"{where}result/{i}/")
    return problems


def assert_valid(kind: str, body) -> None:
    """`body` is a body of `kind`: a resource (chat, ...), a list page (chat_list, ...) or error."""
    problems = _problems(kind, body)
    assert not problems, f"{kind} does not match tests/schemas/{kind}.json:\n  " + "\n  ".join(problems)


def assert_valid_list(kind: str, body) -> None:
    """`body` is a list page of `kind`: {"result": [...], "next_page_token": "..."}."""
    assert_valid(f"{kind}_list", body)


# ---- routes -------------------------------------------------------------------------------

@functools.cache
def _routes() -> dict[tuple[str, str], str | None]:
    with (SCHEMA_DIR / "routes.json").open(encoding="utf-8") as handle:
        routes = json.load(handle)["routes"]
    table = {}
    for route, kind in routes.items():
        method, path = route.split(" ", 1)
        if kind is not None:
            schema(kind)  # a typo in routes.json fails here, not as a confusing mismatch later
        table[(method, path)] = kind
    # Every path answers CORS preflights (chalicelib/api/cors.py): 204, no body.
    for path in {path for _, path in table}:
        table[("OPTIONS", path)] = None
    return table


def routes() -> dict[tuple[str, str], str | None]:
    """(method, path pattern) -> the kind its 200 answers with (None: not checked here)."""
    return dict(_routes())


@functools.cache
def _patterns() -> list[tuple[re.Pattern, str]]:
    """Path patterns as Chalice matches them: a {name} is one whole path segment."""
    paths = sorted({path for _, path in _routes()})
    return [(re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), path) for path in paths]


def route_of(path: str) -> str | None:
    """The route pattern a request path (with or without its query) matches, or None."""
    path = urlsplit(path).path
    if path != "/" and path.endswith("/"):
        path = path[:-1]  # as API Gateway and Chalice do
    matches = [pattern for regex, pattern in _patterns() if regex.match(path)]
    literal = [p for p in matches if "{" not in p]  # /chats/x before /chats/{id}, as Chalice sorts them
    return (literal or matches or [None])[0]


def kind_of(method: str, path: str, status: int) -> str | None:
    """The kind a response must be; None for a route deliberately left out (routes.json).
    Fails for a route tests/schemas/routes.json does not know."""
    route = route_of(path)
    assert route is not None, (
        f"{method} {path}: no route of tests/schemas/routes.json matches this path; "
        "add the route and the schema of what it returns")
    if status >= 400:
        return ERROR
    key = (method.upper(), route)
    assert key in _routes(), (
        f"{method.upper()} {route} answered {status} but tests/schemas/routes.json does not name it; "
        "add the route and the schema of what it returns")
    return _routes()[key]


def check_response(method: str, path: str, status: int, body) -> None:
    """Check one response: `body` is the raw body (bytes or str) or the already parsed JSON."""
    kind = kind_of(method, path, status)
    if kind is None:
        return
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            raise AssertionError(
                f"{method} {path} answered {status} with a body that is not JSON: {body[:200]!r}") from None
    with _tally_lock:
        _tally["checked"] += 1
    try:
        assert_valid(kind, body)
    except AssertionError as error:
        raise AssertionError(f"{method} {path} answered {status}: {error}") from None


def check_answer_size(status: int, headers, body) -> None:
    """An answer must fit Lambda's 6 MB as API Gateway's proxy integration
    receives it (the body JSON-encoded once more): on AWS a larger one is a 502."""
    from devtools import aws_limits

    size = aws_limits.lambda_answer_size(status, dict(headers or {}), body or b"")
    assert size <= aws_limits.LAMBDA_ANSWER_MAX, f"an answer of {size} bytes as Lambda returns it: over 6 MB"

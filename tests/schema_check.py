"""Checks API bodies against VoIPBIN's published JSON schemas.

The schemas come from /work/shared/reference/voipbin-openapi-schemas.json
(override with CHAT_OPENAPI_SCHEMAS). Its "resources" and "lists" maps name
the schema of each kind: chat, chatroom, chatmessage, chatroommessage.
"""

import functools
import json
import os
from pathlib import Path

from jsonschema import Draft7Validator

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "voipbin-openapi-schemas.json"


@functools.cache
def _reference() -> dict:
    path = Path(os.environ.get("CHAT_OPENAPI_SCHEMAS", DEFAULT_PATH))
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def _validator(section: str, kind: str) -> Draft7Validator:
    reference = _reference()
    names = reference[section]
    if kind not in names:
        raise KeyError(f"no {section} schema for {kind!r}; known: {sorted(names)}")
    schema = reference["schemas"][names[kind]]
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def _check(section: str, kind: str, body) -> None:
    errors = sorted(_validator(section, kind).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{kind} ({section}) does not match its schema:\n" + "\n".join(
        f"  at {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors
    )


def assert_valid(kind: str, body) -> None:
    """`body` is one resource of `kind` (chat, chatroom, chatmessage, chatroommessage)."""
    assert isinstance(body, dict), f"{kind}: expected a JSON object, got {type(body).__name__}"
    _check("resources", kind, body)


def assert_valid_list(kind: str, body) -> None:
    """`body` is a list page of `kind`: {"result": [...], "next_page_token": "..."}."""
    assert isinstance(body, dict), f"{kind} list: expected a JSON object, got {type(body).__name__}"
    assert set(body) == {"result", "next_page_token"}, f"{kind} list keys: {list(body)}"
    assert isinstance(body["result"], list), f"{kind} list: result is not a list"
    _check("lists", kind, body)
    for item in body["result"]:
        _check("resources", kind, item)

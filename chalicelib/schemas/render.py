"""Items to the JSON the API returns, in the seed's field order. Used by the
HTTP routes and by the stream's events alike."""

import json

from chalicelib.schemas.fields import FIELDS


def resource(item, kind: str) -> dict:
    """`kind`: the resource's name (Chat, Chatroom, ...), as in resources.py."""
    return {field: getattr(item, field) for field in FIELDS[kind]}


# A page's answer, as Lambda hands it to API Gateway's proxy (the body JSON-encoded
# once more), stays under this: Lambda refuses answers over 6 MB (a 502).
ANSWER_BUDGET = 5 * 1024 * 1024


def answer_bytes(shown: dict) -> int:
    """What one resource adds to an answer: Chalice's JSON (ASCII-escaped), then
    escaped again inside the proxy integration's JSON document."""
    return len(json.dumps(json.dumps(shown, separators=(",", ":"), default=str))) + 1


def page(result, kind: str) -> dict:
    """A list page ({items, next_page_token}) as the API's envelope. A page of
    large items ends early, before the one that would take the answer past
    ANSWER_BUDGET, with the token that resumes after the last item shown
    (`result.keys`: the resume token of each item)."""
    shown, token, used = [], result.next_page_token, 0
    keys = getattr(result, "keys", None)
    for index, item in enumerate(result.items):
        rendered = resource(item, kind)
        used += answer_bytes(rendered)
        if used > ANSWER_BUDGET and shown and keys:
            token = keys[index - 1]
            break
        shown.append(rendered)
    return {"result": shown, "next_page_token": token}

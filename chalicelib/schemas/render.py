"""Items to the JSON the API returns, in the seed's field order. Used by the
HTTP routes and by the stream's events alike."""

from chalicelib.schemas.fields import FIELDS


def resource(item, kind: str) -> dict:
    """`kind`: the resource's name (Chat, Chatroom, ...), as in resources.py."""
    return {field: getattr(item, field) for field in FIELDS[kind]}


def page(result, kind: str) -> dict:
    """A list page ({items, next_page_token}) as the API's envelope."""
    return {"result": [resource(item, kind) for item in result.items], "next_page_token": result.next_page_token}

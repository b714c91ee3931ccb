"""Items to the JSON the API returns, in the seed's field order. Used by the
HTTP routes and by the stream's events alike."""

from pydantic import BaseModel

from chalicelib.schemas import resources

_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    model: tuple(model.model_fields)
    for model in (resources.Chat, resources.Chatroom, resources.Chatmessage, resources.Chatroommessage,
                  resources.ChatmessageVersion, resources.File)
}


def resource(item, model: type[BaseModel]) -> dict:
    return {field: getattr(item, field) for field in _FIELDS[model]}


def page(result, model: type[BaseModel]) -> dict:
    """A list page ({items, next_page_token}) as the API's envelope."""
    return {"result": [resource(item, model) for item in result.items], "next_page_token": result.next_page_token}

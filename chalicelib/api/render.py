"""Storage items to the JSON the API returns, in the seed's field order."""

from pydantic import BaseModel

from chalicelib.schemas import resources
from chalicelib.services.paging import Page

_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    model: tuple(model.model_fields)
    for model in (resources.Chat, resources.Chatroom, resources.Chatmessage, resources.Chatroommessage)
}


def resource(item, model: type[BaseModel]) -> dict:
    return {field: getattr(item, field) for field in _FIELDS[model]}


def page(result: Page, model: type[BaseModel]) -> dict:
    return {"result": [resource(item, model) for item in result.items], "next_page_token": result.next_page_token}

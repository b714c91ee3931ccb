"""What each route takes and returns, attached to the view itself; the
OpenAPI document is generated from this and the pydantic models."""

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class Operation:
    summary: str
    returns: type[BaseModel]
    body: type[BaseModel] | None = None
    page: bool = False  # a list envelope of `returns`
    query: tuple[str, ...] = ()  # optional UUID query parameters
    required_query: tuple[str, ...] = ()  # required UUID query parameters
    idempotent: bool = False  # takes an Idempotency-Key header
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404))


def operation(summary: str, **kwargs):
    def attach(view):
        view.operation = Operation(summary, **kwargs)
        return view

    return attach

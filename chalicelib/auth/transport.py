"""Where a request carries its token: a `token` cookie, a `token` query
parameter or an `Authorization: Bearer` header. One reader serves the REST
API and the websocket `$connect`, so both accept and refuse the same things."""

from collections.abc import Iterable, Mapping

from chalicelib.errors import Unauthorized


def read_token(headers: Mapping[str, str], query_tokens: Iterable[str]) -> str:
    """The one token of a request. Two different tokens (say a Bearer header
    for one customer and a cookie for another) are refused, never resolved by
    a silent preference; the same token given twice is fine."""
    found: list[tuple[str, str]] = []
    lowered = {name.lower(): value for name, value in headers.items()}
    for part in (lowered.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if name == "token" and value:
            found.append(("cookie", value))
    found += [("query", value.strip()) for value in query_tokens if value and value.strip()]
    scheme, _, credentials = (lowered.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        found.append(("Bearer header", credentials.strip()))
    if not found:
        raise Unauthorized("token: missing (give it as ?token=, a Bearer header or a token cookie)")
    distinct = {token for _, token in found}
    if len(distinct) > 1:
        places = " and ".join(sorted({place for place, _ in found}))
        raise Unauthorized(f"token: {len(distinct)} different tokens in one request ({places}); send one")
    return found[0][1]
